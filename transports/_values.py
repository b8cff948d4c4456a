"""The values the runtime and a message store exchange: where a mailbox lives
(:class:`MailboxSpec`), what a consumer hands out (:class:`Delivery`), what a handled
batch owes it (:class:`Settlement`), why a message died (:class:`Failure`,
:class:`DeadLetter`), and what a store reports (:class:`MailboxStats`, :class:`NodeInfo`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from transports._exceptions import ConfigurationError

__all__ = [
    "DEAD_MAXLEN",
    "DeadLetter",
    "Delivery",
    "FailedAttempt",
    "Failure",
    "MailboxKind",
    "MailboxSpec",
    "MailboxStats",
    "NodeInfo",
    "Outcome",
    "PartitionLeases",
    "Settlement",
    "Verdict",
    "check_delay",
]

MailboxKind = Literal["list", "stream", "pubsub"]

_NAME = re.compile(r"^[^\s{}]+$")


def _check_name(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _NAME.match(value):
        raise ConfigurationError(
            f"mailbox {attribute.name} {value!r} must be non-empty, without spaces or braces"
        )


def _positive(_: object, attribute: attrs.Attribute[Any], value: float | int | None) -> None:
    if value is not None and value <= 0:
        raise ConfigurationError(f"mailbox {attribute.name} must be positive, not {value!r}")


DEAD_MAXLEN = 10_000
"""How many dead letters a mailbox keeps unless told otherwise (the newest)."""


@attrs.frozen
class MailboxSpec:
    """Where a mailbox lives and how it is consumed.

    - ``kind="list"``: a Redis list named ``name``. At-least-once unless
      ``at_most_once``: a fetched message waits in a per-consumer processing list
      until it is acked.
    - ``kind="stream"``: a Redis stream named ``name`` read by consumer group
      ``group`` (default: ``name``); at-least-once. ``maxlen`` caps the stream
      (``MAXLEN ~``) on send.
    - ``kind="pubsub"``: a channel (or a glob ``pattern`` of channels); broadcast,
      at-most-once.

    ``lease`` is how long (seconds) a consumer may stay silent before another one
    takes over its unacknowledged messages; live consumers renew it.

    ``dead_maxlen`` is how many dead letters the mailbox keeps (``<name>:dead``): the
    oldest go first, so that a flood of poison messages cannot fill the store;
    ``None`` keeps them all.

    ``field`` (streams) is the entry field a sent payload is written to; ``codec`` is
    for the runtime above (the transports never read it).

    ``expire`` (lists, Redis only) deletes the list once nothing was sent to it for
    that many seconds (``PEXPIRE`` with every send): for mailboxes whose reader may
    vanish, such as the reply lists of ``ask``, so that unread messages do not pile
    up forever.

    Raises:
        ConfigurationError: on an empty name, braces or spaces in it, or a
            non-positive number.
    """

    kind: MailboxKind
    name: str = attrs.field(validator=_check_name)
    group: str | None = None
    pattern: bool = False
    at_most_once: bool = False
    maxlen: int | None = attrs.field(default=None, validator=_positive)
    lease: float = attrs.field(default=30.0, validator=_positive)
    expire: float | None = attrs.field(default=None, validator=_positive)
    dead_maxlen: int | None = attrs.field(default=DEAD_MAXLEN, validator=_positive)
    #: The stream entry field a payload is written to (``XADD name * <field> <payload>``).
    field: str = attrs.field(default="message", eq=False, repr=False)
    #: How the layer above encodes this mailbox's payloads (an actors codec); opaque to
    #: the transports. Neither takes part in equality: the mailbox is the same.
    codec: Any = attrs.field(default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.kind not in ("list", "stream", "pubsub"):
            raise ConfigurationError(f"unknown mailbox kind {self.kind!r}")
        if self.group is not None and self.kind != "stream":
            raise ConfigurationError("only a stream mailbox has a consumer group")
        if self.pattern and self.kind != "pubsub":
            raise ConfigurationError("only a pub/sub mailbox can subscribe to a pattern")
        if self.at_most_once and self.kind != "list":
            raise ConfigurationError("at_most_once applies to list mailboxes")
        if self.maxlen is not None and self.kind != "stream":
            raise ConfigurationError("maxlen applies to stream mailboxes")
        if self.expire is not None and self.kind != "list":
            raise ConfigurationError("expire applies to list mailboxes")

    @property
    def group_name(self) -> str:
        """The consumer group of a stream mailbox (its name unless set)."""
        return self.group or self.name

    @property
    def durable(self) -> bool:
        """True when a message waits for an ack (list and stream, not at-most-once)."""
        return self.kind == "stream" or (self.kind == "list" and not self.at_most_once)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, address: str) -> MailboxSpec:
        """Parse an address such as ``"list:jobs"``, ``"stream:ledger"`` or ``"pubsub:news"``.

        This is the form ``str(spec)`` gives, and the form of ``reply_to`` headers.

        Raises:
            ConfigurationError: the address has no known kind prefix or a bad name.
        """
        kind, sep, name = address.partition(":")
        if not sep or kind not in ("list", "stream", "pubsub"):
            raise ConfigurationError(
                f"bad mailbox address {address!r}: expected list:NAME, stream:NAME or pubsub:NAME"
            )
        return cls(kind, name)  # type: ignore[arg-type]  # checked just above


@attrs.frozen
class Delivery:
    """One payload handed to a consumer.

    ``id`` identifies the delivery within its mailbox (a stream entry id, or a
    transport-made id for lists and channels). ``attempt`` is ``1 + failures``:
    failures are recorded by :meth:`Consumer.record_failure` (idempotent per
    delivery) and by a takeover from a consumer that died holding the message (a
    message that kills processes ends in dead letters too); a redelivery to the
    same consumer name after a clean close counts as well. Acking or
    dead-lettering clears the count; :meth:`Consumer.retry_later` keeps it.
    ``channel`` is the channel a pub/sub message came through (useful with patterns).

    ``token`` is the consumer's own handle on this delivery, opaque to everyone else:
    the consumer that made it settles (acks, releases, fails) by it. Two fetches of
    equal messages give deliveries with different tokens, so settling one never
    settles the other. It takes no part in equality.
    """

    id: str
    payload: bytes
    attempt: int = 1
    channel: str | None = None
    token: object = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class Settlement:
    """What a handled batch owes its consumer's store, settled by
    :meth:`Consumer.settle` in this order: ``results`` (payloads by target mailbox:
    replies, publishes), then the ``acks`` of the deliveries handled, then the
    ``releases`` of deliveries never started, handed back in order and not counted as
    failed attempts."""

    results: Mapping[MailboxSpec, Sequence[bytes]] = attrs.field(factory=dict)
    acks: Sequence[Delivery] = ()
    releases: Sequence[Delivery] = ()

    def __bool__(self) -> bool:
        return bool(self.results or self.acks or self.releases)


@attrs.frozen
class Failure:
    """Why a message is being dead-lettered: the reason, and the error if one was raised."""

    reason: str
    actor: str = ""
    error_type: str = ""
    error: str = ""
    traceback: str = ""


@attrs.frozen
class FailedAttempt:
    """A failed attempt at ``delivery``, for :meth:`Consumer.fail`: counted, then the
    message is dead-lettered with ``failure`` once its attempts reach
    ``max_deliveries`` (1: at once), else delivered again in ``delay`` seconds, or,
    with ``delay=None``, kept held by the consumer (to release, or to redeliver to
    the same name)."""

    delivery: Delivery
    failure: Failure
    delay: float | None = 0.0
    max_deliveries: int = 1


class Verdict(enum.Enum):
    """What :meth:`Consumer.fail` did with a failed attempt."""

    RETRIED = "retried"
    """Counted; delivered again (to any consumer) once its delay is over."""
    HELD = "held"
    """Counted; still held by the consumer (``delay=None``)."""
    DEAD = "dead"
    """Dead-lettered (its count forgotten): its attempts reached ``max_deliveries``."""
    DROPPED = "dropped"
    """Pub/sub (at-most-once): nothing is kept to deliver again."""
    TAKEN_OVER = "taken_over"
    """Nothing done: the consumer no longer held the message (its lease lapsed and
    another consumer took it over)."""


@attrs.frozen
class Outcome:
    """The fate of one :class:`FailedAttempt`: its ``verdict``, its failed ``attempts``
    so far, and its dead letter's id (``DEAD`` only, else None)."""

    verdict: Verdict
    attempts: int
    dead_letter_id: str | None = None


