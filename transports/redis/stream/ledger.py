"""What a stream consumer knows of its entries, as plain data: nothing here awaits or
reads a clock (callers pass ``now``, trio time), like the memory transport's state.

The consumer does the I/O and tells the ledger what happened; the ledger says what
the consumer holds, what to ack, when to run the take script and how long to wait.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..._values import Delivery

__all__ = ["StreamLedger", "new_delivery"]

# The slots of Delivery, set directly: a fetch builds many deliveries, and attrs'
# frozen __init__ (object.__setattr__ per field) costs more than the rest together.
_new = object.__new__
_SET = [
    Delivery.__dict__[name].__set__ for name in ("id", "payload", "attempt", "channel", "token")
]
_set_id, _set_payload, _set_attempt, _set_channel, _set_token = _SET


def new_delivery(entry_id: str, payload: bytes, attempt: int) -> Delivery:
    """The delivery of the entry ``entry_id``, whose token is its id."""
    delivery: Delivery = _new(Delivery)
    _set_id(delivery, entry_id)
    _set_payload(delivery, payload)
    _set_attempt(delivery, attempt)
    _set_channel(delivery, None)
    _set_token(delivery, entry_id)
    return delivery


class StreamLedger:
    """The entries a stream consumer handed out and not yet settled, and its schedule.

    - ``held``: entry id -> attempt of each delivery handed out and not yet acked,
      retried, released or dead-lettered (the entries the keep-alive renews).
    - ``failed``: held ids whose failure count exists in ``{name}:failures`` (an ack
      deletes it).
    - ``history``: where the take script reads this name's own pending entries from
      (``""`` when it has read them all); ``lost_track``: a read was interrupted, so
      entries may be pending under the name that it never handed out.
    - ``next_maintenance``/``next_due``: when the next claim of silent consumers'
      entries, and the next retry, fall due (trio time).
    """

    __slots__ = (
        "claim_cursor",
        "failed",
        "has_failures",
        "held",
        "history",
        "lease",
        "lost_track",
        "next_due",
        "next_maintenance",
    )

    def __init__(self, lease: float) -> None:
        self.lease = lease
        self.held: dict[str, int] = {}
        self.failed: set[str] = set()
        self.history = "0"
        self.lost_track = False
        self.claim_cursor = "0-0"
        self.has_failures = True  # until a take says otherwise: look counts up
        self.next_maintenance = -math.inf
        self.next_due = math.inf

    # -- what is held ---------------------------------------------------------------

    def holding(self, deliveries: Iterable[Delivery]) -> list[Delivery]:
        """Those of ``deliveries`` still held, by token (an entry's token is its id;
        acking one again must be skipped)."""
        held = self.held
        return [delivery for delivery in deliveries if delivery.token in held]

    def hand_out(self, deliveries: Iterable[Delivery]) -> None:
        """``deliveries`` went to the caller: held until settled."""
        held = self.held
        for delivery in deliveries:
            held[delivery.id] = delivery.attempt

    def forget(self, deliveries: Iterable[Delivery]) -> None:
        """``deliveries`` were settled (acked, retried, released, dead-lettered)."""
        for delivery in deliveries:
            self.held.pop(delivery.id, None)
            self.failed.discard(delivery.id)

    def counted_failure(self, delivery: Delivery) -> None:
        """A failure of ``delivery`` was (or is being) recorded in the store."""
        self.failed.add(delivery.id)
        self.has_failures = True

    def failure_ids(self, deliveries: Iterable[Delivery]) -> list[str]:
        """The ids of ``deliveries`` that may have a failure count to delete on ack."""
        failed = self.failed
        return [d.id for d in deliveries if d.id in failed or d.attempt > 1]

    def unhanded(self, pending: Iterable[str]) -> list[str]:
        """Of the ids ``pending`` under this name, those never handed out."""
        held = self.held
        return [entry_id for entry_id in pending if entry_id not in held]

    def lose_track(self) -> None:
        """A read was interrupted or failed: entries may be pending under this name that
        it never handed out. The next take reads the pending list again, and closing
        hands back what it finds there."""
        self.history = "0"
        self.lost_track = True

    # -- the schedule -----------------------------------------------------------------

    def must_take(self, now: float) -> bool:
        """True when the next fetch must run the take script (own pending entries to
        read, a claim or a retry due), not just wait for new entries."""
        return bool(self.history) or now >= min(self.next_maintenance, self.next_due)

    def claims(self, now: float) -> bool:
        """True when a take at ``now`` should claim silent consumers' entries."""
        return now >= self.next_maintenance

    def taken(
        self,
        now: float,
        *,
        claimed: bool,
        history: str,
        claim_cursor: str,
        wait_ms: int,
        has_failures: bool,
    ) -> None:
        """The take script ran at ``now`` (claiming if ``claimed``) and replied where
        to read history and claims from next, how long until the next retry is due
        (``wait_ms``, -1: none) and whether any failure count exists."""
        self.history = history
        self.claim_cursor = claim_cursor
        if claimed:
            self.next_maintenance = now + self.lease / 2
        self.next_due = math.inf if wait_ms < 0 else now + wait_ms / 1000
        self.has_failures = has_failures

    def delivered(self, entries: Iterable[tuple[str, bytes, int]]) -> list[Delivery]:
        """The deliveries of entries ``(id, payload, attempt)`` a read returned, less
        those already in the caller's hands (read again after an interruption)."""
        held = self.held
        out = []
        for entry_id, payload, attempt in entries:
            if entry_id in held:
                continue
            if attempt > 1:
                self.failed.add(entry_id)
            out.append(new_delivery(entry_id, payload, attempt))
        return out

    def retry_due(self, when: float) -> None:
        """A retry falls due at ``when`` (trio time): look again by then."""
        self.next_due = min(self.next_due, when)

    def wait_limit(self, now: float) -> float:
        """The longest a blocking read at ``now`` may wait (seconds; unbounded below):
        a third of the lease, or until the next claim or retry falls due."""
        return min(self.lease / 3, min(self.next_maintenance, self.next_due) - now)

    def to_renew(self) -> Sequence[str]:
        """The ids whose lease the keep-alive renews (those held)."""
        return list(self.held)
