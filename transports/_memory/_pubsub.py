"""The pub/sub mailbox: broadcast to the subscribers open at the time, at most once."""

from __future__ import annotations

from collections.abc import Sequence

from .._values import (
    Delivery,
    FailedAttempt,
    Failure,
    MailboxSpec,
    Outcome,
    Verdict,
    check_delay,
)
from ._consumer import MemoryConsumer
from ._state import Subscriber
from ._store import MemoryStore


class PubSubConsumer(MemoryConsumer):
    """A subscriber of a channel, or of a glob pattern of channels (``PSUBSCRIBE``).

    It receives every message published while it is open, each with the channel
    it came through; what it has not fetched when it closes is lost. Nothing is
    ever redelivered: ``ack`` does nothing, ``record_failure`` only returns
    ``delivery.attempt``, ``retry_later`` drops the message. ``dead_letter``
    still records it in ``<name>:dead``, so a poison message can be inspected.
    """

    def __init__(self, store: MemoryStore, spec: MailboxSpec, name: str) -> None:
        self._subscriber = Subscriber(spec.name, spec.pattern)
        super().__init__(store, spec, name, self._subscriber.signal)

    def _open(self) -> None:
        self._store._subscribe(self._subscriber)

    def _leave(self, now: float) -> None:
        self._store._unsubscribe(self._subscriber)

    def _take(self, max_count: int, now: float) -> list[Delivery]:
        queue = self._subscriber.queue
        return [queue.popleft() for _ in range(min(max_count, len(queue)))]

    def _wakeup(self, now: float) -> float:
        return float("inf")

    def _ack_now(self, deliveries: Sequence[Delivery]) -> None:
        """Nothing to do: pub/sub messages are never redelivered."""

    def _release_now(self, deliveries: Sequence[Delivery]) -> None:
        """Nothing to do: pub/sub keeps nothing to hand back."""

    def _fail_one(self, attempt: FailedAttempt, now: float) -> Outcome:
        delivery = attempt.delivery
        if delivery.attempt >= attempt.max_deliveries:
            dead_id = self._bury(delivery, attempt.failure, delivery.attempt, now)
            return Outcome(Verdict.DEAD, delivery.attempt, dead_id)
        return Outcome(Verdict.DROPPED, delivery.attempt)

    async def record_failure(self, delivery: Delivery) -> int:
        """Count nothing and return ``delivery.attempt`` (always 1 for pub/sub).

        Raises:
            ClosedError: the consumer or its transport is closed.
        """
        await self._enter_operation()
        return delivery.attempt

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> str:
        """Append ``delivery`` to ``<name>:dead`` with ``failure``; return the letter's id.

        Raises:
            ClosedError: the consumer or its transport is closed.
        """
        now = await self._enter_operation()
        return self._bury(delivery, failure, delivery.attempt, now)

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        """Drop ``delivery``: pub/sub is at-most-once and keeps nothing to retry.

        Raises:
            ConfigurationError: ``delay`` is negative.
            ClosedError: the consumer or its transport is closed.
        """
        check_delay(delay)
        await self._enter_operation()
