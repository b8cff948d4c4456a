"""The interface between the runtime and a message store: small enough for one screen.

A :class:`Transport` knows how to put payloads into a mailbox (:meth:`Transport.send`)
and opens :class:`Consumer` objects that take them out. The runtime (``actors``)
only ever talks to a store through these classes; ``transports.memory`` and
``transports.redis`` implement them with the same semantics, checked by one
conformance suite.

Payloads are opaque ``bytes`` here; encoding is the runtime's job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from transports._exceptions import ActorsError, ConfigurationError

from ._dead_letters import (
    check_dead_letter_ids as check_dead_letter_ids,
    check_replayed as check_replayed,
)
from ._values import (
    DEAD_MAXLEN as DEAD_MAXLEN,
    DeadLetter as DeadLetter,
    Delivery as Delivery,
    FailedAttempt as FailedAttempt,
    Failure as Failure,
    MailboxKind as MailboxKind,
    MailboxSpec as MailboxSpec,
    MailboxStats as MailboxStats,
    NodeInfo as NodeInfo,
    Outcome as Outcome,
    PartitionLeases as PartitionLeases,
    Settlement as Settlement,
    Verdict as Verdict,
    check_delay as check_delay,
)

__all__ = [
    "BrokenConsumerError",
    "Consumer",
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
    "Transport",
    "Verdict",
    "check_dead_letter_ids",
    "check_replayed",
]


class BrokenConsumerError(ActorsError):
    """A consumer's background work (lease renewal, heartbeat) died of an unexpected
    error: the consumer cannot keep what it holds, so its calls raise this (the cause
    chained) until it is closed. Not a :class:`TransportError`: waiting does not mend
    it; open a new consumer.
    """


class Consumer(ABC):
    """One consumer of one mailbox. Used by one task at a time, except that an ack (or
    :meth:`settle`) may run beside a fetch.

    A consumer of a durable mailbox holds the messages it fetched until they are
    acked, dead-lettered or retried; if its process dies, another consumer takes
    them over once the lease runs out. Closing it (leaving the context manager
    that opened it) stops renewing the lease but does not give up unacked
    messages: they are redelivered to the next consumer of the same name first.
    """

    @abstractmethod
    async def fetch(self, max_count: int, *, ack: Sequence[Delivery] = ()) -> Sequence[Delivery]:
        """Ack ``ack``, then wait for at least one message and return up to ``max_count``,
        oldest first.

        Messages this consumer (by name) fetched earlier and never acked come
        first, with their ``attempt`` raised.

        ``ack`` is acked as :meth:`ack` would, in the same round trip as the fetch
        where the store can (the runtime acks a handled batch as it fetches the
        next). When the call returns, the acks are made; when it raises, they may or
        may not be. Acking again is harmless: deliveries this consumer no longer
        holds are skipped.

        Raises:
            ConfigurationError: ``max_count`` is below 1.
            TransportError: the store failed; the consumer stays usable and the
                caller may retry after a pause (with the same ``ack``).
            ClosedError: the consumer or its transport was closed.
        """

    @abstractmethod
    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Mark the deliveries handled, in one round-trip; a no-op for pub/sub.

        Deliveries this consumer does not hold (acked already, or never fetched
        by it) are skipped.

        Raises:
            TransportError: the store failed; the messages will be redelivered.
            ClosedError: the consumer or its transport was closed.
        """

    @abstractmethod
    async def settle(self, settlement: Settlement) -> dict[MailboxSpec, ActorsError]:
        """Settle a handled batch: store its ``results`` (by target), then ack its
        ``acks``, then hand back its ``releases`` (see :class:`Settlement`).

        The acks are made only once every result is stored (or refused), so a crash
        in between redelivers the batch rather than lose what it produced. A store
        that can do all of it in one write does. Released deliveries come back at
        once, in order, to any consumer, with ``attempt`` unchanged (they were never
        started); for pub/sub releasing does nothing.

        A target that refuses its results (:class:`CommandError`: a key of another
        type, no permission; :class:`ConfigurationError`: a pub/sub pattern) is
        skipped, since retrying cannot help: the refused targets are returned with
        their errors. Acks and releases of deliveries this consumer no longer holds
        are skipped, so settling again is safe.

        Raises:
            TransportError: the store failed; some results may be stored and the acks
                and releases made or not. Calling again is safe (results may then be
                stored twice); unreleased messages come back after the lease.
            ClosedError: the consumer or its transport is closed.
        """

    def abandon(self) -> None:  # noqa: B027
        """Give up this consumer's name: another process consumes under it now.

        Closing the consumer afterwards hands nothing back and leaves the name's
        state in the store alone (the other process's messages with it); what this
        consumer still holds stays with the name. The default does nothing, for a
        store where one name cannot have two consumers.
        """

    def close_by(self, deadline: float) -> None:  # noqa: B027
        """Have closing finish its writes to the store (handing back what this consumer
        holds) by ``deadline`` (trio time) at the latest; what is left then comes back
        after the lease. The default does nothing, for a store whose close writes
        nothing that can wait.
        """

    @abstractmethod
    async def fail(self, attempts: Sequence[FailedAttempt]) -> Sequence[Outcome]:
        """Count each failed attempt and decide its message's fate, all at once (one
        script where the store can); return each one's :class:`Outcome`, in order.

        An attempt's count becomes the larger of the failures recorded and
        ``delivery.attempt`` (so failing one delivery twice counts once); it survives
        restarts of the consumer, so the next delivery carries it in ``attempt``.
        Then: at ``max_deliveries`` the message goes to the dead-letter stream with
        its failure, and is acked (``DEAD``); otherwise it is acked and delivered
        again in ``delay`` seconds, to any consumer of the mailbox (of the group,
        for a stream), its count kept (``RETRIED``), or with ``delay=None`` stays
        held (``HELD``). Pub/sub keeps nothing to retry (``DROPPED``). A message
        this consumer no longer holds is left alone (``TAKEN_OVER``).

        Raises:
            ConfigurationError: a negative delay (nothing was done).
            TransportError: the store failed; the messages stay unacked (their
                failures may be counted).
            ClosedError: the consumer or its transport is closed.
        """

    @abstractmethod
    async def record_failure(self, delivery: Delivery) -> int:
        """Count one failed attempt at ``delivery``; return the attempts so far.

        The count survives restarts of the consumer, so the next delivery of the
        same message carries it in ``attempt``.

        Raises:
            TransportError: the store failed.
        """

    @abstractmethod
    async def dead_letter(self, delivery: Delivery, failure: Failure) -> str | None:
        """Move ``delivery`` to the dead-letter stream with ``failure``, and ack it.

        Returns the dead letter's id (the one :meth:`Transport.replay_dead_letters`
        takes), or None when the consumer no longer held the message (its lease
        lapsed and another consumer took it over): then nothing was done.

        Raises:
            TransportError: the store failed; the message stays unacked.
        """

    async def dead_letter_many(
        self, letters: Sequence[tuple[Delivery, Failure]]
    ) -> list[str | None]:
        """:meth:`dead_letter` for each ``(delivery, failure)`` of ``letters``; return
        their dead letter ids (None where nothing was done), in order. A store that can
        do them all in one round trip does (this default makes the calls one after
        another).

        Raises:
            TransportError: the store failed; the messages not yet done stay unacked.
        """
        return [await self.dead_letter(delivery, failure) for delivery, failure in letters]

    @abstractmethod
    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        """Ack ``delivery`` now and deliver it again in ``delay`` seconds.

        The redelivery belongs to the mailbox (any consumer may get it); for a
        stream it stays within the consumer group. Pub/sub, being at-most-once,
        drops the message.

        Raises:
            ConfigurationError: a negative delay.
            TransportError: the store failed; the message stays unacked.
        """


