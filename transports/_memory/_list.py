"""The list mailbox: a queue, and a processing list per consumer until the ack."""

from __future__ import annotations

import itertools
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
from ._state import Held, digest
from ._store import MemoryStore

_tokens = itertools.count(1)  # the tokens of list deliveries, unique in the process


class ListConsumer(MemoryConsumer):
    """A consumer of a list mailbox (``BLMOVE`` into a processing list, ``LREM`` on ack).

    ``fetch`` first redelivers what this name fetched in an earlier life and never
    acked, then requeues to the front of the list the processing lists of
    consumers whose lease ran out, then pops new messages. A crashed attempt
    counts as a failure, so ``attempt`` grows on every redelivery. With
    ``at_most_once`` a fetch pops for good and ``ack`` does nothing.

    Failure counts are keyed by the payload's SHA-1 (a list holds bare payloads),
    so equal payloads share one count.
    """

    def __init__(self, store: MemoryStore, spec: MailboxSpec, name: str) -> None:
        self._box = store._list(spec.name)
        super().__init__(store, spec, name, self._box.signal)

    def _open(self) -> None:
        self._box.members.join(self._name, self)

    def _leave(self, now: float) -> None:
        box = self._box
        box.members.leave(self._name, self, now)
        if not box.processing.get(self._name):
            box.processing.pop(self._name, None)
            box.members.seen_at.pop(self._name, None)

    def _take(self, max_count: int, now: float) -> list[Delivery]:
        box = self._box
        due = box.delayed.pop_due(now)
        box.queue.extend(due)
        requeued = False
        out: list[Delivery] = []
        held = box.processing.setdefault(self._name, []) if self._spec.durable else []
        for item in held:
            if len(out) == max_count:
                break
            if item.session is not self:
                item.attempt = 1 + self._count_crash(item)
                item.session = self
                item.delivery = Delivery(item.key, item.payload, item.attempt, token=next(_tokens))
                out.append(item.delivery)
        if self._spec.durable and len(out) < max_count:
            requeued = self._take_over(now)
        while box.queue and len(out) < max_count:
            payload = box.queue.popleft()
            key = digest(payload)
            item = Held(payload, key, 1 + box.failures.get(key, 0), self)
            item.delivery = Delivery(item.key, item.payload, item.attempt, token=next(_tokens))
            if self._spec.durable:
                held.append(item)
            out.append(item.delivery)
        if (due or requeued) and box.queue:
            box.signal.notify()
        return out

    def _count_crash(self, item: Held) -> int:
        """Count the attempt that held ``item`` and died as failed (once); return failures."""
        failures = max(self._box.failures.get(item.key, 0), item.attempt)
        self._box.failures[item.key] = failures
        return failures

    def _take_over(self, now: float) -> bool:
        """Requeue to the front the processing lists of consumers whose lease ran out."""
        box = self._box
        expired = [
            name
            for name, items in box.processing.items()
            if name != self._name
            and items
            and box.members.expires_at(name, self._spec.lease) <= now
        ]
        for name in expired:
            items = box.processing.pop(name)
            box.members.seen_at.pop(name, None)
            for item in items:
                self._count_crash(item)
            box.queue.extendleft(item.payload for item in reversed(items))
        return bool(expired)

    def _wakeup(self, now: float) -> float:
        box = self._box
        wakeup = box.delayed.next_due()
        if self._spec.durable:
            for name, items in box.processing.items():
                if name != self._name and items:
                    wakeup = min(wakeup, box.members.expires_at(name, self._spec.lease))
        return wakeup

    def _release(self, delivery: Delivery) -> bool:
        """Remove ``delivery`` from this name's processing list; False if it is not
        there (acked already, or not this consumer's: then nothing is removed, not
        even an equal copy)."""
        held = self._box.processing.get(self._name, [])
        for index, item in enumerate(held):
            if item.delivery is not None and item.delivery.token == delivery.token:
                del held[index]
                return True
        return False

    def _ack_now(self, deliveries: Sequence[Delivery]) -> None:
        # With ``at_most_once`` only the failure counts are forgotten.
        for delivery in deliveries:
            if self._release(delivery) or not self._spec.durable:
                self._box.failures.pop(digest(delivery.payload), None)

    def _release_now(self, deliveries: Sequence[Delivery]) -> None:
        # Back to the front of the list, in order, uncounted.
        if not self._spec.durable:
            return
        back = [d.payload for d in deliveries if self._release(d)]
        self._box.queue.extendleft(reversed(back))
        if back:
            self._box.signal.notify()

    def _fail_one(self, attempt: FailedAttempt, now: float) -> Outcome:
        delivery, box = attempt.delivery, self._box
        key = digest(delivery.payload)
        count = max(box.failures.get(key, 0), delivery.attempt)
        if count >= attempt.max_deliveries:
            box.failures.pop(key, None)
            dead_id = self._bury(delivery, attempt.failure, count, now)
            self._release(delivery)
            return Outcome(Verdict.DEAD, count, dead_id)
        box.failures[key] = count
        if attempt.delay is None:
            return Outcome(Verdict.HELD, count)
        self._release(delivery)
        box.delayed.push(now + attempt.delay, delivery.payload)
        box.signal.notify()
        return Outcome(Verdict.RETRIED, count)

    async def record_failure(self, delivery: Delivery) -> int:
        """Count ``delivery``'s attempt as failed and return the failed attempts so far.

        Idempotent for one delivery: the count becomes at least ``delivery.attempt``.

        Raises:
            ClosedError: the consumer or its transport is closed.
        """
        await self._enter_operation()
        key = digest(delivery.payload)
        failures = max(self._box.failures.get(key, 0), delivery.attempt)
        self._box.failures[key] = failures
        return failures

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> str:
        """Append ``delivery`` to ``<name>:dead`` with ``failure``, ack it, clear its count;
        return the dead letter's id.

        Raises:
            ClosedError: the consumer or its transport is closed.
        """
        now = await self._enter_operation()
        key = digest(delivery.payload)
        attempts = max(self._box.failures.pop(key, 0), delivery.attempt)
        dead_id = self._bury(delivery, failure, attempts, now)
        self._release(delivery)
        return dead_id

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        """Ack ``delivery`` now; push it to the back of the list in ``delay`` seconds.

        Its failure count is kept, so the next ``attempt`` is 1 + failures recorded.

        Raises:
            ConfigurationError: ``delay`` is negative.
            ClosedError: the consumer or its transport is closed.
        """
        check_delay(delay)
        now = await self._enter_operation()
        self._release(delivery)
        self._box.delayed.push(now + delay, delivery.payload)
        self._box.signal.notify()
