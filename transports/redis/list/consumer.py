"""The list mailbox: a Redis list, and a processing list per consumer until the ack."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from ..._values import Delivery
from ..consumer import RedisConsumer
from ..keys import digest
from ..scripts import record_failure
from . import scripts
from .ledger import Holdings, new_delivery
from .scripts import ListAck

__all__ = ["ListConsumer"]

# What LIST_TAKE does with this consumer's processing list before taking new messages.
_NO_LEFTOVERS, _RESYNC, _OPENING = "0", "1", "2"

_QUIET_SPAN = 0.5
"""After a wait returned the only message there was, the next fetch waits at once
(without LIST_TAKE first) if the last LIST_TAKE ran less than this long ago (s)."""


class ListConsumer(RedisConsumer):
    """A consumer of a list mailbox: at-least-once through a processing list.

    Messages move atomically (Lua: ``LPOP count`` + ``RPUSH``, or ``BLMOVE`` when
    the list is empty) from the head of ``name`` to ``{name}:processing:<consumer>``
    and leave it on ack (``LTRIM`` of the acked head, else ``LREM``). A background
    task marks the consumer alive in ``{name}:consumers`` every ``lease/3``; at open
    and every ``lease/2`` of fetching, the processing lists of consumers silent for
    longer than ``lease`` go back to the head of ``name``, in order.

    ``fetch(ack=...)`` acks in the same script that takes the next batch. When the
    consumer acks everything it holds (the common case: a whole batch), no payload
    travels: the script empties the processing list if the consumer's epoch is
    still the one it registered (a takeover drops it) and the list holds as many
    messages as expected. After any call whose outcome is unknown (a failure, a
    cancellation), the consumer resyncs first and acks payload by payload; an ack
    retried after a lost reply carries the id it was sent with, and the store skips
    it if it was made (acked again by payload, it would ack equal copies taken since).

    Failure counts live in ``{name}:failures`` under the SHA-1 of the payload, so
    equal payloads share a count. An attempt that ends without an ack counts as
    failed exactly once: when the consumer closes, it raises the count of what it
    still holds to that attempt and says so in ``{name}:closed``; a consumer that
    died without closing gets its held messages counted by whoever inherits them.
    What its processing list holds that it never handed out (moved by a fetch that
    a stop interrupted) goes back to the head of the list when it closes.

    With ``at_most_once``, messages are popped for good (``LPOP``/``BLPOP``) and
    ``ack`` does nothing.
    """

    kind = "list"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._durable = self._spec.durable
        self._processing = self._keys.processing(self._name)
        self._lease = self._spec.lease
        self._ready: deque[Delivery] = deque()
        self._held = Holdings()
        self._failed: set[bytes] = set()  # held payloads with a failure count to clear
        self._resync = False  # lost track of the processing list: the next take resyncs
        self._lost = 0  # how many times it lost track (a resync clears what came before)
        self._epoch = ""  # registered by the last opening or resyncing take
        self._acks = 0
        self._last_ack: tuple[Sequence[Delivery], str] | None = None  # deliveries, id
        # The ack whose outcome is unknown (ids of its deliveries, its id): retried
        # with the same id, so the store skips it if it was made.
        self._unsure_ack: tuple[tuple[int, ...], str] | None = None
        self._next_maintenance = -float("inf")
        self._next_due = float("inf")
        self._taken_at = -float("inf")
        self._quiet = False  # the last wait left the list empty

    # -- lifecycle --------------------------------------------------------------------

    async def _setup(self) -> None:
        if self._durable:
            self._ready.extend(await self._take(0, _OPENING, ()))
            self._keep_alive(self._heartbeat)

    def _key_types(self) -> dict[str, str]:
        keys = self._keys
        return {
            keys.mailbox: "list",
            self._processing: "list",
            keys.failures: "hash",
            keys.delayed: "zset",
            keys.consumers: "zset",
            keys.closed: "set",
            keys.epochs: "hash",
            keys.dead: "stream",
        }

    async def _heartbeat(self) -> None:
        await scripts.list_heartbeat(self._client, self._keys, consumer=self._name)

    async def _teardown(self) -> None:
        if not self._durable:
            return
        held = self._held.attempts()
        await scripts.list_close(self._client, self._keys, consumer=self._name, held=held)

    async def _guarded(self, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await super()._guarded(call)
        except BaseException:
            # A call that did not finish may have changed the processing list.
            self._lose_track()
            raise

    def _lose_track(self) -> None:
        """The processing list may hold what this consumer does not know of: the next
        take resyncs, and acks go payload by payload until then."""
        if self._durable:
            self._resync = True
            self._lost += 1
            if self._last_ack is not None:  # it may be the call that failed
                deliveries, ack_id = self._last_ack
                self._unsure_ack = (tuple(map(id, deliveries)), ack_id)

    # -- fetching ---------------------------------------------------------------------

    async def _take(
        self,
        count: int,
        leftovers: str,
        lookup: Sequence[bytes],
        ack: Sequence[Delivery] = (),
    ) -> list[Delivery]:
        """Run LIST_TAKE, acking ``ack`` first; return leftovers not held yet, then new
        messages, then ``lookup``."""
        now = trio.current_time()
        maintain = self._durable and now >= self._next_maintenance
        lost = self._lost
        reply = await scripts.list_take(
            self._client,
            self._keys,
            consumer=self._name,
            count=count,
            durable=self._durable,
            lease_ms=round(self._lease * 1000),
            maintain=maintain,
            leftovers=leftovers,
            ack=self._list_ack(ack),
            lookup=lookup,
        )
        items, left, counts, wait, acked, epoch = reply
        if acked == 0:
            # Refused, and nothing was taken: ack payload by payload, then take
            # again with a resync.
            await self._ack_each(ack)
            return await self._take(count, _RESYNC, lookup)
        if ack:
            self._acked(ack)
        if epoch:
            self._epoch = epoch.decode()
        if leftovers == _RESYNC and self._lost == lost:  # nothing went astray since
            self._resync = False
        self._taken_at = now
        if maintain:
            self._next_maintenance = now + self._lease / 2
        self._next_due = float("inf") if wait < 0 else now + wait / 1000
        if not counts and not left and not lookup:
            return [new_delivery(payload, 1) for payload in items]  # no failures anywhere
        # Counts come for the leftovers, the new messages, then ``lookup``.
        if not counts:
            counts = [0] * (len(left) + len(items) + len(lookup))
        out: list[Delivery] = []
        if left:
            unmatched = {payload: self._held.copies(payload) for payload in set(left)}
            for payload, failed in zip(left, counts, strict=False):
                if unmatched[payload] > 0:
                    unmatched[payload] -= 1
                else:
                    out.append(self._counted(payload, failed))
        # ``lookup`` (a message moved by BLMOVE) is older than the top-up.
        rest = counts[len(left) :]
        fresh = [self._counted(p, f) for p, f in zip(items, rest, strict=False)]
        out += [self._counted(p, f) for p, f in zip(lookup, rest[len(items) :], strict=True)]
        out += fresh
        return out

    def _counted(self, payload: bytes, failed: int) -> Delivery:
        if failed:
            self._failed.add(payload)
        return new_delivery(payload, 1 + failed)

    async def fetch(self, max_count: int, *, ack: Sequence[Delivery] = ()) -> Sequence[Delivery]:
        """Ack ``ack``, then wait for at least one message and return up to ``max_count``,
        oldest first.

        Messages this consumer's name held unacked in an earlier life come first.
        One round trip, acks included, when messages are waiting; otherwise a bounded ``BLMOVE``
        (or ``BLPOP``) on a dedicated connection, pipelined with an ``HLEN`` of the
        failure counts: a message that wakes it is handed over at once when no
        message has a failure count (else one more round trip looks its count up,
        and tops the batch up). Cancelling a waiting fetch loses nothing: a message
        moved by an interrupted call is found in the processing list by the next fetch.

        Raises:
            ConfigurationError: ``max_count`` is below 1.
            TransportError: the store failed; the consumer stays usable.
            ClosedError: the consumer or its transport is closed.
        """
        self._check_max_count(max_count)
        self._check_open()
        if not self._held.are_all(ack):  # a whole batch (the usual) needs no filtering
            ack = self._holding(ack)
        if self._ready:
            await self.ack(ack)
            ready = self._ready
            got: Sequence[Delivery] = [ready.popleft() for _ in range(min(max_count, len(ready)))]
        else:
            got = await self._guarded(lambda: self._fetch(max_count, ack))
        if self._durable:
            self._held.add(got)
        return got

    async def _fetch(self, max_count: int, ack: Sequence[Delivery]) -> list[Delivery]:
        try:
            while True:
                self._check_open()
                if ack or not self._may_wait_at_once():
                    leftovers = _RESYNC if self._resync else _NO_LEFTOVERS
                    got = await self._take(max_count, leftovers, (), ack)
                    ack = ()
                    if got:
                        return got
                payload, failures, waiting = await self._wait_for_one()
                if payload is not None:
                    if failures == 0:
                        self._quiet = waiting == 0
                        return [new_delivery(payload, 1)]
                    return await self._take(max_count - 1, _NO_LEFTOVERS, (payload,))
        except BaseException:
            # An interrupted move may have left a message in the processing list.
            self._lose_track()
            raise

    def _may_wait_at_once(self) -> bool:
        """True when LIST_TAKE has nothing to do: the last wait found the list empty
        and no maintenance, due retry or resync is pending (messages that came since
        end the wait at once). Consumed: the fetch after runs LIST_TAKE again."""
        if not self._quiet or self._resync:
            return False
        self._quiet = False
        now = trio.current_time()
        limit = min(self._taken_at + _QUIET_SPAN, self._next_due)
        if self._durable:
            limit = min(limit, self._next_maintenance)
        return now < limit

    async def _wait_for_one(self) -> tuple[bytes | None, int, int]:
        """Wait (bounded) for one message; return it (None if none came), how many
        messages have failure counts, and how many still wait in the list (-1: unknown)."""
        now = trio.current_time()
        limit = min(self._next_due, self._next_maintenance if self._durable else now + 5.0)
        timeout = self._bounded(min(self._lease / 3, limit - now))
        seconds = f"{timeout:.3f}"
        keys = self._keys
        command: tuple[Any, ...]
        if self._durable:
            command = (b"BLMOVE", keys.mailbox, self._processing, b"LEFT", b"RIGHT", seconds)
        else:
            command = (b"BLPOP", keys.mailbox, seconds)
        connection = self._pipelining_connection()
        replies = None
        if connection is not None:
            pipelined = await self._block_pipelined(
                connection, timeout, (), command, (b"HLEN", keys.failures), (b"LLEN", keys.mailbox)
            )
            if pipelined is not None:
                replies = [pipelined[1], *pipelined[2]]
        if replies is None:
            # The first wait, or after a failure or a cluster redirection: the
            # connection opens (where the key lives) as usual; the counts stay unknown.
            reply, failures, waiting = await self._block(timeout, *command), -1, -1
        else:
            reply, failures, waiting = replies
        if reply is not None and not self._durable:
            reply = reply[1]
        return reply, failures, waiting

    async def _retry(self, delivery: Delivery, milliseconds: int) -> None:
        # Nothing is scheduled if the message was taken over meanwhile (its lease lapsed).
        await scripts.list_retry(
            self._client,
            self._keys,
            consumer=self._name,
            token=secrets.token_hex(8),
            delay_ms=milliseconds,
            payload=delivery.payload,
            held=self._durable,
        )

    async def _fail(self, failures: Sequence[tuple[Delivery, int]]) -> list[int | None]:
        return await scripts.list_fail(
            self._client,
            self._keys,
            consumer=self._name,
            held=self._durable,
            failures=[
                scripts.ListFailure(
                    delivery.payload,
                    secrets.token_hex(8),
                    milliseconds,
                    digest(delivery.payload),
                    delivery.attempt,
                )
                for delivery, milliseconds in failures
            ],
        )

    def _retry_due(self, when: float) -> None:
        self._next_due = min(self._next_due, when)

    # -- acks and fates ---------------------------------------------------------------

    def _forget(self, delivery: Delivery) -> None:
        if self._durable and self._held.remove(delivery):
            self._failed.discard(delivery.payload)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Remove the deliveries from the processing list and forget their failure counts.

        One script: ``LTRIM`` when they are the head of the processing list, in
        order (acks of whole batches are), else ``LREM`` each; plus ``HDEL`` of the
        counts known to exist. A no-op with ``at_most_once``.

        Raises:
            TransportError: the store failed; the messages will be redelivered.
            ClosedError: the consumer or its transport is closed.
        """
        self._check_open()
        deliveries = self._holding(deliveries)
        if not deliveries:
            await trio.lowlevel.checkpoint()
            return
        made = self._list_ack(deliveries)
        if await self._guarded(lambda: self._ack_script(made)) == 0:
            await self._ack_each(deliveries)
        else:
            self._acked(deliveries)

    async def _ack_each(self, deliveries: Sequence[Delivery]) -> None:
        """The ack by count was refused: this consumer was taken over (the messages
        went back to the list) or lost track of its processing list. Ack payload by
        payload what is there; the next take resyncs."""
        self._lose_track()
        made = self._list_ack(deliveries)  # the form "each" now
        await self._guarded(lambda: self._ack_script(made))
        self._acked(deliveries)

    async def _ack_script(self, ack: ListAck) -> int:
        return await scripts.list_ack(self._client, self._keys, consumer=self._name, ack=ack)

    def _list_ack(self, deliveries: Sequence[Delivery]) -> ListAck:
        """The ack of LIST_TAKE or LIST_ACK: by count (form ``all``) when ``deliveries``
        are all this consumer holds and it knows its processing list, else payload by
        payload (``each``)."""
        if not deliveries:
            return ListAck(self._epoch)
        known = self._failed
        fields = [digest(d.payload) for d in deliveries if d.attempt > 1 or d.payload in known]
        unique = list(dict.fromkeys(fields))
        ack_id = self._ack_id(deliveries)
        if self._epoch and not self._resync and not self._ready and self._held.are_all(deliveries):
            return ListAck(self._epoch, "all", ack_id, unique, len(deliveries))
        payloads = [delivery.payload for delivery in deliveries]
        return ListAck(self._epoch, "each", ack_id, unique, len(deliveries), payloads)

    def _ack_id(self, deliveries: Sequence[Delivery]) -> str:
        """The id of an ack of ``deliveries``: that of the same ack whose outcome is
        unknown, else a new one (unique: epochs are never reused)."""
        unsure = self._unsure_ack
        if unsure is not None and unsure[0] == tuple(map(id, deliveries)):
            ack_id = unsure[1]
        else:
            self._acks += 1
            ack_id = f"{self._epoch}.{self._acks}"
        self._last_ack = (deliveries, ack_id)
        return ack_id

    def _holding(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        """Those of ``deliveries`` this consumer holds (none with ``at_most_once``):
        acking one again must not ack an equal copy fetched since."""
        if not self._durable:
            return ()
        holds = self._held.holds
        return [delivery for delivery in deliveries if holds(delivery)]

    def _ack_commands(self, deliveries: Sequence[Delivery]) -> list[tuple[Any, ...]]:
        deliveries = self._holding(deliveries)
        if not deliveries:
            return []
        made = self._list_ack(deliveries)
        return [scripts.list_ack_command(self._keys, consumer=self._name, ack=made)]

    def _acks_done(self, deliveries: Sequence[Delivery], replies: Sequence[Any]) -> bool:
        if replies and replies[0] == 0:  # the ack by count was refused
            self._lose_track()
            return False
        self._acked(deliveries)
        return True

    def _acked(self, deliveries: Sequence[Delivery]) -> None:
        """Forget the acked ``deliveries`` (those not held were not acked: skipped)."""
        held = self._held
        if not self._durable:
            return
        last = self._last_ack
        if last is not None and last[0] is deliveries:
            self._last_ack = None
        unsure = self._unsure_ack
        if unsure is not None and unsure[0] == tuple(map(id, deliveries)):
            self._unsure_ack = None  # made: the next ack is another
        if held.extra or self._failed:
            super()._acked(self._holding(deliveries))  # _forget, one by one
            return
        first = held.first  # no copies, no counts: forgetting is one deletion each
        for delivery in deliveries:
            if first.get(delivery.payload) is delivery:
                del first[delivery.payload]

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Put the deliveries back at the head of the list, in order, uncounted.

        One script: ``LREM`` from the processing list, ``LPUSH`` to the list. A
        no-op with ``at_most_once``.

        Raises:
            TransportError: the store failed; the messages come back after the lease.
            ClosedError: the consumer or its transport is closed.
        """
        self._check_open()
        if not self._durable or not deliveries:
            await trio.lowlevel.checkpoint()
            return
        payloads = [delivery.payload for delivery in deliveries]
        await self._guarded(
            lambda: scripts.list_release(
                self._client, self._keys, consumer=self._name, payloads=payloads
            )
        )
        for delivery in deliveries:
            self._forget(delivery)

    async def record_failure(self, delivery: Delivery) -> int:
        """Count ``delivery``'s attempt as failed; return the failed attempts so far.

        The count becomes the larger of itself and ``delivery.attempt``, so
        recording one delivery twice counts once.

        Raises:
            TransportError: the store failed.
            ClosedError: the consumer or its transport is closed.
        """
        if self._durable:
            self._failed.add(delivery.payload)
        field = digest(delivery.payload)
        return int(
            await self._guarded(
                lambda: record_failure(
                    self._client, self._keys, field=field, attempt=delivery.attempt
                )
            )
        )
