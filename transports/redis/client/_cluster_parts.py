"""Pipelines, dedicated connections and subscribers of :class:`RedisCluster`.

Each is the single-node class with routing added: a pipeline is split by node
(each part one round trip on that node); a dedicated connection connects to the
node of the command's key and moves when the key or a redirection says so; a
subscriber binds to the node of a key's slot (sharded pub/sub).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import hiredis
import trio
from hiredis import ReplyError

from transports._exceptions import (
    AuthenticationError,
    BrokenConnectionError,
    ClosedError,
    CommandError,
    ConfigurationError,
    ConnectError,
)

from ._client import DedicatedConnection, _DedicatedContext
from ._cluster_base import ClusterBase, ClusterNode
from ._cluster_routes import ALL_PRIMARIES, ANY_NODE, slot_of
from ._connection import Connection, pack
from ._pipeline import Pipeline, Queued, _raise_first
from ._pool import ConnectionPool
from ._pubsub import PubSub
from ._replies import BLOCKING_COMMANDS, MISSING, blocking_read_timeout, finish, split_options

__all__ = [
    "ClusterDedicatedConnection",
    "ClusterPipeline",
    "ClusterPubSub",
    "execute_routed",
    "send_pooled",
]

_ASKING = pack(("ASKING",))
# Replies that mean "not run here, run it again": retried one by one.
_NOT_RUN = frozenset({"MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"})
_UNSENT: Any = object()


async def send_pooled(
    node: ClusterNode, data: bytes, timeout: float | None, decode: bool, asking: bool
) -> Any:
    """One command on a pooled connection of ``node`` (after ASKING if ``asking``)."""
    pool = node.client.pool
    connection = pool.take_idle()
    if connection is None:
        connection = await pool.acquire()
    try:
        if asking:
            await connection.send(_ASKING + data)
            reply = (await connection.read_replies(2, timeout, [True, decode]))[1]
        else:
            reply = await connection.roundtrip(data, timeout, decode)
    except BaseException as exc:
        pool.discard(connection, exc)
        raise
    pool.release(connection)
    return reply


async def execute_routed(
    cluster: ClusterBase, data: bytes, count: int, decode: list[bool] | None
) -> list[Any]:
    """:meth:`RedisCluster.execute_many`: ``count`` packed commands routed by key."""
    reader = hiredis.Reader()
    reader.feed(data)
    commands: list[Any] = [reader.gets() for _ in range(count)]
    if any(c is False for c in commands) or reader.gets() is not False:
        raise ConfigurationError(f"the packed data do not hold {count} commands")
    if any(command[0].upper() in (b"MULTI", b"EXEC") for command in commands):
        raise ConfigurationError("a transaction on a cluster: use pipeline(transaction=True)")
    targets = [await cluster.route(command) for command in commands]
    if ALL_PRIMARIES in targets:
        raise ConfigurationError("SCRIPT, FUNCTION and FLUSH* cannot be batched on a cluster")
    flags = decode if decode is not None else [cluster._decode] * count
    replies: list[Any] = [_UNSENT] * count
    for node, indices in (await _group_by_node(cluster, targets)).items():
        part = [_UNSENT] * len(indices)
        if node is not None:
            try:
                part = await node.client.execute_many(
                    b"".join([pack(commands[i]) for i in indices]),
                    len(indices),
                    [flags[i] for i in indices],
                )
            except ConnectError:
                cluster._stale = True  # nothing was sent
            except BrokenConnectionError:
                cluster._stale = True
                raise
        for index, reply in zip(indices, part, strict=True):
            if reply is _UNSENT or (
                isinstance(reply, ReplyError) and str(reply).split(" ", 1)[0] in _NOT_RUN
            ):
                reply = await _send_alone(cluster, targets[index], commands[index], flags[index])
            replies[index] = reply
    return replies


async def _group_by_node(
    cluster: ClusterBase, targets: Sequence[int]
) -> dict[ClusterNode | None, list[int]]:
    """The indexes of ``targets`` (slots) grouped by the node that serves each; a node
    that cannot be reached groups under None (those go alone, with the cluster's
    retries)."""
    groups: dict[ClusterNode | None, list[int]] = {}
    for index, target in enumerate(targets):
        try:
            node: ClusterNode | None = await cluster._pick(target)
        except ConnectError:
            node = None
        groups.setdefault(node, []).append(index)
    return groups


async def _send_alone(cluster: ClusterBase, target: int, command: list[bytes], decode: bool) -> Any:
    data = pack(command)
    timeout = cluster._read_timeout

    async def send(node: ClusterNode, asking: bool) -> Any:
        return await send_pooled(node, data, timeout, decode, asking)

    return await cluster.request(target, send)


class _ClusterDedicatedContext(_DedicatedContext):
    __slots__ = ("_cluster", "_key")

    def __init__(self, cluster: ClusterBase, read_timeout: float | None, key: str | bytes | None):
        super().__init__(cluster, read_timeout)
        self._cluster = cluster
        self._key = key

    async def __aenter__(self) -> DedicatedConnection:
        dedicated = ClusterDedicatedConnection(self._cluster, self._read_timeout, self._key)
        self._dedicated = dedicated
        if self._key is not None:
            await dedicated.connect()
        return dedicated


class ClusterPipeline(Pipeline):
    """A pipeline of a :class:`RedisCluster`; see :class:`Pipeline` for the API.

    ``execute`` groups the commands by node and sends each group in one round trip,
    node after node; results come back in queue order. Commands the cluster
    redirected (MOVED, ASK, TRYAGAIN, CLUSTERDOWN: not run) are retried one by
    one, and so are those of a node that could not be reached (nothing was sent).
    A transaction must stay in one slot; it is retried whole when the cluster
    refused it (EXEC never ran).
    """

    def __init__(self, cluster: ClusterBase, transaction: bool = True) -> None:
        super().__init__(cluster, transaction)
        self._cluster = cluster

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Run the queued commands; see :meth:`Pipeline.execute`.

        Raises:
            ConfigurationError: a transaction spans several slots, or a command must
                run on every primary (SCRIPT, FLUSHALL...).
            And what :meth:`Pipeline.execute` raises.
        """
        queue, self._queue = self._queue, []
        if not queue:
            return []
        targets = [await self._cluster.route(args) for args, _ in queue]
        if ALL_PRIMARIES in targets:
            raise ConfigurationError("SCRIPT, FUNCTION and FLUSH* cannot be pipelined on a cluster")
        if self.transaction:
            results = await self._transaction(queue, targets)
        else:
            results = await self._by_node(queue, targets)
        if raise_on_error:
            _raise_first(results)
        return results

    async def _by_node(self, queue: list[Queued], targets: list[int]) -> list[Any]:
        cluster = self._cluster
        results: list[Any] = [None] * len(queue)
        for node, indices in (await _group_by_node(cluster, targets)).items():
            replies = [_UNSENT] * len(indices)
            if node is not None:
                part = Pipeline(node.client, transaction=False)
                part._queue = [(queue[i][0], dict(queue[i][1])) for i in indices]
                try:
                    replies = await part.execute(raise_on_error=False)
                except ConnectError:
                    cluster._stale = True  # nothing was sent
                except BrokenConnectionError:
                    cluster._stale = True
                    raise
            for index, reply in zip(indices, replies, strict=True):
                if reply is _UNSENT or (isinstance(reply, CommandError) and reply.code in _NOT_RUN):
                    reply = await self._run_alone(queue[index])
                results[index] = reply
        return results

    async def _run_alone(self, queued: Queued) -> Any:
        args, options = queued
        try:
            return await self._cluster.execute_command(*args, **dict(options))
        except (CommandError, AuthenticationError) as exc:
            return exc

    async def _transaction(self, queue: list[Queued], targets: list[int]) -> list[Any]:
        slots = {target for target in targets if target >= 0}
        if len(slots) > 1:
            raise ConfigurationError(
                f"a transaction on a cluster must stay in one slot, not {len(slots)} "
                "(give its keys one hash tag: {tag}:a, {tag}:b)"
            )
        target = slots.pop() if slots else ANY_NODE
        cluster = self._cluster
        deadline = math.inf
        failures = 0
        while True:
            try:
                node = await cluster._pick(target)
                part = Pipeline(node.client, transaction=True)
                part._queue = [(args, dict(options)) for args, options in queue]
                return await part.execute(raise_on_error=False)
            except BrokenConnectionError:
                cluster._stale = True
                raise
            except (ConnectError, CommandError) as exc:
                if isinstance(exc, AuthenticationError) or (
                    isinstance(exc, CommandError) and exc.code not in _NOT_RUN
                ):
                    raise
                cluster._stale = True
                deadline = min(deadline, trio.current_time() + cluster._retry_window)
                if trio.current_time() >= deadline:
                    raise
                await trio.sleep(cluster._backoff.delay(failures))
                failures += 1


