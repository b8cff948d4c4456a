"""The client: redis-py's command methods over our trio connections.

:class:`Redis` inherits every command method from redis-py's
``AsyncCoreCommands`` (``set``, ``xreadgroup``, ``xautoclaim``...) and applies
redis-py's RESP2 response callbacks, so results have the shapes redis-py users
know. Only :meth:`Redis.execute_command` is ours: pack with hiredis, one
round trip on a pooled connection, parse with hiredis.

Failures are ``actors`` errors (see ``transports._exceptions``), never redis-py's:
a bad argument is a :class:`ConfigurationError`, an error reply a
:class:`CommandError`, a dead link a :class:`BrokenConnectionError`. A command
that broke mid-flight is **not** retried (it may have run; most commands are not
idempotent); the connection is discarded and the next command gets a fresh one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from hiredis import ReplyError
from redis._parsers.encoders import Encoder
from redis.commands.core import AsyncCoreCommands

from transports._backoff import Backoff
from transports._exceptions import ClosedError, CommandError

from ._blocking import BlockingConnection
from ._connection import Connection, pack
from ._errors import command_error, translate_argument_errors
from ._features import Features
from ._pipeline import Pipeline
from ._pool import DEFAULT_BACKOFF, DEFAULT_POOL_TIMEOUT, ConnectionPool
from ._pubsub import PubSub
from ._replies import (
    BLOCKING_COMMANDS,
    MISSING,
    RAW,
    Callbacks,
    blocking_read_timeout,
    finish,
    response_callbacks,
    split_options,
)
from ._scripts import LuaScript, load_missing, missing_script
from ._url import ConnectionConfig, parse_url

__all__ = ["DedicatedConnection", "Redis", "from_url"]


class _Commands(AsyncCoreCommands):
    """What :class:`Redis` and :class:`DedicatedConnection` share."""

    _is_async_client: Literal[True] = True
    _event_dispatcher: Any = None
    _decode: bool
    _callbacks: Callbacks

    def get_encoder(self) -> Encoder:
        """redis-py's encoder with our settings (some command methods ask for it)."""
        return Encoder("utf-8", "strict", self._decode)  # type: ignore[no-untyped-call]

    def get_connection_kwargs(self) -> dict[str, Any]:
        """The subset of redis-py connection options that command methods consult."""
        return {"decode_responses": self._decode}

    async def run_script(
        self, script: LuaScript, keys: Sequence[str | bytes], args: Sequence[Any]
    ) -> Any:
        """Run ``script`` on ``keys`` with ``args``: ``EVALSHA``, then ``EVAL`` (which
        caches it) if the server lacks it. The reply is raw (bulk strings as ``bytes``).

        Raises:
            CommandError: the script failed (``.code`` is the error's first word,
                such as ``"NOGROUP"`` or ``"WRONGTYPE"``).
            And the connection errors listed on :class:`Redis`.
        """
        try:
            return await self.execute_command(
                b"EVALSHA", script.sha, len(keys), *keys, *args, **RAW
            )
        except CommandError as exc:
            if exc.code != "NOSCRIPT":
                raise
        return await self.execute_command(b"EVAL", script.source, len(keys), *keys, *args, **RAW)


