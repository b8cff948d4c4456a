"""RedisTransport: list, stream and pub/sub mailboxes in Redis, at-least-once where durable.

Keys: one schema, in :mod:`transports.redis.keys` (the keys of a mailbox called
``name``, all but the first sharing the hash tag ``{name}``, and of the node registry).
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Self

import trio

from transports._exceptions import (
    AuthenticationError,
    ClosedError,
    CommandError,
    ConfigurationError,
    TransportError,
)

from .._base import Consumer, Transport
from .._dead_letters import check_dead_letter_ids, check_replayed
from .._values import DeadLetter, MailboxSpec, MailboxStats, NodeInfo
from . import scripts
from .admin import delete_dead_letters, oldest_stream_age, parse_dead_letter, parse_node
from .channel import ChannelConsumer, republish_sharded
from .client import RAW, Redis, client_from_url
from .consumer import RedisConsumer
from .consumer_context import ConsumerContext
from .coordination import Coordination
from .host import ConsumerHost
from .keys import NODES, Keys
from .list import ListConsumer
from .scheduler import Scheduler, delay_ms
from .sends import send_commands
from .stream import StreamConsumer

__all__ = ["RedisTransport"]

_CONSUMERS: dict[str, type[RedisConsumer]] = {
    "list": ListConsumer,
    "stream": StreamConsumer,
    "pubsub": ChannelConsumer,
}
_REPLAY_BATCH = 500


class TransportState(enum.Enum):
    """A Redis transport is open from its creation until :meth:`RedisTransport.aclose`."""

    OPEN = "open"
    CLOSED = "closed"


class RedisTransport(Coordination, Transport):
    """A :class:`~transports.Transport` over Redis, through our trio client.

    ``RedisTransport(client)`` uses a client you made (and close);
    ``RedisTransport.from_url(url, **client_options)`` makes its own and closes it
    in :meth:`aclose`. ``.client`` is the client, for actors' own commands.

    Delivery: list mailboxes are at-least-once through per-consumer processing
    lists (at-most-once with ``at_most_once``), stream mailboxes at-least-once
    through consumer groups, pub/sub at-most-once. See :class:`ListConsumer`,
    :class:`StreamConsumer` and :class:`ChannelConsumer` for the details, and
    :mod:`transports.redis.keys` for the keys. Every method raises ``actors`` errors
    only (:class:`~actors._exceptions.TransportError` and its subclasses when the
    server fails); after a restart of the server, the next call reconnects. A key
    of a mailbox that holds another type fails a consumer's calls with a
    :class:`~actors._exceptions.CommandError` of code ``WRONGTYPE`` that names it
    (``list:jobs: WRONGTYPE key '{jobs}:dead' holds a hash, not a stream``), and
    changes nothing: scripts check the types of their keys first.
    """

    def __init__(self, client: Redis, *, _owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = _owns_client
        self._state = TransportState.OPEN
        self._host = ConsumerHost(client)
        self._scheduler = Scheduler(client)

    @classmethod
    def from_url(cls, url: str, **client_options: Any) -> RedisTransport:
        """A transport with its own client for ``url`` (see :func:`transports.redis.from_url`).

        ``redis+cluster://`` and ``redis+sentinel://`` URLs give a cluster or a
        sentinel client (see ``transports/redis/client/_multi_url.py``).

        Raises:
            ConfigurationError: a malformed URL or option (never shows the password).
        """
        return cls(client_from_url(url, **client_options), _owns_client=True)

    def __repr__(self) -> str:
        return f"<RedisTransport {self._client.url} {self._state.value}>"

    @property
    def client(self) -> Redis:
        """The Redis client, for commands of your own."""
        return self._client

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._state is TransportState.CLOSED

    async def __aenter__(self) -> Self:
        """Open the nursery the consumers' background tasks run in (lease renewals,
        heartbeats); leaving the block closes the transport and ends them."""
        await self._host.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self.aclose()
        finally:
            await self._host.close()

    def _check_open(self) -> None:
        if self.closed:
            raise ClosedError(f"the Redis transport to {self._client.url} is closed")

    # -- sending ------------------------------------------------------------------------

    async def send(
        self, spec: MailboxSpec, payloads: Sequence[bytes], *, delay: float = 0.0
    ) -> None:
        """Append ``payloads`` to the mailbox in order, in one round trip; with a ``delay``
        (seconds), hold them in Redis until then.

        A list gets one ``RPUSH`` (then a ``PEXPIRE`` when the spec has ``expire``);
        a stream one ``XADD name [MAXLEN ~ maxlen] * message <payload>`` per payload,
        pipelined; a channel one ``PUBLISH`` per payload, pipelined (a message nobody
        listens to is dropped); ``SPUBLISH`` (sharded pub/sub) on a Redis Cluster.

        Delayed payloads wait in ``{name}:scheduled`` (two scripts: the payloads, then
        the global index of mailboxes with scheduled messages), and any transport running
        a list or stream consumer appends them once due, in due order (see
        ``scheduler.py``): they survive restarts of every process.

        Raises:
            ConfigurationError: ``spec`` is a pub/sub pattern (publish to a channel), or a
                delay is negative, or given for pub/sub.
            CommandError: the name holds another type of key (``WRONGTYPE``).
            TransportError: the store failed; none or some may have been sent.
            ClosedError: the transport was closed.
        """
        self._check_open()
        wait = delay_ms(spec, delay)
        if wait:
            await self._scheduler.schedule(spec, payloads, wait)
            return
        commands = send_commands(spec, payloads, sharded=self._client.features.sharded_pubsub)
        if not commands:
            return
        client = self._client
        if len(commands) == 1:
            await client.execute_command(*commands[0], **RAW)
            return
        async with client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command, **RAW)
            await pipe.execute()

    # -- consuming ----------------------------------------------------------------------

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        """Open a consumer called ``name`` for an ``async with`` block.

        Opening creates what the mailbox needs (a stream's group, reading from
        the start) and starts the consumer's background task (list heartbeat,
        stream lease renewal). Leaving the block closes it without acking. The first
        list or stream consumer also starts the transport's promoter of scheduled
        messages (see ``scheduler.py``), which runs until the transport closes.

        Raises:
            ConfigurationError: ``name`` is empty or has spaces or braces.
            TransportError: the store failed while setting up.
            ClosedError: the transport is closed.
        """
        if not name or any(char.isspace() or char in "{}" for char in name):
            raise ConfigurationError(
                f"consumer name {name!r} must be non-empty, without spaces or braces"
            )
        if spec.kind != "pubsub":
            self._scheduler.start(self._host)
        return ConsumerContext(_CONSUMERS[spec.kind](self._host, spec, name))

    # -- dead letters -------------------------------------------------------------------

    async def dead_letters(self, spec: MailboxSpec, count: int = 100) -> Sequence[DeadLetter]:
        """List up to ``count`` dead letters of the mailbox, oldest first (``XRANGE``).

        Raises:
            ConfigurationError: ``count`` is negative.
            CommandError: ``{name}:dead`` is not a stream (the error names it).
            TransportError: the store failed.
            ClosedError: the transport is closed.
        """
        if count < 0:
            raise ConfigurationError(f"count must be >= 0, not {count!r}")
        self._check_open()
        if count == 0:
            return []
        dead = Keys(spec.name).dead
        try:
            entries = await self._client.execute_command(
                b"XRANGE", dead, b"-", b"+", b"COUNT", count, **RAW
            )
        except CommandError as exc:
            if exc.code != "WRONGTYPE":
                raise
            # Redis's own WRONGTYPE names no key: say which, and what it holds.
            found = await self._client.execute_command(b"TYPE", dead, **RAW)
            found = found.decode() if isinstance(found, bytes) else str(found)
            raise CommandError(
                f"{spec}: WRONGTYPE key '{dead}' holds a {found}, not a stream",
                code="WRONGTYPE",
            ) from exc
        return [parse_dead_letter(raw_id.decode(), fields) for raw_id, fields in entries]

    async def replay_dead_letters(self, spec: MailboxSpec, ids: Sequence[str] | None = None) -> int:
        """Send dead letters (all, or those ``ids``) back to the mailbox; return how many.

        Each goes back to the end of the mailbox, leaves ``{name}:dead`` and starts
        again at attempt 1, atomically per batch of 500. A pub/sub letter leaves only
        if ``PUBLISH`` reached a subscriber. All means those dead when the call starts,
        not those dead-lettered meanwhile.

        Raises:
            ReplayError: ids not found, or letters kept (no subscriber received them,
                or they hold no payload); the others were replayed.
            ConfigurationError: ``spec`` is a pub/sub pattern (publish to a channel),
                or an id is not a stream entry id (nothing is replayed).
            TransportError: the store failed; some may have been replayed.
            ClosedError: the transport is closed.
        """
        self._check_open()
        if spec.kind == "pubsub" and spec.pattern:
            raise ConfigurationError(f"cannot replay to pattern {spec.name!r}: use a channel")
        if ids is not None:
            ids = check_dead_letter_ids(ids)
        keys = Keys(spec.name)
        replayed = 0
        missing: list[str] = []
        unheard: list[str] = []
        empty: list[str] = []
        start, end = b"-", b"+"
        if ids is None:
            # Up to the newest letter now: a replayed message dead-lettered again at
            # once would otherwise be replayed again, and again, by this very call.
            newest = await self._client.execute_command(
                b"XREVRANGE", keys.dead, b"+", b"-", b"COUNT", 1, **RAW
            )
            if not newest:
                return 0
            end = newest[0][0]
        while True:
            if ids is None:
                entries = await self._client.execute_command(
                    b"XRANGE", keys.dead, start, end, b"COUNT", _REPLAY_BATCH, **RAW
                )
                batch: Sequence[str | bytes] = [raw_id for raw_id, _ in entries]
                if batch:
                    start = b"(" + batch[-1]  # type: ignore[operator]
            else:
                batch, ids = ids[:_REPLAY_BATCH], ids[_REPLAY_BATCH:]
            if not batch:
                return check_replayed(spec, replayed, missing, unheard, empty)
            if spec.kind == "pubsub" and self._client.features.sharded_pubsub:
                outcome = await republish_sharded(self._client, keys.dead, spec.name, batch)
            else:
                outcome = await scripts.replay(
                    self._client, keys, kind=spec.kind, maxlen=spec.maxlen, letter_ids=batch
                )
            replayed += outcome[0]
            missing += outcome[1]
            unheard += outcome[2]
            empty += outcome[3]

    async def delete_dead_letters(self, spec: MailboxSpec, ids: Sequence[str] | None = None) -> int:
        """Delete dead letters of the mailbox (all, or those ``ids``); return how many.

        ``XDEL`` of the ids (those not found are skipped); all: ``XTRIM MINID`` past the
        newest letter when the call starts, so that letters dead meanwhile stay.

        Raises:
            ConfigurationError: an id is not a stream entry id (nothing is deleted).
            CommandError: ``{name}:dead`` is not a stream.
            TransportError: the store failed. ClosedError: the transport is closed.
        """
        self._check_open()
        if ids is not None:
            ids = check_dead_letter_ids(ids)
        return await delete_dead_letters(self._client, Keys(spec.name).dead, ids)

    async def oldest_age(self, spec: MailboxSpec) -> float | None:
        """Seconds since the oldest entry of a stream not yet acked by its group was
        added (by the server's clock: ``XPENDING``, the entry after the group's last
        delivered, ``TIME``); None for lists and pub/sub, and when none is.

        Raises:
            TransportError: the store failed. ClosedError: the transport is closed.
        """
        self._check_open()
        if spec.kind != "stream":
            return None
        return await oldest_stream_age(self._client, spec.name, spec.group_name)

    async def mailbox_stats(self, spec: MailboxSpec) -> MailboxStats:
        """Depth, pending and dead-letter counts of a mailbox (zeros if it does not exist).

        A list: ``LLEN`` of the list, of the processing lists of the consumers in
        ``{name}:consumers``, and of ``{name}:dead``. A stream: the group's lag plus
        retries due, and its pending entries less the retries still waiting.

        Raises:
            TransportError: the store failed.
            ClosedError: the transport is closed.
        """
        self._check_open()
        depth, pending, dead = await scripts.stats(
            self._client, Keys(spec.name), kind=spec.kind, group=spec.group_name
        )
        return MailboxStats(depth, pending, dead)

    async def announce(
        self,
        node: str,
        info: Mapping[str, Any] | None,
        ttl: float,
        *,
        instance: str,
        replacing: NodeInfo | None = None,
    ) -> NodeInfo | None:
        """Record that ``node``, held by ``instance``, is alive for ``ttl`` seconds with
        ``info``; None removes it. While another instance's record of ``node`` is live
        (with a record other than ``replacing``), change nothing and return that holder.

        Nodes live in the hash :data:`~transports.redis.keys.NODES`, their expiry
        (server clock) in the zset :data:`~transports.redis.keys.NODES_EXPIRY`.

        Raises:
            ConfigurationError: ``info`` is not JSON-able.
            AuthenticationError: the user may not write the node registry.
            TransportError: the store failed.
            ClosedError: the transport is closed.
        """
        self._check_open()
        value = ""
        if info is not None:
            try:
                value = json.dumps({"info": info, "seen_at": time.time(), "instance": instance})
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"node info must be JSON-able: {exc}") from exc
        ttl_ms = max(1, round(ttl * 1000))
        try:
            held = await scripts.announce(
                self._client,
                node=node,
                value=value,
                ttl_ms=ttl_ms,
                instance=instance,
                replacing=None if replacing is None else (replacing.instance, replacing.seen_at),
            )
        except AuthenticationError as exc:
            # NOPERM names no key: say which one the user may not touch.
            raise AuthenticationError(f"node registry {NODES}: {exc}") from exc
        if not held:
            return None
        # A record we cannot read (another program's) still holds the name.
        return parse_node(node, held) or NodeInfo(node, {}, 0.0, "?")

    async def nodes(self) -> Sequence[NodeInfo]:
        """The nodes whose last heartbeat has not expired, by name (expired ones are pruned).

        Raises:
            TransportError: the store failed.
            ClosedError: the transport is closed.
        """
        self._check_open()
        flat = await scripts.live_nodes(self._client)
        found = [
            node
            for index in range(0, len(flat) - 1, 2)
            if (node := parse_node(flat[index].decode("utf-8", "replace"), flat[index + 1]))
        ]
        return sorted(found, key=lambda node: node.node)

    # -- the connection ---------------------------------------------------------------

    async def ping(self) -> None:
        """Check that the server answers ``PING``.

        Raises:
            ConnectError: the server cannot be reached (the message names its URL,
                without the password).
            AuthenticationError: the server refused the credentials.
            TransportError: any other failure, naming the URL too.
            ClosedError: the transport is closed.
        """
        self._check_open()
        url = self._client.url
        try:
            await self._client.execute_command(b"PING", **RAW)
        except CommandError as exc:
            if url in str(exc):
                raise
            raise type(exc)(f"{url}: PING failed: {exc}", code=exc.code) from exc
        except TransportError as exc:
            if url in str(exc):
                raise
            raise type(exc)(f"{url}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the transport, and its client if it made it; idempotent.

        Blocked fetches of its consumers raise :class:`ClosedError`.
        """
        self._state = TransportState.CLOSED
        await self._host.abort()
        if self._owns_client:
            await self._client.aclose()
        else:
            await trio.lowlevel.checkpoint()
