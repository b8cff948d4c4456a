"""MemoryTransport: the Transport interface over a MemoryStore."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Self

import trio

from transports._exceptions import ClosedError, ConfigurationError

from .._base import Transport
from .._dead_letters import check_dead_letter_ids, check_replayed
from .._values import DeadLetter, MailboxSpec, MailboxStats, NodeInfo
from ._consumer import MemoryConsumer
from ._list import ListConsumer
from ._pubsub import PubSubConsumer
from ._store import MemoryStore
from ._stream import StreamConsumer

__all__ = ["MemoryTransport"]


class TransportState(enum.Enum):
    """A memory transport is open from its creation until :meth:`MemoryTransport.aclose`."""

    OPEN = "open"
    CLOSED = "closed"


_CONSUMERS: dict[str, Callable[[MemoryStore, MailboxSpec, str], MemoryConsumer]] = {
    "list": ListConsumer,
    "stream": StreamConsumer,
    "pubsub": PubSubConsumer,
}


class MemoryTransport(Transport):
    """A :class:`~transports.Transport` whose mailboxes live in this process's memory.

    It keeps the promises of the Redis transport (at-least-once lists and
    streams, leases, failure counts, dead letters, broadcast pub/sub), checked by
    the same conformance suite, without a server: ``memory://`` URLs use it, and
    so do tests of everything above the transport. Pass one ``store`` to several
    transports to let them share mailboxes, as processes share one Redis.

    Time is trio's (``trio.current_time()``), so leases and retries follow a
    ``trio.testing.MockClock``. No background task is needed: an open consumer
    holds its messages for as long as it is open, and a waiting ``fetch`` wakes
    up by itself when a lease runs out or a retry falls due. The transport is
    open once made; ``async with MemoryTransport() as transport:`` closes it at the
    end. Closing closes its consumers (their unacked messages wait for a successor
    as after a crash) but leaves the store's mailboxes to the other transports.
    """

    def __init__(self, store: MemoryStore | None = None) -> None:
        self._store = MemoryStore() if store is None else store
        self._state = TransportState.OPEN
        self._consumers: dict[MemoryConsumer, None] = {}

    def __repr__(self) -> str:
        return f"<MemoryTransport {self._state.value} on {self._store!r}>"

    @property
    def store(self) -> MemoryStore:
        """The store holding this transport's mailboxes."""
        return self._store

    @property
    def state(self) -> TransportState:
        """Open or closed."""
        return self._state

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if self._state is TransportState.CLOSED:
            raise ClosedError("the memory transport is closed")

    async def send(
        self, spec: MailboxSpec, payloads: Sequence[bytes], *, delay: float = 0.0
    ) -> None:
        """Append ``payloads`` to the mailbox in order, all at once; with a ``delay``
        (seconds, trio time), once it has passed: the store holds them, and a consumer
        of the mailbox appends them when it looks for messages at or after their due
        time (its wait ends then).

        A stream is trimmed to ``spec.maxlen`` entries (exactly). Pub/sub publishes
        to the subscribers open now, and drops a message nobody listens to.

        Raises:
            ConfigurationError: ``spec`` is a pub/sub pattern (publish to a channel), or
                a delay is negative or given for pub/sub.
            CommandError: the name holds another kind of mailbox (``WRONGTYPE``).
            ClosedError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        self._check_open()
        if not delay >= 0:
            raise ConfigurationError(f"delay must be >= 0 seconds, not {delay!r}")
        if delay:
            self._store._schedule(spec, payloads, trio.current_time() + delay)
            return
        self._store._append(spec, payloads, trio.current_time())

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[MemoryConsumer]:
        """Open a consumer called ``name`` on the mailbox, for the ``async with`` block.

        A stream's consumer group is created on first use, reading from the start.
        Leaving the block closes the consumer without acking anything.

        Raises:
            ConfigurationError: ``name`` is empty, or an open consumer of the
                mailbox has the same name.
            CommandError: the name holds another kind of mailbox (``WRONGTYPE``).
            ClosedError: the transport is closed.
        """
        if not name or name.isspace():
            raise ConfigurationError("a consumer needs a non-empty name")
        return self._open_consumer(spec, name)

    @asynccontextmanager
    async def _open_consumer(self, spec: MailboxSpec, name: str) -> AsyncIterator[MemoryConsumer]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        consumer = _CONSUMERS[spec.kind](self._store, spec, name)
        consumer._open()
        self._consumers[consumer] = None
        try:
            yield consumer
        finally:
            self._consumers.pop(consumer, None)
            consumer._close(trio.current_time())

    async def dead_letters(self, spec: MailboxSpec, count: int = 100) -> Sequence[DeadLetter]:
        """List up to ``count`` dead letters of the mailbox, oldest first.

        Raises:
            ConfigurationError: ``count`` is negative.
            ClosedError: the transport is closed.
        """
        if count < 0:
            raise ConfigurationError(f"count must be >= 0, not {count!r}")
        await trio.lowlevel.checkpoint()
        self._check_open()
        return list(self._store._dead(spec.name).letters.values())[:count]

    async def replay_dead_letters(self, spec: MailboxSpec, ids: Sequence[str] | None = None) -> int:
        """Send dead letters (all, or those ``ids``) back to the mailbox; return how many.

        Replayed letters leave the dead-letter stream and start again at attempt 1.
        A pub/sub letter leaves only if a subscriber received it.

        Raises:
            ReplayError: ids not found, or pub/sub letters no subscriber received
                (kept); the others were replayed.
            ConfigurationError: ``spec`` is a pub/sub pattern (publish to a channel),
                or an id is not a dead letter id (nothing is replayed).
            CommandError: the name holds another kind of mailbox (``WRONGTYPE``).
            ClosedError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        self._check_open()
        if spec.kind == "pubsub" and spec.pattern:
            raise ConfigurationError(f"cannot replay to pattern {spec.name!r}: use a channel")
        letters = self._store._dead(spec.name).letters
        wanted = list(letters) if ids is None else check_dead_letter_ids(ids)
        chosen = [id_ for id_ in wanted if id_ in letters]
        not_found = [id_ for id_ in wanted if id_ not in letters]
        if spec.kind == "pubsub":
            # At-most-once: a message nobody receives is gone, so its letter stays.
            store = self._store
            unheard = [i for i in chosen if not store._publish(spec.name, [letters[i].payload])]
            for id_ in chosen:
                if id_ not in unheard:
                    del letters[id_]
            return check_replayed(spec, len(chosen) - len(unheard), not_found, unheard)
        payloads = [letters[id_].payload for id_ in chosen]
        self._store._append(spec, payloads, trio.current_time())  # may raise WRONGTYPE
        for id_ in chosen:
            del letters[id_]
        return check_replayed(spec, len(chosen), not_found)

    async def delete_dead_letters(self, spec: MailboxSpec, ids: Sequence[str] | None = None) -> int:
        """Delete dead letters of the mailbox (all, or those ``ids``); return how many.

        Ids not found are skipped.

        Raises:
            ConfigurationError: an id is not a dead letter id (nothing is deleted).
            ClosedError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        self._check_open()
        letters = self._store._dead(spec.name).letters
        wanted = list(letters) if ids is None else check_dead_letter_ids(ids)
        found = [id_ for id_ in wanted if id_ in letters]
        for id_ in found:
            del letters[id_]
        return len(found)

    async def mailbox_stats(self, spec: MailboxSpec) -> MailboxStats:
        """Depth, pending and dead-letter counts of the mailbox.

        Raises:
            ClosedError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        self._check_open()
        return self._store._stats(spec)

    async def announce(
        self,
        node: str,
        info: Mapping[str, Any] | None,
        ttl: float,
        *,
        instance: str,
        replacing: NodeInfo | None = None,
    ) -> NodeInfo | None:
        """Record ``node`` as alive for ``ttl`` seconds with ``info``, held by
        ``instance``; None removes it. Returns the live holder instead when another
        instance holds ``node`` (with a record other than ``replacing``).

        Raises:
            ClosedError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        self._check_open()
        return self._store._announce(node, info, ttl, instance, replacing)

    async def nodes(self) -> Sequence[NodeInfo]:
        """The nodes whose heartbeat has not expired, by name.

        Raises:
            ClosedError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        self._check_open()
        return self._store._live_nodes()

    async def ping(self) -> None:
        """Check that the transport is usable: the memory store always answers.

        Raises:
            ClosedError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        self._check_open()

    async def aclose(self) -> None:
        """Close the transport and its open consumers (blocked fetches raise ClosedError).

        Idempotent. Mailboxes stay in the store for other transports.
        """
        if self._state is TransportState.OPEN:
            self._state = TransportState.CLOSED
            now = trio.current_time()
            for consumer in list(self._consumers):
                consumer._close(now)
            self._consumers.clear()
        await trio.lowlevel.checkpoint()