class ClusterDedicatedConnection(DedicatedConnection):
    """A dedicated connection of a :class:`RedisCluster`; see :class:`DedicatedConnection`.

    Each command goes to the node of its key: the connection is (re)opened there
    when it is not already, and follows MOVED/ASK. Keyless commands go to the
    current node, else to the node of the ``key`` it was opened for.
    """

    def __init__(
        self, cluster: ClusterBase, read_timeout: float | None, key: str | bytes | None
    ) -> None:
        # Not DedicatedConnection.__init__: that binds one pool; this moves between nodes.
        self._client = cluster
        self._cluster = cluster
        self._decode = cluster._decode
        self._callbacks = cluster._callbacks
        self._read_timeout = read_timeout
        self._closed = False
        self._connection: Connection | None = None
        self._node: ClusterNode | None = None
        self._key = key

    def __repr__(self) -> str:
        where = self._node.name if self._node is not None else "unconnected"
        return f"<ClusterDedicatedConnection {where} of {self._cluster.url}>"

    @property
    def node(self) -> ClusterNode | None:
        """The node connected to (None before the first command or after a failure)."""
        return self._node if self._connection is not None else None

    async def connect(self) -> None:
        """Open the connection to the node of the ``key`` given at creation now.

        Raises:
            The connection errors of :class:`Redis`.
        """
        if self._key is not None:
            await self._cluster.request(slot_of(self._key), self._ensure)

    async def _ensure(self, node: ClusterNode, asking: bool = False) -> Connection:
        connection = self._connection
        if connection is None or self._node is not node or not connection.is_reusable():
            self._drop()
            connection = await node.client.pool.open_dedicated()
            self._connection, self._node = connection, node
        return connection

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command on the node of its key; see :meth:`Redis.execute_command`.

        Raises:
            ClosedError: the ``async with`` block was left.
            ConfigurationError: a command for every primary (SCRIPT...).
            And the errors listed on :class:`Redis`.
        """
        if self._closed:
            raise ClosedError("this dedicated connection is closed")
        target = await self._cluster.route(args)
        if target == ALL_PRIMARIES:
            raise ConfigurationError(f"{args[0]!r} runs on every primary, not on one connection")
        pinned = None
        if target == ANY_NODE:
            if self.node is not None:
                pinned = self._node
            elif self._key is not None:
                target = slot_of(self._key)
        name = args[0]
        data = pack(args)
        decode, empty = split_options(options) if options else (True, MISSING)
        timeout = (
            self._read_timeout
            if name not in BLOCKING_COMMANDS
            else blocking_read_timeout(args, self._read_timeout)
        )

        async def send(node: ClusterNode, asking: bool) -> Any:
            connection = await self._ensure(node)
            try:
                if asking:
                    await connection.send(_ASKING + data)
                    return (await connection.read_replies(2, timeout, [True, decode]))[1]
                return await connection.roundtrip(data, timeout, decode)
            except BaseException:
                self._drop()
                raise

        reply = await self._cluster.request(target, send, pinned=pinned)
        return finish(reply, name, options, empty, self._callbacks)

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and self._node is not None:
            self._node.client.pool.close_dedicated(connection)

    def close(self) -> None:
        """Close the connection now; idempotent."""
        self._closed = True
        self._drop()


class ClusterPubSub(PubSub):
    """A subscriber of a :class:`RedisCluster`, on the node of ``key``'s slot (any without).

    Sharded channels (``ssubscribe``) must be subscribed on the node of their
    slot: pass ``key=channel``. When the slot moves or the node fails, reading
    raises :class:`BrokenConnectionError`; open a new subscriber, as after any
    broken connection.
    """

    def __init__(self, cluster: ClusterBase, key: str | bytes | None) -> None:
        super().__init__(cast(ConnectionPool, None))  # the node's pool, once connected
        self._cluster = cluster
        self._key = key
        self._node: ClusterNode | None = None

    def __repr__(self) -> str:
        where = self._node.name if self._node is not None else "unconnected"
        return (
            f"<ClusterPubSub {where} channels={len(self._channels)} "
            f"patterns={len(self._patterns)} shard_channels={len(self._shard_channels)}>"
        )

    @property
    def node(self) -> ClusterNode | None:
        """The node subscribed on."""
        return self._node

    async def __aenter__(self) -> ClusterPubSub:
        target = ANY_NODE if self._key is None else slot_of(self._key)

        async def connect(node: ClusterNode, asking: bool) -> Connection:
            connection = await node.client.pool.open_dedicated(decode=False)
            self._pool, self._node, self._connection = node.client.pool, node, connection
            return connection

        await self._cluster.request(target, connect)
        return self

    def _dispatch(self, reply: Any) -> None:
        if reply.__class__ is ReplyError and str(reply).startswith(("MOVED", "ASK")):
            self._cluster._stale = True
            raise BrokenConnectionError(f"the slot moved from {self._node}: subscribe again")
        if (
            reply.__class__ is not ReplyError
            and reply[0] == b"sunsubscribe"
            and self._confirmed >= self._expected
        ):
            # The server dropped our shard channels: the slot moved or the node was demoted.
            self._cluster._stale = True
            raise BrokenConnectionError(
                f"{self._node} dropped shard channel {reply[1]!r}: subscribe again"
            )
        super()._dispatch(reply)
