"""What a list consumer holds: its deliveries (:class:`ListDelivery`), by payload."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..._values import Delivery
from ..keys import digest

__all__ = ["Holdings", "ListDelivery", "new_delivery"]

# The slots of Delivery, set directly: a fetch builds many deliveries, and attrs'
# frozen __init__ (object.__setattr__ per field) costs more than the rest together.
_SLOTS = {name: Delivery.__dict__[name] for name in ("id", "payload", "attempt", "channel")}
_ID = _SLOTS["id"]
_new = object.__new__
_set_payload = _SLOTS["payload"].__set__
_set_attempt = _SLOTS["attempt"].__set__
_set_channel = _SLOTS["channel"].__set__


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
    delivery = _new(ListDelivery)
    _set_payload(delivery, payload)
    _set_attempt(delivery, attempt)
    _set_channel(delivery, None)
    return delivery


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
            if self.first.get(payload) is delivery:
                self.first[payload] = extra.pop(0)
            else:
                index = next((i for i, d in enumerate(extra) if d is delivery), -1)
                extra.pop(index)
            if not extra:
                del self.extra[payload]
            return False
        self.first.pop(payload, None)
        return True

    def holds(self, delivery: Delivery) -> bool:
        """True when ``delivery`` itself (not an equal copy) is held."""
        payload = delivery.payload
        if self.first.get(payload) is delivery:
            return True
        return any(copy is delivery for copy in self.extra.get(payload, ()))

    def are_all(self, deliveries: Sequence[Delivery]) -> bool:
        """True when ``deliveries`` are exactly the deliveries held, each once."""
        first = self.first
        if self.extra or len(deliveries) != len(first):
            return False
        payloads = {delivery.payload for delivery in deliveries}
        return len(payloads) == len(first) and all(first.get(d.payload) is d for d in deliveries)

    def copies(self, payload: bytes) -> int:
        return (payload in self.first) + len(self.extra.get(payload, ()))

    def attempts(self) -> Iterator[tuple[bytes, int]]:
        for payload, delivery in self.first.items():
            yield payload, delivery.attempt
        for payload, copies in self.extra.items():
            for delivery in copies:
                yield payload, delivery.attempt