@attrs.frozen
class DeadLetter:
    """A message in a mailbox's dead-letter stream (``<name>:dead``); ``dead_at`` is Unix time."""

    id: str
    payload: bytes
    failure: Failure
    attempts: int
    dead_at: float


@attrs.frozen
class MailboxStats:
    """How full a mailbox is: ``depth`` messages wait (for a stream: not yet read
    by the group), ``pending`` were fetched and not acked, ``dead`` are dead letters."""

    depth: int
    pending: int
    dead: int


@attrs.frozen
class NodeInfo:
    """A runtime process that announced itself: its name, what it said, when (Unix time),
    and the token of the process that holds the name (``instance``)."""

    node: str
    info: Mapping[str, Any]
    seen_at: float
    instance: str = ""


@attrs.frozen
class PartitionLeases:
    """What :meth:`Transport.lease_partitions` gave an owner: the partitions whose
    lease it ``held`` (for the ``ttl`` from the start of the call), those of them it
    is ``wanted`` to consume (the others it should stop consuming, and leave out of
    ``keep`` once stopped, which releases them), and how many ``owners`` are live."""

    held: tuple[int, ...]
    wanted: tuple[int, ...]
    owners: int


def check_delay(delay: float) -> None:
    """Refuse a retry ``delay`` that is not a number of seconds >= 0 (NaN included).

    Raises:
        ConfigurationError: it is negative or not a number.
    """
    if not delay >= 0:
        raise ConfigurationError(f"retry delay must be >= 0 seconds, not {delay!r}")