class Redis(_Commands):
    """A Redis client for trio, with redis-py's command methods, over a connection pool.

    ``await client.hgetall("k")``, ``await client.xreadgroup(...)``... return what
    redis-py returns (RESP2 shapes; ``bytes`` unless ``decode_responses``). Without a
    URL it connects to ``host:port`` (or the unix socket ``path``); see
    :func:`from_url` for URLs. Connections are opened lazily, on the first command.

    ``read_timeout`` bounds the wait for each reply (``None``: no limit); blocking
    commands (BLPOP, BLMOVE, XREADGROUP BLOCK...) get their own timeout added, or no
    limit when they block forever. ``connect_timeout`` bounds opening a connection,
    including TLS and AUTH/SELECT; a :class:`ConnectError` is retried
    ``connect_retries`` times with ``backoff``. A command that broke mid-flight is
    not retried. At most ``max_connections`` pooled connections are open at once; a
    command that finds them all busy waits up to ``pool_timeout`` seconds (20 by
    default; ``None``: forever) for one. Cancelling a command never costs the pool
    a connection. Use ``async with Redis(...) as client:`` or :meth:`aclose`.

    Command methods raise:
        CommandError: the server answered with an error (``.code``: ``"WRONGTYPE"``...).
        AuthenticationError: wrong credentials, NOAUTH, WRONGPASS or NOPERM.
        ConnectError: no connection could be opened (refused, unreachable, DNS, TLS).
        BrokenConnectionError: the connection broke during the command.
        TransportTimeout: connecting or the reply took too long, or no pooled
            connection came free within ``pool_timeout``.
        ClosedError: the client is closed.
        ConfigurationError: an argument redis-py or hiredis cannot encode.

    Raises:
        ConfigurationError: on invalid settings.
    """

    features = Features(sharded_pubsub=False, ordered_batches=True)
    """What this client offers; see :class:`Features`."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = 6379,
        *,
        path: str | None = None,
        db: int = 0,
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
        connect_retries: int = 3,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        config = ConnectionConfig(
            host=host,
            port=port,
            path=path,
            db=db,
            username=username,
            password=password,
            tls=tls,
            ssl_cert_reqs=ssl_cert_reqs,
            ssl_ca_certs=ssl_ca_certs,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            ssl_check_hostname=ssl_check_hostname,
            client_name=client_name,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._pool = ConnectionPool(
            config,
            decode=decode_responses,
            max_connections=max_connections,
            timeout=pool_timeout,
            connect_retries=connect_retries,
            backoff=backoff,
        )
        self._decode = decode_responses
        self._read_timeout = read_timeout
        self._callbacks = response_callbacks()

    def __repr__(self) -> str:
        return f"<Redis {self._pool.config.display_url} {self._pool!r}>"

    @property
    def pool(self) -> ConnectionPool:
        """The connection pool (sizes, limits; mostly for tests and metrics)."""
        return self._pool

    @property
    def url(self) -> str:
        """The server's URL for display: never contains the password."""
        return self._pool.config.display_url

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command on a pooled connection and return redis-py's result for it.

        ``options`` are redis-py's: ``NEVER_DECODE``, ``EMPTY_RESPONSE``, ``keys``,
        and keyword arguments for the response callback.

        Raises:
            The errors listed on :class:`Redis`.
        """
        name = args[0]
        data = pack(args)
        if options:
            decode, empty = split_options(options)
        else:
            decode, empty = True, MISSING
        timeout = (
            self._read_timeout
            if name not in BLOCKING_COMMANDS
            else blocking_read_timeout(args, self._read_timeout)
        )
        pool = self._pool
        connection = pool.take_idle()
        if connection is None:
            connection = await pool.acquire()
        try:
            reply = await connection.roundtrip(data, timeout, decode)
        except BaseException as exc:
            pool.discard(connection, exc)
            raise
        pool.release(connection)
        if reply.__class__ is ReplyError:
            if empty is not MISSING:
                return empty
            raise command_error(reply, name)
        callback = self._callbacks.get(name)
        if callback is None:
            if name.__class__ is str and not name.isupper():
                return finish(reply, name, options, empty, self._callbacks)
            return reply
        return callback(reply, **options)

    async def execute_many(
        self, data: bytes, count: int, decode: list[bool] | None = None
    ) -> list[Any]:
        """Send packed commands in one write on a pooled connection; read ``count`` replies.

        Error replies come back as ``hiredis.ReplyError`` objects (the connection
        stays clean). Used by pipelines.

        Raises:
            The connection errors listed on :class:`Redis`.
        """
        pool = self._pool
        connection = pool.take_idle()
        if connection is None:
            connection = await pool.acquire()
        try:
            await connection.send(data)
            replies = await connection.read_replies(count, self._read_timeout, decode)
        except BaseException as exc:
            pool.discard(connection, exc)
            raise
        pool.release(connection)
        return replies

    async def batch(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send ``commands`` in one write on one connection; return a reply per command.

        The server runs them in order, one after the other (not atomically: others'
        commands may run in between). Replies are raw (bulk strings as ``bytes``);
        an error reply comes back as the :class:`CommandError` (or
        :class:`AuthenticationError`) it would raise, returned in its place, so one
        refused command hides neither the replies of the others nor that they ran.
        An ``EVALSHA`` of a :class:`LuaScript` that the server lacks (``NOSCRIPT``) runs
        again as ``EVAL`` once the others replied; its reply takes its place.

        Raises:
            ConfigurationError: an argument hiredis cannot encode (nothing was sent).
            The connection errors listed on :class:`Redis`.
        """
        data = b"".join([pack(command) for command in commands])
        replies = _errors_in_place(
            commands, await self.execute_many(data, len(commands), [False] * len(commands))
        )
        if missing_script(replies):
            await load_missing(self, commands, replies)
        return replies

    def pipeline(self, transaction: bool = True) -> Pipeline:
        """A pipeline: queue commands, then ``await pipe.execute()`` in one round trip.

        ``transaction=True`` (redis-py's default) wraps them in MULTI/EXEC.
        """
        return Pipeline(self, transaction)

    def dedicated(
        self,
        *,
        read_timeout: float | Literal["default"] | None = "default",
        key: str | bytes | None = None,
    ) -> _DedicatedContext:
        """``async with client.dedicated() as conn:`` — one fresh connection, outside the pool.

        For blocking reads (BLMOVE, BLPOP, XREADGROUP BLOCK) that must not hold a
        pooled connection. ``read_timeout`` overrides the client's for this
        connection. ``key`` matters only on a cluster (the connection opens on its
        node): one server has every key. Opening it raises as the command methods do.
        """
        timeout = self._read_timeout if read_timeout == "default" else read_timeout
        return _DedicatedContext(self, timeout)

    def blocking(self, key: str | bytes) -> BlockingConnection:
        """``async with client.blocking(key) as conn:`` — a connection of its own on the
        node of ``key``, opened at its first use and kept until the block ends, for
        blocking reads with commands pipelined around them
        (:meth:`BlockingConnection.batch`)."""
        return BlockingConnection(self.url, lambda: self.dedicated(read_timeout=None, key=key))

    def pubsub(self, *, key: str | bytes | None = None) -> PubSub:
        """``async with client.pubsub() as ps:`` — a subscriber on a dedicated connection.

        ``key``, the channel to subscribe to, matters only where pub/sub is sharded
        (see :attr:`features`): one server has every channel.
        """
        return PubSub(self._pool)

    async def aclose(self) -> None:
        """Close the pool and every dedicated connection; idempotent.

        Commands afterwards raise :class:`ClosedError`.
        """
        await self._pool.aclose()

    async def __aenter__(self) -> Redis:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class DedicatedConnection(_Commands):
    """Redis-like command methods bound to one connection that is not pooled.

    Obtain it with ``async with client.dedicated() as conn:``. Commands run one at
    a time (do not share it between tasks). Any failure, timeout or cancellation
    during a command closes the connection, which is never reused; the next
    command opens a fresh one (connection state such as WATCH or CLIENT TRACKING
    is lost then). Raises as :class:`Redis` command methods do.
    """

    def __init__(self, client: Redis, connection: Connection, read_timeout: float | None):
        self._client = client
        self._pool = client.pool
        self._connection: Connection | None = connection
        self._decode = client._decode
        self._callbacks = client._callbacks
        self._read_timeout = read_timeout
        self._closed = False

    def __repr__(self) -> str:
        return f"<DedicatedConnection {self._pool.config.display_url}>"

    @property
    def connection(self) -> Connection | None:
        """The current connection (None after a failure, until the next command)."""
        return self._connection

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command on this connection; see :meth:`Redis.execute_command`.

        Raises:
            ClosedError: the ``async with`` block was left.
            And the errors listed on :class:`Redis`.
        """
        if self._closed:
            raise ClosedError("this dedicated connection is closed")
        data = pack(args)
        name = args[0]
        decode, empty = split_options(options) if options else (True, MISSING)
        timeout = (
            self._read_timeout
            if name not in BLOCKING_COMMANDS
            else blocking_read_timeout(args, self._read_timeout)
        )
        connection = self._connection
        if connection is None or connection.closed:
            connection = self._connection = await self._pool.open_dedicated()
        try:
            reply = await connection.roundtrip(data, timeout, decode)
        except BaseException:
            self._pool.close_dedicated(connection)
            self._connection = None
            raise
        return finish(reply, name, options, empty, self._callbacks)

    @property
    def connected(self) -> bool:
        """Whether a connection is open, so that :meth:`batch` can use it."""
        connection = self._connection
        return connection is not None and not connection.closed

    async def batch(
        self, commands: Sequence[Sequence[Any]], read_timeout: float | None
    ) -> list[Any]:
        """Send ``commands`` in one write on the open connection; return a reply per command.

        For a blocking read with commands pipelined around it: the server runs the
        commands before it at once and those after it as soon as it returns. Replies
        are as :meth:`Redis.batch` gives them (error replies returned, not raised),
        read within ``read_timeout`` seconds in all (``None``: no limit). Unlike
        :meth:`execute_command` this opens no connection and follows no
        redirection: a cluster's ``MOVED`` or ``ASK`` comes back like any error
        reply (nothing of the batch ran then, unless it was sent across a resharding).
        A ``NOSCRIPT`` reply to a :class:`LuaScript` is answered as :meth:`Redis.batch` does.

        Raises:
            ClosedError: the ``async with`` block was left, or no connection is open
                (see :attr:`connected`).
            TransportTimeout: the replies are overdue (the connection closes).
            ConfigurationError: an argument hiredis cannot encode (nothing was sent).
            And the connection errors listed on :class:`Redis` (the connection closes).
        """
        if self._closed:
            raise ClosedError("this dedicated connection is closed")
        connection = self._connection
        if connection is None or connection.closed:
            raise ClosedError("this dedicated connection has no open connection to batch on")
        data = b"".join([pack(command) for command in commands])
        try:
            await connection.send(data)
            replies = await connection.read_replies(
                len(commands), read_timeout, [False] * len(commands)
            )
        except BaseException:
            self._drop()
            raise
        replies = _errors_in_place(commands, replies)
        if missing_script(replies):
            await load_missing(self, commands, replies)
        return replies

    def _drop(self) -> None:
        """The connection failed (and closed): the next command opens a new one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.close_dedicated(connection)

    def close(self) -> None:
        """Close the connection now; idempotent."""
        self._closed = True
        if self._connection is not None:
            self._pool.close_dedicated(self._connection)
            self._connection = None


