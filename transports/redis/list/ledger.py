"""What a list consumer knows of its processing list, as plain data: the deliveries it
holds (:class:`Holdings`, by payload), its epoch and ack ids, and its schedule
(:class:`ListLedger`). Nothing here awaits or reads a clock (callers pass ``now``,
trio time), like the memory transport's state.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterator, Sequence

from ..._values import Delivery
from ..keys import digest
from .scripts import ListAck

__all__ = [
    "NO_LEFTOVERS",
    "OPENING",
    "RESYNC",
    "Holdings",
    "ListDelivery",
    "ListLedger",
    "new_delivery",
]

# What LIST_TAKE does with this consumer's processing list before taking new messages.
NO_LEFTOVERS, RESYNC, OPENING = "0", "1", "2"

QUIET_SPAN = 0.5
"""After a wait returned the only message there was, the next fetch waits at once
(without LIST_TAKE first) if the last LIST_TAKE ran less than this long ago (s)."""

# The slots of Delivery, set directly: a fetch builds many deliveries, and attrs'
# frozen __init__ (object.__setattr__ per field) costs more than the rest together.
_SLOTS = {
    name: Delivery.__dict__[name] for name in ("id", "payload", "attempt", "channel", "token")
}
_ID = _SLOTS["id"]
_new = object.__new__
_set_payload = _SLOTS["payload"].__set__
_set_attempt = _SLOTS["attempt"].__set__
_set_channel = _SLOTS["channel"].__set__
_set_token = _SLOTS["token"].__set__
_tokens = itertools.count(1)  # one series per process: no two deliveries share a token


class ListDelivery(Delivery):
    """A :class:`Delivery` of a list message, whose ``id`` (the SHA-1 of its payload,
    also its key in ``{name}:failures``) is computed when first read.

    It equals (and hashes like) a plain ``Delivery`` with the same fields.
    """

    __slots__ = ()

    @property
    def id(self) -> str:
        try:
            return _ID.__get__(self)  # type: ignore[no-any-return]
        except AttributeError:
            value = digest(self.payload)
            _ID.__set__(self, value)
            return value

    @id.setter
    def id(self, value: str) -> None:  # attrs' __init__ and __setstate__ set it
        _ID.__set__(self, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Delivery):
            return NotImplemented
        return (
            self.payload == other.payload
            and self.attempt == other.attempt
            and self.channel == other.channel
            and self.id == other.id
        )

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = Delivery.__hash__


def new_delivery(payload: bytes, attempt: int) -> ListDelivery:
    """A delivery of ``payload`` with a token of its own."""
    delivery = _new(ListDelivery)
    _set_payload(delivery, payload)
    _set_attempt(delivery, attempt)
    _set_channel(delivery, None)
    _set_token(delivery, next(_tokens))
    return delivery


def _same(held: Delivery | None, delivery: Delivery) -> bool:
    """True when ``delivery`` is ``held`` (has its token; equal copies do not)."""
    return held is not None and held.token == delivery.token


def _tokens_of(deliveries: Sequence[Delivery]) -> tuple[object, ...]:
    return tuple([delivery.token for delivery in deliveries])


class Holdings:
    """The deliveries a consumer holds unacked, by payload (equal payloads may repeat)."""

    __slots__ = ("extra", "first")

    def __init__(self) -> None:
        self.first: dict[bytes, Delivery] = {}
        self.extra: dict[bytes, list[Delivery]] = {}  # further copies; keys are in first

    def add(self, deliveries: Sequence[Delivery]) -> None:
        first = self.first
        payloads = [delivery.payload for delivery in deliveries]
        if first.keys().isdisjoint(payloads) and len(set(payloads)) == len(payloads):
            first.update(zip(payloads, deliveries, strict=True))
            return
        for payload, delivery in zip(payloads, deliveries, strict=True):
            if payload in first:
                self.extra.setdefault(payload, []).append(delivery)
            else:
                first[payload] = delivery

    def remove(self, delivery: Delivery) -> bool:
        """Forget ``delivery`` (else one copy of its payload); True when none is left."""
        payload = delivery.payload
        extra = self.extra.get(payload)
        if extra:
            if _same(self.first.get(payload), delivery):
                self.first[payload] = extra.pop(0)
            else:
                index = next((i for i, d in enumerate(extra) if _same(d, delivery)), -1)
                extra.pop(index)
            if not extra:
                del self.extra[payload]
            return False
        self.first.pop(payload, None)
        return True

    def holds(self, delivery: Delivery) -> bool:
        """True when ``delivery`` itself (its token, not an equal copy's) is held."""
        payload = delivery.payload
        if _same(self.first.get(payload), delivery):
            return True
        return any(_same(copy, delivery) for copy in self.extra.get(payload, ()))

    def are_all(self, deliveries: Sequence[Delivery]) -> bool:
        """True when ``deliveries`` are exactly the deliveries held, each once."""
        first = self.first
        if self.extra or len(deliveries) != len(first):
            return False
        payloads = {delivery.payload for delivery in deliveries}
        return len(payloads) == len(first) and all(
            _same(first.get(d.payload), d) for d in deliveries
        )

    def copies(self, payload: bytes) -> int:
        return (payload in self.first) + len(self.extra.get(payload, ()))

    def attempts(self) -> Iterator[tuple[bytes, int]]:
        for payload, delivery in self.first.items():
            yield payload, delivery.attempt
        for payload, copies in self.extra.items():
            for delivery in copies:
                yield payload, delivery.attempt


class ListLedger:
    """What a list consumer holds and knows of its processing list, and its schedule.

    - ``ready``: deliveries found at open (an earlier life's), not handed out yet.
    - ``held``: deliveries handed out and not settled; ``failed``: held payloads
      with a failure count in ``{name}:failures`` (an ack deletes it).
    - ``epoch``: registered by the last opening or resyncing take (a takeover drops
      it, which refuses an ack by count); ``resync``: the consumer lost track of its
      processing list (a call's outcome is unknown), so the next take resyncs and
      acks go payload by payload until then; ``lost`` counts those losses.
    - ``unsure_ack``: the ack whose outcome is unknown (its deliveries' tokens
      and its id), retried under the same id so the store skips it if it was made.
    - ``next_maintenance``/``next_due``/``taken_at``/``quiet``: when the next
      maintenance and retry fall due, when LIST_TAKE last ran, and whether the last
      wait left the list empty (trio time).
    """

    __slots__ = (
        "acks",
        "durable",
        "epoch",
        "failed",
        "held",
        "last_ack",
        "lease",
        "lost",
        "next_due",
        "next_maintenance",
        "quiet",
        "ready",
        "resync",
        "taken_at",
        "unsure_ack",
    )

    def __init__(self, lease: float, durable: bool) -> None:
        self.lease = lease
        self.durable = durable
        self.ready: deque[Delivery] = deque()
        self.held = Holdings()
        self.failed: set[bytes] = set()
        self.resync = False
        self.lost = 0
        self.epoch = ""
        self.acks = 0
        self.last_ack: tuple[Sequence[Delivery], str] | None = None  # deliveries, id
        self.unsure_ack: tuple[tuple[object, ...], str] | None = None
        self.next_maintenance = -math.inf
        self.next_due = math.inf
        self.taken_at = -math.inf
        self.quiet = False

    # -- what is held ---------------------------------------------------------------

    def hand_out(self, deliveries: Sequence[Delivery]) -> None:
        """``deliveries`` went to the caller: held until settled (when durable)."""
        if self.durable:
            self.held.add(deliveries)

    def holding(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        """Those of ``deliveries`` held (none with ``at_most_once``): acking one again
        must not ack an equal copy fetched since."""
        if not self.durable:
            return ()
        if self.held.are_all(deliveries):  # a whole batch (the usual) needs no filtering
            return deliveries
        holds = self.held.holds
        return [delivery for delivery in deliveries if holds(delivery)]

    def forget(self, delivery: Delivery) -> None:
        """``delivery`` was settled one way or another: stop holding it."""
        if self.durable and self.held.remove(delivery):
            self.failed.discard(delivery.payload)

    def counted_failure(self, delivery: Delivery) -> None:
        """A failure of ``delivery`` was (or is being) recorded in the store."""
        if self.durable:
            self.failed.add(delivery.payload)

    def counted(self, payload: bytes, failed: int) -> Delivery:
        """A delivery of ``payload`` after ``failed`` recorded failures."""
        if failed:
            self.failed.add(payload)
        return new_delivery(payload, 1 + failed)

    def lose_track(self) -> None:
        """The processing list may hold what this consumer does not know of: the next
        take resyncs, and acks go payload by payload until then."""
        if self.durable:
            self.resync = True
            self.lost += 1
            if self.last_ack is not None:  # it may be the call that failed
                deliveries, ack_id = self.last_ack
                self.unsure_ack = (_tokens_of(deliveries), ack_id)

    # -- acks -------------------------------------------------------------------------

    def ack_of(self, deliveries: Sequence[Delivery]) -> ListAck:
        """The ack of LIST_TAKE or LIST_ACK: by count (form ``all``) when ``deliveries``
        are all this consumer holds and it knows its processing list, else payload by
        payload (``each``)."""
        if not deliveries:
            return ListAck(self.epoch)
        known = self.failed
        fields = [digest(d.payload) for d in deliveries if d.attempt > 1 or d.payload in known]
        unique = list(dict.fromkeys(fields))
        ack_id = self._ack_id(deliveries)
        if self.epoch and not self.resync and not self.ready and self.held.are_all(deliveries):
            return ListAck(self.epoch, "all", ack_id, unique, len(deliveries))
        payloads = [delivery.payload for delivery in deliveries]
        return ListAck(self.epoch, "each", ack_id, unique, len(deliveries), payloads)

    def _ack_id(self, deliveries: Sequence[Delivery]) -> str:
        """The id of an ack of ``deliveries``: that of the same ack whose outcome is
        unknown, else a new one (unique: epochs are never reused)."""
        unsure = self.unsure_ack
        if unsure is not None and unsure[0] == _tokens_of(deliveries):
            ack_id = unsure[1]
        else:
            self.acks += 1
            ack_id = f"{self.epoch}.{self.acks}"
        self.last_ack = (deliveries, ack_id)
        return ack_id

    def acked(self, deliveries: Sequence[Delivery]) -> None:
        """The ack of ``deliveries`` was made: forget them (those not held were skipped)."""
        if not self.durable:
            return
        held = self.held
        last = self.last_ack
        if last is not None and last[0] is deliveries:
            self.last_ack = None
        unsure = self.unsure_ack
        if unsure is not None and unsure[0] == _tokens_of(deliveries):
            self.unsure_ack = None  # made: the next ack is another
        if held.extra or self.failed:
            for delivery in self.holding(deliveries):
                self.forget(delivery)
            return
        first = held.first  # no copies, no counts: forgetting is one deletion each
        for delivery in deliveries:
            if _same(first.get(delivery.payload), delivery):
                del first[delivery.payload]

    # -- takes and waits ----------------------------------------------------------------

    def leftovers(self) -> str:
        """What the next LIST_TAKE does with the processing list first."""
        return RESYNC if self.resync else NO_LEFTOVERS

    def maintains(self, now: float) -> bool:
        """True when a take at ``now`` should requeue silent consumers' messages."""
        return self.durable and now >= self.next_maintenance

    def taken(
        self,
        now: float,
        *,
        maintained: bool,
        leftovers: str,
        lost_before: int,
        epoch: str,
        wait_ms: int,
    ) -> None:
        """LIST_TAKE ran at ``now`` (begun when ``lost`` was ``lost_before``), replying
        ``epoch`` (registered, or '') and ``wait_ms`` until the next retry is due (-1:
        none)."""
        if epoch:
            self.epoch = epoch
        if leftovers == RESYNC and self.lost == lost_before:  # nothing went astray since
            self.resync = False
        self.taken_at = now
        if maintained:
            self.next_maintenance = now + self.lease / 2
        self.next_due = math.inf if wait_ms < 0 else now + wait_ms / 1000

    def deliveries(
        self,
        items: Sequence[bytes],
        left: Sequence[bytes],
        counts: Sequence[int],
        lookup: Sequence[bytes],
    ) -> list[Delivery]:
        """The deliveries of a take that replied new ``items``, leftovers ``left`` of
        the processing list, and failure ``counts`` (for ``left``, ``items`` then
        ``lookup``, or none when no message has one): leftovers not held yet, then
        ``lookup`` (a message moved by BLMOVE, older than the top-up), then ``items``."""
        if not counts and not left and not lookup:
            return [new_delivery(payload, 1) for payload in items]  # no failures anywhere
        if not counts:
            counts = [0] * (len(left) + len(items) + len(lookup))
        out: list[Delivery] = []
        if left:
            unmatched = {payload: self.held.copies(payload) for payload in set(left)}
            for payload, failed in zip(left, counts, strict=False):
                if unmatched[payload] > 0:
                    unmatched[payload] -= 1
                else:
                    out.append(self.counted(payload, failed))
        rest = counts[len(left) :]
        fresh = [self.counted(p, f) for p, f in zip(items, rest, strict=False)]
        out += [self.counted(p, f) for p, f in zip(lookup, rest[len(items) :], strict=True)]
        out += fresh
        return out

    def may_wait_at_once(self, now: float) -> bool:
        """True when LIST_TAKE has nothing to do: the last wait found the list empty
        and no maintenance, due retry or resync is pending (messages that came since
        end the wait at once). Consumed: the fetch after runs LIST_TAKE again."""
        if not self.quiet or self.resync:
            return False
        self.quiet = False
        limit = min(self.taken_at + QUIET_SPAN, self.next_due)
        if self.durable:
            limit = min(limit, self.next_maintenance)
        return now < limit

    def wait_limit(self, now: float) -> float:
        """The longest a blocking wait at ``now`` may last (seconds; unbounded below)."""
        limit = min(self.next_due, self.next_maintenance if self.durable else now + 5.0)
        return min(self.lease / 3, limit - now)

    def retry_due(self, when: float) -> None:
        """A retry falls due at ``when`` (trio time): look again by then."""
        self.next_due = min(self.next_due, when)
