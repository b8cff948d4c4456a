"""The stream mailbox: a Redis stream read through a consumer group, pending until acked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import trio

from transports._exceptions import CommandError

from ..._values import Delivery
from ..client import RAW
from ..consumer import RedisConsumer
from ..keys import stream_field
from ..scripts import record_failure
from . import scripts
from .ledger import StreamLedger, new_delivery

__all__ = ["StreamConsumer", "entry_payload"]

# Errors of a group or stream deleted under a running consumer: recreate and go on.
_GROUP_GONE = frozenset({"NOGROUP", "UNBLOCKED"})
#: The most entries one claim (``XAUTOCLAIM``, once a lease/2) takes from silent
#: consumers, however few the fetch that makes it delivers: the rest are due at once.
_CLAIM_COUNT = 100


def entry_payload(fields: Sequence[bytes]) -> bytes:
    """The payload of a stream entry, given its flat ``[field, value, ...]`` list.

    An entry with the single field ``message`` (what :meth:`RedisTransport.send`
    writes) yields its value. Any other entry (``XADD orders * id 1 name x`` from
    another client) yields the JSON object of its fields, ``{"id":"1","name":"x"}``.
    When a field is not UTF-8 the payload is that field's raw bytes, which the
    codec rejects, so the runtime dead-letters the entry instead of crashing (its
    dead letter keeps every field of the entry, so a replay restores it).
    """
    if len(fields) == 2 and fields[0] == b"message":
        return fields[1]
    try:
        document = {
            fields[index].decode(): fields[index + 1].decode()
            for index in range(0, len(fields) - 1, 2)
        }
    except UnicodeDecodeError:
        for field in fields:
            try:
                field.decode()
            except UnicodeDecodeError:
                return field
        raise  # not reached: one of them failed to decode
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class StreamConsumer(RedisConsumer):
    """A consumer in the group ``spec.group_name`` of a stream mailbox (at-least-once).

    The group is created at open, reading from the start (``XGROUP CREATE ... 0
    MKSTREAM``). ``fetch`` returns, in this order: this name's own pending entries
    from an earlier life (``XREADGROUP ... 0``), entries idle for longer than the
    lease in other consumers' hands (``XAUTOCLAIM``, at open and every ``lease/2``,
    up to 100 at a time: those the fetch does not take become due retries at once),
    then new entries (``XREADGROUP ... >``; blocking on a dedicated connection when
    there are none). A background task renews the idle time of the entries this
    consumer holds every ``lease/3`` (``XCLAIM ... JUSTID``), so a slow handler
    keeps them. A group or stream deleted under a running consumer is recreated.

    A retried entry stays pending in the group, owned by the pseudo-consumer
    ``{delayed}`` (which no takeover touches), its id scored by due time in
    ``{name}:delayed:<group>``; when due, a consumer claims it back.

    ``attempt`` is the larger of 1 + the failures recorded (``{name}:failures``,
    field ``<group>:<id>``) and the entry's delivery count in the group, so a
    delivery that ended without an ack (a crash, a kill) counts as failed once.
    Entries deleted or trimmed while pending are acked and skipped. Entries that a
    read interrupted by a stop delivered, but this consumer never handed out, become
    due retries when it closes (uncounted; another consumer takes them within a
    third of the lease) instead of pending until the lease runs out.
    """

    kind = "stream"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._group = self._spec.group_name
        self._lease = self._spec.lease
        self._delayed = self._keys.delayed_in(self._group)
        self._ledger = StreamLedger(self._lease)

    # -- lifecycle --------------------------------------------------------------------

    async def _setup(self) -> None:
        await self._create_group()
        self._keep_alive(self._renew)

    def _key_types(self) -> dict[str, str]:
        keys = self._keys
        return {
            keys.mailbox: "stream",
            keys.failures: "hash",
            self._delayed: "zset",
            keys.dead: "stream",
        }

    async def _create_group(self) -> None:
        try:
            await self._client.execute_command(
                b"XGROUP", b"CREATE", self._keys.mailbox, self._group, b"0", b"MKSTREAM", **RAW
            )
        except CommandError as exc:
            if exc.code != "BUSYGROUP":
                raise

    async def _teardown(self) -> None:
        """Hand back what a read interrupted (by a stop) delivered to this name and it
        never handed out: due retries of the group at once, uncounted, instead of
        pending until the lease runs out."""
        if not self._ledger.lost_track:
            return
        keys = self._keys
        pending = await self._client.execute_command(
            b"XPENDING", keys.mailbox, self._group, b"-", b"+", 1000, self._name, **RAW
        )
        ids = self._ledger.unhanded(entry_id.decode() for entry_id, *_ in pending)
        if ids:
            await scripts.stream_retry(
                self._client, keys, group=self._group, delay_ms=0, entry_ids=ids
            )

    async def _renew(self) -> None:
        entry_ids = self._ledger.to_renew()
        if entry_ids:
            await scripts.stream_renew(
                self._client,
                self._keys,
                group=self._group,
                consumer=self._name,
                entry_ids=entry_ids,
            )

    # -- fetching ---------------------------------------------------------------------

    async def fetch(self, max_count: int, *, ack: Sequence[Delivery] = ()) -> Sequence[Delivery]:
        """Ack ``ack``, then wait for at least one entry and return up to ``max_count``,
        oldest first.

        One round trip when entries are waiting: the acks (``XACK``) go in the same
        write as the read. Cancelling a waiting fetch loses nothing: an entry
        delivered to an interrupted call stays pending under this name and the next
        fetch reads it from the pending list.

        Raises:
            ConfigurationError: ``max_count`` is below 1.
            TransportError: the store failed; the consumer stays usable.
            ClosedError: the consumer or its transport is closed.
        """
        self._check_max_count(max_count)
        ack = self._ledger.holding(ack)
        got: list[Delivery] = await self._guarded(lambda: self._fetch(max_count, ack))
        self._ledger.hand_out(got)
        return got

    async def _fetch(self, max_count: int, ack: Sequence[Delivery]) -> list[Delivery]:
        while True:
            self._check_open()
            now = trio.current_time()
            try:
                if self._ledger.must_take(now):
                    if ack:
                        await self.ack(ack)
                        ack = ()
                    got = await self._take(max_count, now)
                    if got:
                        if len(got) < max_count:
                            # New entries fill the batch, read outside Lua: a script
                            # handing on XREADGROUP's reply costs twice the read.
                            got += await self._read_now(max_count - len(got))
                        return got
                got = await self._read_new(max_count, ack)
                ack = ()
                if got:
                    return got
            except CommandError as exc:
                if exc.code not in _GROUP_GONE:
                    # A read pipelined behind a failed command may have delivered
                    # entries: they are pending under this name, read them again.
                    self._lose_track()
                    raise
                await self._create_group()
            except BaseException:
                # An interrupted read may have left entries pending under our name.
                self._lose_track()
                raise

    def _lose_track(self) -> None:
        """Entries may be pending under this name that it never handed out: the next
        fetch reads them from the pending list, and closing hands them back."""
        self._ledger.lose_track()

    async def _take(self, max_count: int, now: float) -> list[Delivery]:
        ledger = self._ledger
        claim = ledger.claims(now)
        reply = await scripts.stream_take(
            self._client,
            self._keys,
            group=self._group,
            consumer=self._name,
            count=max_count,
            history=ledger.history,
            claim=claim,
            lease_ms=round(self._lease * 1000),
            claim_cursor=ledger.claim_cursor,
            read_new=False,
            claim_count=_CLAIM_COUNT,
        )
        entries, history, claim_cursor, wait, has_failures = reply
        ledger.taken(
            now,
            claimed=claim,
            history=history.decode(),
            claim_cursor=claim_cursor.decode(),
            wait_ms=wait,
            has_failures=bool(has_failures),
        )
        return ledger.delivered(
            (raw_id.decode(), entry_payload(fields), attempt) for raw_id, fields, attempt in entries
        )

    async def _read_new(self, max_count: int, ack: Sequence[Delivery]) -> list[Delivery]:
        """Ack ``ack``, then wait (bounded) for new entries; acked when it returns."""
        timeout = self._bounded(self._ledger.wait_limit(trio.current_time()))
        read = self._read_command(max_count, (b"BLOCK", round(timeout * 1000)))
        # The acks ride in the read's write: the server runs them first.
        _, reply, _ = await self._block(timeout, self._ack_commands(ack), read)
        if ack:
            self._acked(ack)
        return await self._delivered(reply[0][1]) if reply else []

    async def _read_now(self, max_count: int) -> list[Delivery]:
        """Up to ``max_count`` new entries, without waiting."""
        reply = await self._client.execute_command(*self._read_command(max_count), **RAW)
        return await self._delivered(reply[0][1]) if reply else []

    def _read_command(self, max_count: int, block: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """``XREADGROUP`` of up to ``max_count`` new entries for this name (``block``:
        ``(b"BLOCK", ms)`` to wait)."""
        return (
            *(b"XREADGROUP", b"GROUP", self._group, self._name, b"COUNT", max_count),
            *block,
            *(b"STREAMS", self._keys.mailbox, b">"),
        )

    async def _delivered(self, entries: Sequence[Any]) -> list[Delivery]:
        """The deliveries of new ``entries`` (as XREADGROUP gives them), each with its
        failures so far (an entry deleted and written again, a group made anew)."""
        ids = [raw_id.decode() for raw_id, _ in entries]
        failures: list[Any] = []
        if self._ledger.has_failures:
            fields = [stream_field(self._group, entry_id) for entry_id in ids]
            failures = await self._client.execute_command(
                b"HMGET", self._keys.failures, *fields, **RAW
            )
        if not any(failures):  # the usual: no counts, and none of them can be held
            return [
                new_delivery(entry_id, entry_payload(fields), 1)
                for entry_id, (_, fields) in zip(ids, entries, strict=True)
            ]
        return self._ledger.delivered(
            (entry_id, entry_payload(fields), 1 + int(failed or 0))
            for entry_id, (_, fields), failed in zip(ids, entries, failures, strict=True)
        )

    async def _retry(self, delivery: Delivery, milliseconds: int) -> None:
        await scripts.stream_retry(
            self._client,
            self._keys,
            group=self._group,
            delay_ms=milliseconds,
            entry_ids=[delivery.id],
        )

    def _counting(self, delivery: Delivery) -> None:
        self._ledger.counted_failure(delivery)

    def _holding(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        return self._ledger.holding(deliveries)

    def _release_commands(self, deliveries: Sequence[Delivery]) -> list[tuple[Any, ...]]:
        # Due retries (delay 0) of the group, in order: the next fetch of any of its
        # consumers delivers them before new entries, with ``attempt`` unchanged.
        if not deliveries:
            return []
        ids = [delivery.id for delivery in deliveries]
        return [
            scripts.stream_retry_command(self._keys, group=self._group, delay_ms=0, entry_ids=ids)
        ]

    def _released(self, deliveries: Sequence[Delivery]) -> None:
        self._ledger.forget(deliveries)
        self._retry_due(trio.current_time())

    def _retry_due(self, when: float) -> None:
        self._ledger.retry_due(when)

    # -- acks and fates ---------------------------------------------------------------

    def _failure_field(self, delivery: Delivery) -> str:
        return stream_field(self._group, delivery.id)

    def _forget(self, delivery: Delivery) -> None:
        self._ledger.forget((delivery,))

    def _acked(self, deliveries: Sequence[Delivery]) -> None:
        self._ledger.forget(deliveries)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge the entries (``XACK``) and forget their failure counts.

        One round trip: ``XACK`` of every id, pipelined with an ``HDEL`` of the
        failure counts known to exist.

        Raises:
            TransportError: the store failed; the entries will be redelivered.
            ClosedError: the consumer or its transport is closed.
        """
        self._check_open()
        if not deliveries:
            await trio.lowlevel.checkpoint()
            return
        commands = self._ack_commands(deliveries)
        await self._guarded(lambda: self._ack(commands))
        self._acked(deliveries)

    def _ack_commands(self, deliveries: Sequence[Delivery]) -> list[tuple[Any, ...]]:
        if not deliveries:
            return []
        keys = self._keys
        ids = [delivery.id for delivery in deliveries]
        commands: list[tuple[Any, ...]] = [(b"XACK", keys.mailbox, self._group, *ids)]
        failed = self._ledger.failure_ids(deliveries)
        if failed:
            fields = [stream_field(self._group, entry_id) for entry_id in failed]
            commands.append((b"HDEL", keys.failures, *fields))
        return commands

    async def _ack(self, commands: Sequence[tuple[Any, ...]]) -> None:
        if len(commands) == 1:
            await self._client.execute_command(*commands[0], **RAW)
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command, **RAW)
            await pipe.execute()

    async def record_failure(self, delivery: Delivery) -> int:
        """Count ``delivery``'s attempt as failed; return the failed attempts so far.

        The count becomes the larger of itself and ``delivery.attempt``, so
        recording one delivery twice counts once.

        Raises:
            TransportError: the store failed.
            ClosedError: the consumer or its transport is closed.
        """
        self._ledger.counted_failure(delivery)
        field = self._failure_field(delivery)
        return int(
            await self._guarded(
                lambda: record_failure(
                    self._client, self._keys, field=field, attempt=delivery.attempt
                )
            )
        )
