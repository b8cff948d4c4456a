"""What the memory consumers share: their lifecycle and the blocking fetch loop."""

from __future__ import annotations

import enum
from abc import abstractmethod
from collections.abc import Sequence

import trio

from transports._exceptions import ActorsError, ClosedError, CommandError, ConfigurationError

from .._base import Consumer
from .._values import (
    Delivery,
    FailedAttempt,
    Failure,
    MailboxSpec,
    Outcome,
    Settlement,
    check_delay,
)
from ._state import Signal
from ._store import MemoryStore


class ConsumerState(enum.Enum):
    """A memory consumer is open from its creation until its context or transport closes."""

    OPEN = "open"
    CLOSED = "closed"


class MemoryConsumer(Consumer):
    """Base of the list, stream and pub/sub consumers of a :class:`MemoryStore`.

    A subclass says what one attempt to take messages does (:meth:`_take`) and
    when waiting should stop even if nothing is sent (:meth:`_wakeup`: a lease
    running out, a retry falling due). :meth:`fetch` waits on the mailbox's
    :class:`Signal` between attempts, so nothing polls.

    Every method takes effect after its checkpoint, so a cancelled call changes
    nothing; :meth:`fetch` moves messages only in the step that returns them.
    """

    def __init__(self, store: MemoryStore, spec: MailboxSpec, name: str, signal: Signal) -> None:
        self._store = store
        self._spec = spec
        self._name = name
        self._signal = signal
        self._state = ConsumerState.OPEN

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} of {self._spec} {self._state.value}>"

    @property
    def name(self) -> str:
        """This consumer's name."""
        return self._name

    @property
    def spec(self) -> MailboxSpec:
        """The mailbox this consumer reads."""
        return self._spec

    @property
    def state(self) -> ConsumerState:
        """Open or closed."""
        return self._state

    # -- lifecycle, driven by MemoryTransport ------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Register with the store (join the members, subscribe).

        Raises:
            ConfigurationError: an open consumer of the mailbox has the same name.
        """

    @abstractmethod
    def _leave(self, now: float) -> None:
        """Unregister from the store at ``now``; keep unacked messages for a successor."""

    def _close(self, now: float) -> None:
        """Close (idempotent) and wake a blocked :meth:`fetch`, which raises ClosedError."""
        if self._state is ConsumerState.CLOSED:
            return
        self._state = ConsumerState.CLOSED
        self._leave(now)
        self._signal.notify()

    def _check_open(self) -> None:
        if self._state is ConsumerState.CLOSED:
            raise ClosedError(f"consumer {self._name!r} of {self._spec} is closed")

    async def _enter_operation(self) -> float:
        """Checkpoint, check that the consumer is open, and return the time now."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        return trio.current_time()

    # -- fetching -----------------------------------------------------------------

    @abstractmethod
    def _take(self, max_count: int, now: float) -> list[Delivery]:
        """Move up to ``max_count`` messages to this consumer and return them (maybe none)."""

    @abstractmethod
    def _wakeup(self, now: float) -> float:
        """When (trio time) a fetch with nothing to take should look again, unprompted."""

    async def fetch(self, max_count: int, *, ack: Sequence[Delivery] = ()) -> Sequence[Delivery]:
        """Ack ``ack``, then wait for at least one message and return up to ``max_count``,
        oldest first.

        Messages this consumer's name fetched before and never acked come first,
        with their ``attempt`` raised. Cancelling a waiting fetch loses nothing.

        Raises:
            ConfigurationError: ``max_count`` is below 1.
            ClosedError: the consumer or its transport is closed, also while waiting.
        """
        if max_count < 1:
            raise ConfigurationError(f"fetch needs max_count >= 1, not {max_count!r}")
        if ack:
            await self.ack(ack)
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            self._check_open()
            now = trio.current_time()
            # Messages sent with a delay join the mailbox when a consumer looks at or
            # after their due time: no task runs for them, a waiting fetch wakes then.
            scheduled = self._store._promote(self._spec.name, now)
            deliveries = self._take(max_count, now)
            if deliveries:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return deliveries
            await self._signal.wait_until(min(self._wakeup(now), scheduled))

    # -- settling -------------------------------------------------------------------

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Mark the deliveries handled; those this consumer does not hold are skipped.

        Raises:
            ConfigurationError: a stream delivery id is not an entry id.
            ClosedError: the consumer or its transport is closed.
        """
        await self._enter_operation()
        self._ack_now(deliveries)

    @abstractmethod
    def _ack_now(self, deliveries: Sequence[Delivery]) -> None:
        """Ack ``deliveries`` (those held), and forget their failure counts."""

    @abstractmethod
    def _release_now(self, deliveries: Sequence[Delivery]) -> None:
        """Hand back ``deliveries`` (those held) to the front of the mailbox, in order."""

    async def settle(self, settlement: Settlement) -> dict[MailboxSpec, ActorsError]:
        """Append the results to their mailboxes, then ack, then release, all at once
        (see :meth:`Consumer.settle`).

        Raises:
            ConfigurationError: a stream delivery id is not an entry id.
            ClosedError: the consumer or its transport is closed.
        """
        now = await self._enter_operation()
        refused: dict[MailboxSpec, ActorsError] = {}
        for spec, payloads in settlement.results.items():
            try:
                self._store._append(spec, payloads, now)
            except (CommandError, ConfigurationError) as exc:
                refused[spec] = exc
        self._ack_now(settlement.acks)
        self._release_now(settlement.releases)
        return refused

    # -- fates ------------------------------------------------------------------------

    async def fail(self, attempts: Sequence[FailedAttempt]) -> Sequence[Outcome]:
        """Count each failed attempt and decide its fate, all at once (see
        :meth:`Consumer.fail`).

        Raises:
            ConfigurationError: a negative delay, or a stream delivery id that is not
                an entry id (nothing was done).
            ClosedError: the consumer or its transport is closed.
        """
        for attempt in attempts:
            if attempt.delay is not None:
                check_delay(attempt.delay)
            self._check_delivery(attempt.delivery)
        now = await self._enter_operation()
        return [self._fail_one(attempt, now) for attempt in attempts]

    def _check_delivery(self, delivery: Delivery) -> None:
        """Raise ConfigurationError if ``delivery`` cannot be one of this mailbox's."""

    @abstractmethod
    def _fail_one(self, attempt: FailedAttempt, now: float) -> Outcome:
        """Count ``attempt`` and carry out its fate at ``now``."""

    # -- shared helpers of the fates ----------------------------------------------------

    def _bury(self, delivery: Delivery, failure: Failure, attempts: int, now: float) -> str:
        """Append ``delivery`` to the mailbox's dead-letter stream; return the letter's id."""
        dead = self._store._dead(self._spec.name)
        return dead.add(delivery.payload, failure, attempts, now, self._spec.dead_maxlen).id
