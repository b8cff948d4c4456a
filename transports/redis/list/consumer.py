"""The list mailbox: a Redis list, and a processing list per consumer until the ack."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from ..._values import Delivery
from ..consumer import RedisConsumer
from ..keys import digest
from ..scripts import record_failure
from . import scripts
from .ledger import NO_LEFTOVERS, OPENING, RESYNC, ListLedger, new_delivery
from .scripts import ListAck

__all__ = ["ListConsumer"]


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
        self._ledger = ListLedger(self._lease, self._durable)

    # -- lifecycle --------------------------------------------------------------------

    async def _setup(self) -> None:
        if self._durable:
            self._ledger.ready.extend(await self._take(0, OPENING, ()))
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
        held = self._ledger.held.attempts()
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
        self._ledger.lose_track()

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
        ledger = self._ledger
        now = trio.current_time()
        maintain = ledger.maintains(now)
        lost = ledger.lost
        reply = await scripts.list_take(
            self._client,
            self._keys,
            consumer=self._name,
            count=count,
            durable=self._durable,
            lease_ms=round(self._lease * 1000),
            maintain=maintain,
            leftovers=leftovers,
            ack=ledger.ack_of(ack),
            lookup=lookup,
        )
        items, left, counts, wait, acked, epoch = reply
        if acked == 0:
            # Refused, and nothing was taken: ack payload by payload, then take
            # again with a resync.
            await self._ack_each(ack)
            return await self._take(count, RESYNC, lookup)
        if ack:
            self._acked(ack)
        ledger.taken(
            now,
            maintained=maintain,
            leftovers=leftovers,
            lost_before=lost,
            epoch=epoch.decode() if epoch else "",
            wait_ms=wait,
        )
        return ledger.deliveries(items, left, counts, lookup)

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
        ledger = self._ledger
        ack = ledger.holding(ack)
        if ledger.ready:
            await self.ack(ack)
            ready = ledger.ready
            got: Sequence[Delivery] = [ready.popleft() for _ in range(min(max_count, len(ready)))]
        else:
            got = await self._guarded(lambda: self._fetch(max_count, ack))
        ledger.hand_out(got)
        return got

    async def _fetch(self, max_count: int, ack: Sequence[Delivery]) -> list[Delivery]:
        try:
            while True:
                self._check_open()
                if ack or not self._ledger.may_wait_at_once(trio.current_time()):
                    got = await self._take(max_count, self._ledger.leftovers(), (), ack)
                    ack = ()
                    if got:
                        return got
                payload, failures, waiting = await self._wait_for_one()
                if payload is not None:
                    if failures == 0:
                        self._ledger.quiet = waiting == 0
                        return [new_delivery(payload, 1)]
                    return await self._take(max_count - 1, NO_LEFTOVERS, (payload,))
        except BaseException:
            # An interrupted move may have left a message in the processing list.
            self._lose_track()
            raise

    async def _wait_for_one(self) -> tuple[bytes | None, int, int]:
        """Wait (bounded) for one message; return it (None if none came), how many
        messages have failure counts, and how many still wait in the list (-1: unknown)."""
        timeout = self._bounded(self._ledger.wait_limit(trio.current_time()))
        seconds = f"{timeout:.3f}"
        keys = self._keys
        command: tuple[Any, ...]
        if self._durable:
            command = (b"BLMOVE", keys.mailbox, self._processing, b"LEFT", b"RIGHT", seconds)
        else:
            command = (b"BLPOP", keys.mailbox, seconds)
        _, reply, (failures, waiting) = await self._block(
            timeout, (), command, (b"HLEN", keys.failures), (b"LLEN", keys.mailbox)
        )
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

    def _counting(self, delivery: Delivery) -> None:
        self._ledger.counted_failure(delivery)

    def _retry_due(self, when: float) -> None:
        self._ledger.retry_due(when)

    # -- acks and fates ---------------------------------------------------------------

    def _forget(self, delivery: Delivery) -> None:
        self._ledger.forget(delivery)

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
        deliveries = self._ledger.holding(deliveries)
        if not deliveries:
            await trio.lowlevel.checkpoint()
            return
        made = self._ledger.ack_of(deliveries)
        if await self._guarded(lambda: self._ack_script(made)) == 0:
            await self._ack_each(deliveries)
        else:
            self._acked(deliveries)

    async def _ack_each(self, deliveries: Sequence[Delivery]) -> None:
        """The ack by count was refused: this consumer was taken over (the messages
        went back to the list) or lost track of its processing list. Ack payload by
        payload what is there; the next take resyncs."""
        self._lose_track()
        made = self._ledger.ack_of(deliveries)  # the form "each" now
        await self._guarded(lambda: self._ack_script(made))
        self._acked(deliveries)

    async def _ack_script(self, ack: ListAck) -> int:
        return await scripts.list_ack(self._client, self._keys, consumer=self._name, ack=ack)

    def _ack_commands(self, deliveries: Sequence[Delivery]) -> list[tuple[Any, ...]]:
        deliveries = self._ledger.holding(deliveries)
        if not deliveries:
            return []
        made = self._ledger.ack_of(deliveries)
        return [scripts.list_ack_command(self._keys, consumer=self._name, ack=made)]

    def _acks_done(self, deliveries: Sequence[Delivery], replies: Sequence[Any]) -> bool:
        if replies and replies[0] == 0:  # the ack by count was refused
            self._lose_track()
            return False
        self._acked(deliveries)
        return True

    def _acked(self, deliveries: Sequence[Delivery]) -> None:
        self._ledger.acked(deliveries)

    def _holding(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        return self._ledger.holding(deliveries)

    def _release_commands(self, deliveries: Sequence[Delivery]) -> list[tuple[Any, ...]]:
        # LREM from the processing list, LPUSH to the head of the list, in order: a
        # message another consumer took over meanwhile is no longer there, and stays.
        if not self._durable or not deliveries:
            return []
        payloads = [delivery.payload for delivery in deliveries]
        return [scripts.list_release_command(self._keys, consumer=self._name, payloads=payloads)]

    async def record_failure(self, delivery: Delivery) -> int:
        """Count ``delivery``'s attempt as failed; return the failed attempts so far.

        The count becomes the larger of itself and ``delivery.attempt``, so
        recording one delivery twice counts once.

        Raises:
            TransportError: the store failed.
            ClosedError: the consumer or its transport is closed.
        """
        self._ledger.counted_failure(delivery)
        field = digest(delivery.payload)
        return int(
            await self._guarded(
                lambda: record_failure(
                    self._client, self._keys, field=field, attempt=delivery.attempt
                )
            )
        )
