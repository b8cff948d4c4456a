"""A Redis Cluster client for trio: commands routed by slot, redirections followed.

:class:`RedisCluster` has the command methods of :class:`~transports.redis.Redis`
(it is one, so everything typed for ``Redis`` takes it) and keeps one
:class:`Redis` client, with its own pool, per node.
It learns the slot map from ``CLUSTER SHARDS`` (``CLUSTER SLOTS`` before Redis 7),
sends each command to the primary serving the slot of its first key (see
:mod:`._cluster_routes`), and follows redirections:

- ``MOVED``: the slot lives elsewhere now; remember that, refresh the map, retry there.
- ``ASK``: the slot is migrating; retry once on the target, after ``ASKING``.
- ``TRYAGAIN``, ``CLUSTERDOWN``: retry with backoff, for up to ``retry_window`` seconds.
- no connection to a node (:class:`ConnectError`, nothing was sent): refresh the map
  from the other nodes and retry with backoff for up to ``retry_window`` seconds —
  long enough for a replica to take over a dead primary's slots.

A command that broke mid-flight (:class:`BrokenConnectionError`, it may have run)
is **not** retried, as with the single-node client; the map is refreshed before
the next command. Errors are ``actors`` errors, as with :class:`Redis`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Literal

import trio
from hiredis import ReplyError
from redis.client import NEVER_DECODE

from transports._backoff import Backoff
from transports._exceptions import (
    AuthenticationError,
    BrokenConnectionError,
    ClosedError,
    CommandError,
    ConfigurationError,
    ConnectError,
    TransportError,
)

from ._client import Redis, _DedicatedContext
from ._cluster_base import ClusterBase, ClusterNode, Sender
from ._cluster_parts import (
    ClusterPipeline,
    ClusterPubSub,
    _ClusterDedicatedContext,
    execute_routed,
    send_pooled,
)
from ._cluster_routes import ALL_PRIMARIES, CommandTable, route, slot_of
from ._connection import pack
from ._features import Features
from ._multi_url import Address
from ._pool import DEFAULT_BACKOFF, DEFAULT_POOL_TIMEOUT, ConnectionPool
from ._replies import (
    BLOCKING_COMMANDS,
    MISSING,
    blocking_read_timeout,
    finish,
    response_callbacks,
    split_options,
)

__all__ = ["ClusterNode", "RedisCluster"]

SLOTS = 16384
RAW: dict[str, Any] = {NEVER_DECODE: True}
_RETRYABLE = frozenset({"TRYAGAIN", "CLUSTERDOWN"})

SlotRange = tuple[int, int, "ClusterNode"]
"""First slot, last slot, and the primary serving them."""


class RedisCluster(ClusterBase):
    """A Redis Cluster client with redis-py's command methods; see the module docstring.

    ``seeds`` are ``(host, port)`` pairs of some nodes (any will do; the rest are
    discovered). The other options are :class:`Redis`'s and apply to every node
    (``max_connections`` per node). ``retry_window`` bounds how long a command
    waits for a failover or an unreachable node (seconds); ``max_redirects``
    bounds MOVED/ASK hops per command. The slot map is loaded on the first command.

    ``dedicated(key=...)`` and ``pubsub(key=...)`` bind to the node serving
    ``key``'s slot (a dedicated connection also follows each command's key);
    ``ssubscribe``/``spublish`` are sharded pub/sub. Pipelines are split by node;
    a transaction (MULTI/EXEC) must stay in one slot.

    Raises:
        ConfigurationError: no seed, a db other than 0, or invalid settings.
    """

    features = Features(sharded_pubsub=True, ordered_batches=False)
    """What this client offers; see :class:`Features`."""

    def __init__(
        self,
        seeds: Sequence[Address],
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ssl_cert_reqs: str = "required",
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_check_hostname: bool = True,
        client_name: str | None = None,
        decode_responses: bool = False,
        max_connections: int = 16,
        pool_timeout: float | None = DEFAULT_POOL_TIMEOUT,
        connect_timeout: float | None = 5.0,
        read_timeout: float | None = 30.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        retry_window: float = 10.0,
        max_redirects: int = 5,
        db: int = 0,
        connect_retries: int = 0,
    ) -> None:
        if not seeds:
            raise ConfigurationError("a Redis Cluster client needs at least one seed node")
        if db:
            raise ConfigurationError(f"Redis Cluster has only db 0, not {db}")
        self._node_options: dict[str, Any] = {
            "username": username,
            "password": password,
            "tls": tls,
            "ssl_cert_reqs": ssl_cert_reqs,
            "ssl_ca_certs": ssl_ca_certs,
            "ssl_certfile": ssl_certfile,
            "ssl_keyfile": ssl_keyfile,
            "ssl_check_hostname": ssl_check_hostname,
            "client_name": client_name,
            "decode_responses": decode_responses,
            "max_connections": max_connections,
            "pool_timeout": pool_timeout,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "connect_retries": connect_retries,
            "backoff": backoff,
        }
        self._seeds = [(host, int(port)) for host, port in seeds]
        self._tls = tls
        self._user = username
        self._decode = decode_responses
        self._read_timeout = read_timeout
        self._callbacks = response_callbacks()
        self._backoff = backoff
        self._retry_window = retry_window
        self._max_redirects = max_redirects
        self._nodes: dict[str, ClusterNode] = {}
        for host, port in self._seeds:
            self._node(host, port)  # validates the options early
        self._slots: list[ClusterNode | None] = [None] * SLOTS
        self._primaries: list[ClusterNode] = []
        self._next_primary = itertools.count()
        self._stale = True
        self._epoch = 0
        self._refresh_lock = trio.Lock()
        self._table = CommandTable()
        self._closed = False

    def __repr__(self) -> str:
        return f"<RedisCluster {self.url} nodes={len(self._nodes)}>"

    @property
    def url(self) -> str:
        """The seeds as a ``redis+cluster://`` URL, for display: never the password."""
        user = f"{self._user}@" if self._user else ""
        scheme = "rediss+cluster" if self._tls else "redis+cluster"
        return f"{scheme}://{user}{','.join(f'{h}:{p}' for h, p in self._seeds)}"

    @property
    def pool(self) -> ConnectionPool:
        """Not available: a cluster client has one pool per node (see :attr:`nodes`).

        Raises:
            ConfigurationError: always.
        """
        raise ConfigurationError("a cluster client has one pool per node: see .nodes")

    @property
    def nodes(self) -> list[ClusterNode]:
        """Every node known so far, primaries first."""
        return sorted(self._nodes.values(), key=lambda node: (not node.primary, node.name))

    @property
    def primaries(self) -> list[ClusterNode]:
        """The primaries serving slots, as of the last refresh."""
        return list(self._primaries)

    # -- topology -------------------------------------------------------------------

    def _node(self, host: str, port: int) -> ClusterNode:
        name = f"{host}:{port}"
        node = self._nodes.get(name)
        if node is None:
            client = Redis(host, port, **self._node_options)
            node = self._nodes[name] = ClusterNode(host, port, client)
        return node

    def _node_at(self, address: str, default_host: str) -> ClusterNode:
        host, _, port = address.rpartition(":")
        return self._node(host or default_host, int(port))

    async def refresh(self) -> None:
        """Reload the slot map from the first node that answers.

        Concurrent calls share one refresh.

        Raises:
            ConnectError: no known node answered (each error is chained).
            ClosedError: the client is closed.
        """
        self._check_open()
        epoch = self._epoch
        async with self._refresh_lock:
            if self._epoch != epoch:
                return
            last: TransportError | None = None
            seeds = [self._node(host, port) for host, port in self._seeds]
            candidates = self._primaries + [n for n in self.nodes if not n.primary] + seeds
            for node in dict.fromkeys(candidates):
                try:
                    ranges = await self._ask_slots(node)
                except TransportError as exc:
                    last = exc
                    continue
                if ranges:
                    self._apply(ranges)
                    return
            message = f"no node of {self.url} could tell the slot map"
            raise ConnectError(f"{message}: {last}" if last else message) from last

    async def _ask_slots(self, node: ClusterNode) -> list[SlotRange]:
        """(first slot, last slot, primary) ranges, from CLUSTER SHARDS or CLUSTER SLOTS."""
        try:
            shards = await node.client.execute_command(b"CLUSTER", b"SHARDS", **RAW)
        except CommandError:
            return self._parse_slots(
                await node.client.execute_command(b"CLUSTER", b"SLOTS", **RAW), node
            )
        ranges = []
        for shard in shards:
            fields = dict(zip(shard[::2], shard[1::2], strict=True))
            slots = fields.get(b"slots") or []
            if not slots:
                continue
            primary = self._shard_primary(fields.get(b"nodes") or [], node)
            if primary is None:
                continue
            for index in range(0, len(slots) - 1, 2):
                ranges.append((int(slots[index]), int(slots[index + 1]), primary))
        return ranges

    def _shard_primary(self, members: list[Any], asked: ClusterNode) -> ClusterNode | None:
        best: ClusterNode | None = None
        for member in members:
            info = dict(zip(member[::2], member[1::2], strict=True))
            if info.get(b"role") != b"master":
                continue
            host = (info.get(b"endpoint") or b"").decode()
            if host in ("", "?"):
                host = (info.get(b"ip") or b"").decode() or asked.host
            port = info.get(b"tls-port") if self._tls else info.get(b"port")
            if port is None:
                port = info.get(b"port")
            if port is None:
                continue
            node = self._node(host, int(port))
            if info.get(b"health") == b"online":
                return node
            best = best or node
        return best

    def _parse_slots(self, reply: list[Any], asked: ClusterNode) -> list[SlotRange]:
        ranges = []
        for start, end, primary, *_ in reply:
            host = primary[0].decode() if primary[0] else asked.host
            ranges.append((int(start), int(end), self._node(host, int(primary[1]))))
        return ranges

    def _apply(self, ranges: list[SlotRange]) -> None:
        slots: list[ClusterNode | None] = [None] * SLOTS
        for node in self._nodes.values():
            node.primary = False
        primaries: dict[ClusterNode, None] = {}
        for start, end, node in ranges:
            slots[start : end + 1] = [node] * (end - start + 1)
            node.primary = True
            primaries[node] = None
        self._slots = slots
        self._primaries = list(primaries)
        self._epoch += 1
        self._stale = False

    async def node_for_key(self, key: str | bytes) -> ClusterNode:
        """The primary serving ``key``'s slot (loading the slot map if needed).

        Raises:
            ConnectError: no node could tell the slot map, or none serves the slot.
        """
        return await self._pick(slot_of(key))

    async def _pick(self, target: int) -> ClusterNode:
        self._check_open()
        if self._stale:
            await self.refresh()
        if target >= 0:
            node = self._slots[target]
            if node is None:
                self._stale = True
                raise ConnectError(f"no node of {self.url} serves slot {target}")
            return node
        if not self._primaries:
            self._stale = True
            raise ConnectError(f"no primary of {self.url} serves any slot")
        return self._primaries[next(self._next_primary) % len(self._primaries)]

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"the cluster client of {self.url} is closed")

    # -- running commands -------------------------------------------------------------

    async def route(self, args: Sequence[Any]) -> int:
        """The slot ``args`` goes to, or ``ANY_NODE`` (-1) / ``ALL_PRIMARIES`` (-2).

        Raises:
            ConfigurationError: the command lacks its key or is unknown.
            TransportError: asking the server about an unusual command failed.
        """
        target = route(args)
        if target >= ALL_PRIMARIES:
            return target
        return await self._table.route(args, self._ask_command_table)

    async def _ask_command_table(self, *args: Any) -> Any:
        try:
            return await self.execute_command(*args, **RAW)
        except CommandError:
            return []  # COMMAND GETKEYS on a command without keys

    async def request(self, target: int, send: Sender, *, pinned: ClusterNode | None = None) -> Any:
        """Send with ``send`` to the node for ``target``, following the cluster's answers.

        Returns the final raw reply (maybe a ``ReplyError``). See the module
        docstring for what is retried.
        """
        redirects = failures = 0
        deadline = math.inf
        asking: ClusterNode | None = None
        while True:
            try:
                node = asking or pinned or await self._pick(target)
                reply = await send(node, asking is not None)
            except AuthenticationError:
                raise
            except ConnectError:
                self._stale = True
                if pinned is not None:
                    raise
                deadline = min(deadline, trio.current_time() + self._retry_window)
                if trio.current_time() >= deadline:
                    raise
                await trio.sleep(self._backoff.delay(failures))
                failures += 1
                asking = None
                continue
            except BrokenConnectionError:
                self._stale = True
                raise
            asking = None
            if reply.__class__ is not ReplyError:
                return reply
            words = str(reply).split(" ")
            code = words[0]
            if code in ("MOVED", "ASK") and len(words) >= 3 and pinned is None:
                redirects += 1
                if redirects > self._max_redirects:
                    return reply
                target_node = self._node_at(words[2], node.host)
                if code == "ASK":
                    asking = target_node
                else:
                    self._slots[int(words[1])] = target_node
                    self._stale = True
                continue
            if code in _RETRYABLE and pinned is None:
                self._stale = self._stale or code == "CLUSTERDOWN"
                deadline = min(deadline, trio.current_time() + self._retry_window)
                if trio.current_time() >= deadline:
                    return reply
                await trio.sleep(self._backoff.delay(failures))
                failures += 1
                continue
            return reply

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command on the node its first key belongs to; redis-py's result.

        Keyless commands go to any primary; SCRIPT, FUNCTION, FLUSHALL and
        FLUSHDB to every primary (the first reply is returned).

        Raises:
            The errors of :meth:`Redis.execute_command`.
        """
        target = await self.route(args)
        name = args[0]
        data = pack(args)
        decode, empty = split_options(options) if options else (True, MISSING)
        timeout = (
            self._read_timeout
            if name not in BLOCKING_COMMANDS
            else blocking_read_timeout(args, self._read_timeout)
        )

        async def send(node: ClusterNode, asking: bool) -> Any:
            return await send_pooled(node, data, timeout, decode, asking)

        if target == ALL_PRIMARIES:
            if self._stale:
                await self.refresh()
            replies = [await self.request(target, send, pinned=node) for node in self.primaries]
            for reply in replies[1:]:
                finish(reply, name, dict(options), empty, self._callbacks)  # raise any error
            reply = replies[0] if replies else None
        else:
            reply = await self.request(target, send)
        return finish(reply, name, options, empty, self._callbacks)

    async def execute_many(
        self, data: bytes, count: int, decode: list[bool] | None = None
    ) -> list[Any]:
        """Send packed commands, each to the node of its key; read ``count`` raw replies.

        The commands are grouped by node, each group in one write; those the cluster
        redirected (not run) or whose node could not be reached are sent again one
        by one, following the cluster. Order holds among the commands of one node
        only (see :attr:`features`). Error replies come back as ``hiredis.ReplyError``
        objects, as on :class:`Redis`.

        Raises:
            ConfigurationError: MULTI/EXEC (use ``pipeline(transaction=True)``) or a
                command that runs on every primary (SCRIPT, FLUSHALL...).
            And the connection errors listed on :class:`Redis`.
        """
        return await execute_routed(self, data, count, decode)

    def pipeline(self, transaction: bool = True) -> ClusterPipeline:
        """A pipeline split by node; a transaction must stay in one slot.

        Raises (on execute):
            ConfigurationError: a transaction spans several slots.
        """
        return ClusterPipeline(self, transaction)

    def dedicated(
        self,
        *,
        read_timeout: float | Literal["default"] | None = "default",
        key: str | bytes | None = None,
    ) -> _DedicatedContext:
        """``async with cluster.dedicated(key=...) as conn:`` — a connection outside the pools.

        It connects to the node of ``key``'s slot (or, without ``key``, of the first
        command's key) and moves to another node when a command's key or a
        redirection says so.
        """
        timeout = self._read_timeout if read_timeout == "default" else read_timeout
        return _ClusterDedicatedContext(self, timeout, key)

    def pubsub(self, *, key: str | bytes | None = None) -> ClusterPubSub:
        """A subscriber on the node serving ``key``'s slot (any node without ``key``).

        Use ``key=channel`` with ``ssubscribe`` (sharded pub/sub). SUBSCRIBE and
        PSUBSCRIBE on any node hear PUBLISH from every node.
        """
        return ClusterPubSub(self, key)

    async def aclose(self) -> None:
        """Close every node's pool and connections; idempotent."""
        self._closed = True
        # Closing a pool never waits, but ends with a checkpoint: shielded, so that a
        # cancelled close still closes every node, not just the first.
        with trio.CancelScope(shield=True):
            for node in list(self._nodes.values()):
                await node.client.aclose()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> RedisCluster:
        return self