class _DedicatedContext:
    __slots__ = ("_client", "_dedicated", "_read_timeout")

    def __init__(self, client: Redis, read_timeout: float | None) -> None:
        self._client = client
        self._read_timeout = read_timeout
        self._dedicated: DedicatedConnection | None = None

    async def __aenter__(self) -> DedicatedConnection:
        connection = await self._client.pool.open_dedicated()
        self._dedicated = DedicatedConnection(self._client, connection, self._read_timeout)
        return self._dedicated

    async def __aexit__(self, *exc_info: object) -> None:
        if self._dedicated is not None:
            self._dedicated.close()


def _errors_in_place(commands: Sequence[Sequence[Any]], replies: list[Any]) -> list[Any]:
    """``replies`` with each error reply replaced by the error it means, naming its command."""
    return [
        command_error(reply, command[0]) if isinstance(reply, ReplyError) else reply
        for command, reply in zip(commands, replies, strict=True)
    ]


def from_url(url: str, **overrides: Any) -> Redis:
    """A :class:`Redis` client for a redis-py style URL; keyword arguments win over it.

    ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS; options
    ``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
    ``ssl_check_hostname``) and ``unix://[[user]:password@]/path?db=N``. Query
    options may also set ``client_name``, ``decode_responses``, ``max_connections``,
    ``connect_timeout`` (or ``socket_connect_timeout``), ``read_timeout`` (or
    ``socket_timeout``), ``connect_retries``, ``pool_timeout``.

    Raises:
        ConfigurationError: a malformed URL or option (never shows the password).
    """
    kwargs = parse_url(url)
    kwargs.update(overrides)
    return Redis(**kwargs)


translate_argument_errors(_Commands, AsyncCoreCommands)
