"""The stream mailbox: entries read through a consumer group, pending until acked."""

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
from ._state import Group, Pending, StreamId, format_id, parse_id
from ._store import MemoryStore


class StreamConsumer(MemoryConsumer):
    """A consumer in the group ``spec.group_name`` of a stream (``XREADGROUP``).

    The group is created when its first consumer opens, reading from id ``0``:
    entries sent before then are delivered too. ``fetch`` returns, oldest first
    within each step: this name's own pending entries from an earlier life
    (``XREADGROUP ... 0``), entries pending on closed consumers for longer than
    ``spec.lease`` (``XAUTOCLAIM``), retried entries that are due, then new
    entries (``XREADGROUP ... >``). Every redelivery raises ``attempt``.

    An open consumer holds its entries for as long as it stays open; its lease
    starts running when it closes. A pending entry that ``maxlen`` trimmed away is
    dropped from the group when it would be redelivered, as ``XAUTOCLAIM`` does.
    Delivery ids are entry ids; failure counts are kept per group and entry.
    """

    def __init__(self, store: MemoryStore, spec: MailboxSpec, name: str) -> None:
        self._box = store._stream(spec.name)
        self._group = self._box.groups.setdefault(spec.group_name, Group())
        super().__init__(store, spec, name, self._box.signal)

    def _open(self) -> None:
        self._group.members.join(self._name, self)

    def _leave(self, now: float) -> None:
        self._group.members.leave(self._name, self, now)
        self._group.members.seen_at.pop(self._name, None)  # leases count per entry here
        for pending in self._group.pending.values():
            if pending.session is self:
                pending.since = now

    def _take(self, max_count: int, now: float) -> list[Delivery]:
        box, group = self._box, self._group
        due = group.delayed.pop_due(now)
        group.ready.extend(due)
        out: list[Delivery] = []
        pending = sorted(group.pending.items())
        for entry_id, entry in pending:
            if len(out) < max_count and entry.owner == self._name and entry.session is not self:
                self._redeliver(entry_id, entry, now, out)
        for entry_id, entry in pending:
            if len(out) < max_count and entry.owner != self._name and self._claimable(entry, now):
                self._redeliver(entry_id, entry, now, out)
        while group.ready and len(out) < max_count:
            entry_id = group.ready.popleft()
            if entry_id in box.payloads and entry_id not in group.pending:
                self._deliver(entry_id, now, out)
        for entry_id in box.after(group.last_delivered, max_count - len(out)):
            group.last_delivered = entry_id
            self._deliver(entry_id, now, out)
        if due and group.ready:
            box.signal.notify()
        return out

    def _claimable(self, entry: Pending, now: float) -> bool:
        return entry.owner not in self._group.members.live and entry.since + self._spec.lease <= now

    def _deliver(self, entry_id: StreamId, now: float, out: list[Delivery]) -> None:
        """Add a new pending entry owned by this consumer and append its delivery to ``out``."""
        attempt = 1 + self._group.failures.get(entry_id, 0)
        self._group.pending[entry_id] = Pending(self._name, self, attempt, now)
        token = format_id(entry_id)
        out.append(Delivery(token, self._box.payloads[entry_id], attempt, token=token))

    def _redeliver(
        self, entry_id: StreamId, entry: Pending, now: float, out: list[Delivery]
    ) -> None:
        """Hand a pending entry to this consumer, counting the attempt that held it as failed."""
        group = self._group
        if entry_id not in self._box.payloads:
            del group.pending[entry_id]
            group.failures.pop(entry_id, None)
            return
        failures = max(group.failures.get(entry_id, 0), entry.attempt)
        group.failures[entry_id] = failures
        entry.owner, entry.session, entry.attempt, entry.since = self._name, self, failures + 1, now
        token = format_id(entry_id)
        out.append(Delivery(token, self._box.payloads[entry_id], entry.attempt, token=token))

    def _wakeup(self, now: float) -> float:
        wakeup = self._group.delayed.next_due()
        for entry in self._group.pending.values():
            if entry.owner != self._name and entry.owner not in self._group.members.live:
                wakeup = min(wakeup, entry.since + self._spec.lease)
        return wakeup

    def _ack_now(self, deliveries: Sequence[Delivery]) -> None:
        for entry_id in [parse_id(delivery.id) for delivery in deliveries]:
            if self._group.pending.pop(entry_id, None) is not None:
                self._group.failures.pop(entry_id, None)

    def _release_now(self, deliveries: Sequence[Delivery]) -> None:
        # Deliverable again at once, to any consumer of the group, in order, uncounted.
        entry_ids = [parse_id(delivery.id) for delivery in deliveries]
        back = [e for e in entry_ids if self._group.pending.pop(e, None) is not None]
        self._group.ready.extendleft(reversed(back))
        if back:
            self._box.signal.notify()

    def _check_delivery(self, delivery: Delivery) -> None:
        parse_id(delivery.id)

    def _fail_one(self, attempt: FailedAttempt, now: float) -> Outcome:
        delivery, group = attempt.delivery, self._group
        entry_id = parse_id(delivery.id)
        count = max(group.failures.get(entry_id, 0), delivery.attempt)
        if count >= attempt.max_deliveries:
            group.failures.pop(entry_id, None)
            dead_id = self._bury(delivery, attempt.failure, count, now)
            group.pending.pop(entry_id, None)
            return Outcome(Verdict.DEAD, count, dead_id)
        group.failures[entry_id] = count
        if attempt.delay is None:
            return Outcome(Verdict.HELD, count)
        group.pending.pop(entry_id, None)
        group.delayed.push(now + attempt.delay, entry_id)
        self._box.signal.notify()
        return Outcome(Verdict.RETRIED, count)

    async def record_failure(self, delivery: Delivery) -> int:
        """Count ``delivery``'s attempt as failed and return the failed attempts so far.

        Idempotent for one delivery: the count becomes at least ``delivery.attempt``.

        Raises:
            ConfigurationError: the delivery id is not a stream entry id.
            ClosedError: the consumer or its transport is closed.
        """
        entry_id = parse_id(delivery.id)
        await self._enter_operation()
        failures = max(self._group.failures.get(entry_id, 0), delivery.attempt)
        self._group.failures[entry_id] = failures
        return failures

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> str:
        """Append ``delivery`` to ``<name>:dead`` with ``failure``, ack it, clear its count;
        return the dead letter's id.

        Raises:
            ConfigurationError: the delivery id is not a stream entry id.
            ClosedError: the consumer or its transport is closed.
        """
        entry_id = parse_id(delivery.id)
        now = await self._enter_operation()
        attempts = max(self._group.failures.pop(entry_id, 0), delivery.attempt)
        dead_id = self._bury(delivery, failure, attempts, now)
        self._group.pending.pop(entry_id, None)
        return dead_id

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        """Ack ``delivery`` now and deliver the same entry again to this group in ``delay`` s.

        Only this group sees the retry (the entry is not added to the stream again);
        its failure count is kept, so the next ``attempt`` is 1 + failures recorded.

        Raises:
            ConfigurationError: ``delay`` is negative, or the id is not an entry id.
            ClosedError: the consumer or its transport is closed.
        """
        check_delay(delay)
        entry_id = parse_id(delivery.id)
        now = await self._enter_operation()
        self._group.pending.pop(entry_id, None)
        self._group.delayed.push(now + delay, entry_id)
        self._box.signal.notify()
