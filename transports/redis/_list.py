"""The list mailbox: a Redis list, and a processing list per consumer until the ack."""

from __future__ import annotations

import secrets
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import trio

from .._base import Delivery
from ._consumer import RedisConsumer, digest
from ._scripts import (
    LIST_ACK,
    LIST_CLOSE,
    LIST_HEARTBEAT,
    LIST_RELEASE,
    LIST_RETRY,
    LIST_TAKE,
    RECORD_FAILURE,
)

__all__ = ["ListConsumer"]

# What LIST_TAKE does with this consumer's processing list before taking new messages.
_NO_LEFTOVERS, _RESYNC, _OPENING = "0", "1", "2"


class ListConsumer(RedisConsumer):
    """A consumer of a list mailbox: at-least-once through a processing list.

    Messages move atomically (Lua: ``LPOP count`` + ``RPUSH``, or ``BLMOVE`` when
    the list is empty) from the head of ``name`` to ``{name}:processing:<consumer>``
    and leave it on ack (``LREM``). A background task marks the consumer alive in
    ``{name}:consumers`` every ``lease/3``; at open and every ``lease/2`` of
    fetching, the processing lists of consumers silent for longer than ``lease``
    go back to the head of ``name``, in order.

    Failure counts live in ``{name}:failures`` under the SHA-1 of the payload, so
    equal payloads share a count. An attempt that ends without an ack counts as
    failed exactly once: when the consumer closes, it raises the count of what it
    still holds to that attempt and says so in ``{name}:closed``; a consumer that
    died without closing gets its held messages counted by whoever inherits them.

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
        self._held: dict[bytes, list[int]] = {}
        self._failed: set[bytes] = set()  # held payloads with a failure count to clear
        self._resync = False
        self._next_maintenance = -float("inf")
        self._next_due = float("inf")

    # -- lifecycle --------------------------------------------------------------------

    async def _setup(self) -> None:
        if self._durable:
            self._ready.extend(await self._take(0, _OPENING, ()))
            self._keep_alive(self._heartbeat)

    async def _heartbeat(self) -> None:
        await LIST_HEARTBEAT(self._client, [self._keys.consumers], [self._name])

    async def _teardown(self) -> None:
        if not self._durable:
            return
        args: list[Any] = [self._name]
        for payload, attempts in self._held.items():
            for attempt in attempts:
                args += [payload, attempt]
        await LIST_CLOSE(self._client, [self._keys.failures, self._keys.closed], args)

    # -- fetching ---------------------------------------------------------------------

    async def _take(self, count: int, leftovers: str, lookup: Sequence[bytes]) -> list[Delivery]:
        """Run LIST_TAKE; return leftovers not held yet, then new messages, then ``lookup``."""
        now = trio.current_time()
        maintain = self._durable and now >= self._next_maintenance
        keys = self._keys
        reply = await LIST_TAKE(
            self._client,
            [
                keys.mailbox,
                self._processing,
                keys.failures,
                keys.delayed,
                keys.consumers,
                keys.closed,
            ],
            [
                count,
                "1" if self._durable else "0",
                round(self._lease * 1000),
                "1" if maintain else "0",
                leftovers,
                self._name,
                keys.processing(""),
                *lookup,
            ],
        )
        items, left, counts, wait = reply
        if maintain:
            self._next_maintenance = now + self._lease / 2
        self._next_due = float("inf") if wait < 0 else now + wait / 1000
        failures = iter(counts) if counts else None
        out: list[Delivery] = []
        if left:
            unmatched = Counter({payload: len(a) for payload, a in self._held.items()})
            for payload in left:
                failed = next(failures) if failures is not None else 0
                if unmatched[payload] > 0:
                    unmatched[payload] -= 1
                else:
                    out.append(self._delivery(payload, failed))
        for payload in items:
            out.append(self._delivery(payload, next(failures) if failures is not None else 0))
        for payload in lookup:
            out.append(self._delivery(payload, next(failures) if failures is not None else 0))
        return out

    def _delivery(self, payload: bytes, failed: int) -> Delivery:
        if failed:
            self._failed.add(payload)
        return Delivery(digest(payload), payload, 1 + failed)

    def _hold(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        if self._durable:
            held = self._held
            for delivery in deliveries:
                attempts = held.get(delivery.payload)
                if attempts is None:
                    held[delivery.payload] = [delivery.attempt]
                else:
                    attempts.append(delivery.attempt)
        return deliveries

    async def fetch(self, max_count: int) -> Sequence[Delivery]:
        """Wait for at least one message and return up to ``max_count``, oldest first.

        Messages this consumer's name held unacked in an earlier life come first.
        One round trip when messages are waiting; otherwise a bounded ``BLMOVE``
        (or ``BLPOP``) on a dedicated connection, then a top-up. Cancelling a
        waiting fetch loses nothing: a message moved by an interrupted call is
        found in the processing list by the next fetch.

        Raises:
            ConfigurationError: ``max_count`` is below 1.
            TransportError: the store failed; the consumer stays usable.
            ClosedError: the consumer or its transport is closed.
        """
        self._check_max_count(max_count)
        self._check_open()
        if self._ready:
            await trio.lowlevel.checkpoint()
            ready = self._ready
            return self._hold([ready.popleft() for _ in range(min(max_count, len(ready)))])
        return self._hold(await self._guarded(lambda: self._fetch(max_count)))

    async def _fetch(self, max_count: int) -> list[Delivery]:
        try:
            while True:
                self._check_open()
                leftovers = _RESYNC if self._resync else _NO_LEFTOVERS
                got = await self._take(max_count, leftovers, ())
                self._resync = False
                if got:
                    return got
                payload = await self._wait_for_one()
                if payload is not None:
                    if not self._durable:
                        return [Delivery(digest(payload), payload)]
                    return await self._take(max_count - 1, _NO_LEFTOVERS, (payload,))
        except BaseException:
            # An interrupted move may have left a message in the processing list.
            self._resync = self._durable
            raise

    async def _wait_for_one(self) -> bytes | None:
        now = trio.current_time()
        limit = min(self._next_due, self._next_maintenance if self._durable else now + 5.0)
        timeout = self._bounded(min(self._lease / 3, limit - now))
        seconds = f"{timeout:.3f}"
        if self._durable:
            return await self._block(  # type: ignore[no-any-return]
                timeout, b"BLMOVE", self._keys.mailbox, self._processing, b"LEFT", b"RIGHT", seconds
            )
        reply = await self._block(timeout, b"BLPOP", self._keys.mailbox, seconds)
        return None if reply is None else reply[1]

    async def _retry(self, delivery: Delivery, milliseconds: int) -> None:
        token = secrets.token_hex(8)
        keys = [self._keys.delayed, self._processing]
        await LIST_RETRY(self._client, keys, [token, milliseconds, delivery.payload])

    def _retry_due(self, when: float) -> None:
        self._next_due = min(self._next_due, when)

    # -- acks and fates ---------------------------------------------------------------

    def _forget(self, delivery: Delivery) -> None:
        attempts = self._held.get(delivery.payload)
        if attempts:
            attempts.pop()
            if not attempts:
                del self._held[delivery.payload]
                self._failed.discard(delivery.payload)

    def _ack_key(self) -> str:
        return self._processing

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Remove the deliveries from the processing list and forget their failure counts.

        One script (``LPOP`` or ``LREM`` each, plus ``HDEL`` of the counts known to
        exist). A no-op with ``at_most_once``.

        Raises:
            TransportError: the store failed; the messages will be redelivered.
            ClosedError: the consumer or its transport is closed.
        """
        self._check_open()
        if not self._durable or not deliveries:
            await trio.lowlevel.checkpoint()
            return
        failed = {
            digest(d.payload) for d in deliveries if d.attempt > 1 or d.payload in self._failed
        }
        keys = [self._processing, self._keys.failures]
        args: list[str | bytes | int] = [len(failed), *failed]
        args += [delivery.payload for delivery in deliveries]
        await self._guarded(lambda: LIST_ACK(self._client, keys, args))
        for delivery in deliveries:
            self._forget(delivery)

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
        keys = [self._processing, self._keys.mailbox]
        payloads = [delivery.payload for delivery in deliveries]
        await self._guarded(lambda: LIST_RELEASE(self._client, keys, payloads))
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
        count = await self._guarded(
            lambda: RECORD_FAILURE(self._client, [self._keys.failures], [field, delivery.attempt])
        )
        return int(count)
