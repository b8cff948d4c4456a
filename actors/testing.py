"""Test your actors in-process, on the memory transport, with pytest-trio.

::

    from actors.testing import run_test_system

    async def test_ledger():
        async with run_test_system(system) as probe:
            await probe.system.tell("ledger", Deposit("a", 10))
            await probe.drain()
            assert probe.sent("pubsub:balances") == [{"account": "a", "total": 10}]

The system under test keeps its actors, supervisors and publishers; only its store
is replaced by an in-memory one that records every message sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import trio
import trio.testing

from transports import (
    ActorsError,
    Consumer,
    DeadLetter,
    Delivery,
    FailedAttempt,
    Failure,
    MailboxSpec,
    MailboxStats,
    NodeInfo,
    Outcome,
    PartitionLeases,
    Settlement,
    Transport,
)
from transports.memory import MemoryTransport

from ._codec import Envelope, structure
from ._codec_choice import decode_reply
from ._system import ActorSystem

__all__ = ["Probe", "RecordingConsumer", "RecordingTransport", "run_test_system"]


class RecordingConsumer(Consumer):
    """A consumer of a :class:`RecordingTransport`: the inner transport's consumer,
    whose settled results the transport records (as it records what it sends)."""

    def __init__(self, inner: Consumer, sent: list[tuple[MailboxSpec, bytes]]) -> None:
        self.inner = inner
        self._sent = sent

    async def fetch(self, max_count: int, *, ack: Sequence[Delivery] = ()) -> Sequence[Delivery]:
        """The inner consumer's fetch."""
        return await self.inner.fetch(max_count, ack=ack)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """The inner consumer's ack."""
        await self.inner.ack(deliveries)

    async def settle(self, settlement: Settlement) -> dict[MailboxSpec, ActorsError]:
        """Record the results, then settle through the inner consumer."""
        for spec, payloads in settlement.results.items():
            self._sent.extend((spec, payload) for payload in payloads)
        return await self.inner.settle(settlement)

    async def record_failure(self, delivery: Delivery) -> int:
        """The inner consumer's record_failure."""
        return await self.inner.record_failure(delivery)

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> str | None:
        """The inner consumer's dead_letter."""
        return await self.inner.dead_letter(delivery, failure)

    async def dead_letter_many(
        self, letters: Sequence[tuple[Delivery, Failure]]
    ) -> list[str | None]:
        """The inner consumer's dead_letter_many."""
        return await self.inner.dead_letter_many(letters)

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        """The inner consumer's retry_later."""
        await self.inner.retry_later(delivery, delay)

    async def fail(self, attempts: Sequence[FailedAttempt]) -> Sequence[Outcome]:
        """The inner consumer's fail."""
        return await self.inner.fail(attempts)

    def abandon(self) -> None:
        """The inner consumer's abandon."""
        self.inner.abandon()

    def close_by(self, deadline: float) -> None:
        """The inner consumer's close_by."""
        self.inner.close_by(deadline)


@attrs.define
class RecordingTransport(Transport):
    """A transport that records every payload sent through it (and every result its
    consumers settle), then forwards it."""

    inner: Transport = attrs.field(factory=MemoryTransport)
    sent: list[tuple[MailboxSpec, bytes]] = attrs.field(factory=list)

    async def send(
        self, spec: MailboxSpec, payloads: Sequence[bytes], *, delay: float = 0.0
    ) -> None:
        """Record, then send through the inner transport (a delayed send is recorded
        when sent, not when due)."""
        self.sent.extend((spec, p) for p in payloads)
        if delay:
            await self.inner.send(spec, payloads, delay=delay)
        else:
            await self.inner.send(spec, payloads)

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        """The inner transport's consumer, recording what it settles."""
        return self._recording(spec, name)

    @asynccontextmanager
    async def _recording(self, spec: MailboxSpec, name: str) -> AsyncIterator[Consumer]:
        async with self.inner.consumer(spec, name) as consumer:
            yield RecordingConsumer(consumer, self.sent)

    async def dead_letters(self, spec: MailboxSpec, count: int = 100) -> Sequence[DeadLetter]:
        """The inner transport's dead letters."""
        return await self.inner.dead_letters(spec, count)

    async def replay_dead_letters(self, spec: MailboxSpec, ids: Sequence[str] | None = None) -> int:
        """Replay through the inner transport."""
        return await self.inner.replay_dead_letters(spec, ids)

    async def mailbox_stats(self, spec: MailboxSpec) -> MailboxStats:
        """The inner transport's counts."""
        return await self.inner.mailbox_stats(spec)

    async def announce(
        self,
        node: str,
        info: Mapping[str, Any] | None,
        ttl: float,
        *,
        instance: str,
        replacing: NodeInfo | None = None,
    ) -> NodeInfo | None:
        """Announce through the inner transport."""
        return await self.inner.announce(node, info, ttl, instance=instance, replacing=replacing)

    async def nodes(self) -> Sequence[NodeInfo]:
        """The inner transport's live nodes."""
        return await self.inner.nodes()

    async def read_mark(self, name: str) -> int | None:
        """The inner transport's schedule mark."""
        return await self.inner.read_mark(name)

    async def advance_mark(self, name: str, due_ms: int) -> bool:
        """Raise the inner transport's schedule mark."""
        return await self.inner.advance_mark(name, due_ms)

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
        """Lease through the inner transport."""
        return await self.inner.lease_partitions(
            group, owner, partitions, ttl, keep=keep, leave=leave
        )

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.inner.aclose()


@attrs.define
class Probe:
    """A running test system, and what was sent while it ran."""

    system: ActorSystem
    transport: RecordingTransport

    async def drain(self, cushion: float = 0.0) -> None:
        """Wait until every actor is idle: all tasks blocked, nothing left to handle.

        With the memory transport a blocked system is a drained one: actors only
        block waiting for an empty mailbox (or on a timer, such as a retry delay).
        """
        await trio.testing.wait_all_tasks_blocked(cushion)

    def envelopes(self, target: Any) -> list[Envelope]:
        """Every message sent to ``target`` (anything :meth:`ActorSystem.resolve` takes)."""
        spec = self.system.resolve(target)
        return [decode_reply(payload) for box, payload in self.transport.sent if box == spec]

    def sent(self, target: Any, as_type: Any = None) -> list[Any]:
        """The bodies sent to ``target``: plain JSON data, or structured as ``as_type``."""
        envelopes = self.envelopes(target)
        if as_type is None:
            return [e.body for e in envelopes]
        return [structure(e, as_type) for e in envelopes]


@asynccontextmanager
async def run_test_system(system: ActorSystem) -> AsyncIterator[Probe]:
    """Run ``system`` on a recording in-memory transport for the body of the block.

    Raises:
        Whatever the system raises on start (a handler-less actor, a failing
        ``on_start``...), and on exit a root supervisor failure.
    """
    transport = RecordingTransport()
    try:
        async with system.lifecycle.running(transport):
            yield Probe(system, transport)
    finally:
        with trio.CancelScope(shield=True):
            await transport.aclose()