class Transport(ABC):
    """A message store: sends payloads to mailboxes and opens consumers on them."""

    @abstractmethod
    async def send(
        self, spec: MailboxSpec, payloads: Sequence[bytes], *, delay: float = 0.0
    ) -> None:
        """Append ``payloads`` to the mailbox in order, in one round-trip.

        For pub/sub this publishes; a message with no subscriber is dropped.

        With ``delay`` (seconds > 0), the store holds the payloads and appends them,
        in order, once the delay has passed (a durable store keeps them across
        restarts); they are then delivered like any other message, once a consumer
        of the mailbox runs. Pub/sub cannot hold a message.

        Raises:
            ConfigurationError: ``delay`` is negative or not a number, or given for
                pub/sub.
            TransportError: the store failed; none or some may have been sent.
            ClosedError: the transport was closed.
        """

    @abstractmethod
    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        """Open a consumer called ``name`` on the mailbox (creating what it needs).

        A stream's consumer group is created reading from the start (id ``0``), so
        nothing sent before the first consumer is lost.

        Names must be unique among live consumers of a mailbox: a restarted actor
        reuses its name to get its unacked messages back first.

        Raises:
            TransportError: the store failed while setting up.
        """

    @abstractmethod
    async def dead_letters(self, spec: MailboxSpec, count: int = 100) -> Sequence[DeadLetter]:
        """List up to ``count`` dead letters of the mailbox, oldest first."""

    @abstractmethod
    async def replay_dead_letters(self, spec: MailboxSpec, ids: Sequence[str] | None = None) -> int:
        """Send dead letters (all, or those ``ids``) back to the mailbox; return how many.

        Replayed messages leave the dead-letter stream and start again at attempt 1.
        A letter leaves only once its message is stored again: for pub/sub, once
        ``PUBLISH`` reached a subscriber; a letter nobody received stays.

        Raises:
            ReplayError: some letters asked for were not replayed (kept: nobody
                received them; or ids not found); the others were.
            ConfigurationError: ``spec`` is a pub/sub pattern (publish to a channel),
                or an id is not a dead letter id (nothing is replayed).
            TransportError: the store failed; some may have been replayed.
            ClosedError: the transport is closed.
        """

    async def delete_dead_letters(self, spec: MailboxSpec, ids: Sequence[str] | None = None) -> int:
        """Delete dead letters of the mailbox (all, or those ``ids``); return how many.

        All means those dead when the call starts. Ids not found are skipped (not
        counted): deleting twice is harmless.

        Raises:
            ConfigurationError: an id is not a dead letter id (nothing is deleted).
            NotImplementedError: this store cannot delete dead letters.
            TransportError: the store failed; some may have been deleted.
            ClosedError: the transport is closed.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot delete dead letters")

    async def oldest_age(self, spec: MailboxSpec) -> float | None:
        """Seconds since the oldest message of the mailbox not yet acked (waiting, or
        fetched and pending) was stored, where the store can tell (a stream's entry ids
        are the times they were added); None where it cannot (lists, pub/sub) and when
        no message waits.

        Raises:
            TransportError: the store failed. ClosedError: the transport was closed.
        """
        return None

    @abstractmethod
    async def mailbox_stats(self, spec: MailboxSpec) -> MailboxStats:
        """Depth, pending and dead-letter counts of a mailbox (zeros if it does not exist).

        Raises:
            TransportError: the store failed. ClosedError: the transport was closed.
        """

    @abstractmethod
    async def announce(
        self,
        node: str,
        info: Mapping[str, Any] | None,
        ttl: float,
        *,
        instance: str,
        replacing: NodeInfo | None = None,
    ) -> NodeInfo | None:
        """Heartbeat: record that ``node``, held by the process ``instance`` (a token
        unique to one process), is alive for ``ttl`` seconds, with ``info`` (JSON-able:
        its actors and mailboxes). ``info=None`` removes the node.

        A node name belongs to one live process. While another instance's heartbeat
        for ``node`` has not expired, this changes nothing and returns that holder,
        unless the record is still exactly ``replacing`` (one seen to miss its
        heartbeats). Otherwise it returns None.

        Raises:
            TransportError: the store failed. ClosedError: the transport was closed.
        """

    @abstractmethod
    async def nodes(self) -> Sequence[NodeInfo]:
        """The nodes whose last heartbeat has not expired, by name.

        Raises:
            TransportError: the store failed. ClosedError: the transport was closed.
        """

    async def read_mark(self, name: str) -> int | None:
        """The due time (ms since the epoch) the schedule ``name`` last fired for, or None.

        Raises:
            ConfigurationError: this store keeps no marks (the default).
            TransportError: the store failed. ClosedError: the transport was closed.
        """
        raise ConfigurationError(f"{type(self).__name__} keeps no schedule marks")

    async def advance_mark(self, name: str, due_ms: int) -> bool:
        """Raise the mark of the schedule ``name`` to ``due_ms`` (ms since the epoch) if it
        is lower or unset, atomically: True for the one caller that raised it (it fires
        that due time), False for every other (another process fired it, or a later one).

        Raises:
            ConfigurationError: this store keeps no marks (the default).
            TransportError: the store failed. ClosedError: the transport was closed.
        """
        raise ConfigurationError(f"{type(self).__name__} keeps no schedule marks")

    async def lease_partitions(
        self,
        group: str,
        owner: str,
        partitions: int,
        ttl: float,
        *,
        keep: Sequence[int] = (),
        leave: bool = False,
    ) -> PartitionLeases:
        """Heartbeat ``owner`` among the owners of ``group``'s ``partitions`` (numbered
        from 0) for ``ttl`` seconds, and lease it its share, in one atomic step.

        The partitions are spread evenly over the live owners (sorted by name,
        partition ``p`` to the ``p % owners``-th); an owner that misses its
        heartbeats for ``ttl`` drops out and its share moves. A partition's lease is
        held by one owner at a time: a partition wanted by another owner is taken
        only once its holder released it or its lease expired. The holder's leases
        on the partitions of ``keep`` (those it still consumes) are renewed even when
        they are no longer its share; its others that are not its share are released.
        ``leave`` deregisters the owner (its share moves at once), releasing what is
        not in ``keep``.

        The leases run for ``ttl`` from the store's time of the call, which is later
        than the caller's time before it: a caller that stops consuming before its
        own clock's ``ttl`` from before the call never overlaps the next holder.

        Raises:
            ConfigurationError: the store cannot lease partitions.
            TransportError: the store failed (nothing or everything was done).
            ClosedError: the transport is closed.
        """
        raise ConfigurationError(f"{type(self).__name__} cannot lease partitions")

    async def ping(self) -> None:  # noqa: B027  # optional: a memory store is always there
        """Check that the store answers (the runtime calls it before starting actors).

        Raises:
            TransportError: the store cannot be reached, with a message naming it.
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Close every connection. Idempotent."""
