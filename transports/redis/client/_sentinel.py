"""A client for a Redis master managed by Sentinel, that follows failovers.

:class:`SentinelRedis` is a :class:`~transports.redis.Redis` whose pool opens every
connection (pooled, dedicated, pub/sub) to the master the sentinels name now:
``SENTINEL GET-MASTER-ADDR-BY-NAME <service>`` on the first sentinel that answers,
then ``ROLE`` on the server, which must say ``master``. When the master dies,
commands on its connections fail (:class:`BrokenConnectionError`; a command that
broke mid-flight is not retried) and the pool drops them; the next connection
asks the sentinels again, retrying with backoff for up to ``retry_window`` seconds
while they elect a new master. A ``READONLY`` reply (the master was demoted under
a live connection) drops the pool's connections and runs the command once more on
the new master: a refused write did not run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import attrs
import trio
from hiredis import ReplyError

from transports._backoff import Backoff
from transports._exceptions import (
    AuthenticationError,
    CommandError,
    ConfigurationError,
    ConnectError,
    TransportError,
)

from ._client import DedicatedConnection, Redis, _DedicatedContext
from ._connection import Connection, open_connection, pack
from ._multi_url import Address
from ._pool import ConnectionPool
from ._url import ConnectionConfig

__all__ = ["SentinelPool", "SentinelRedis"]

_ROLE = pack(("ROLE",))


def _is_readonly(error: CommandError) -> bool:
    return error.code == "READONLY"


class SentinelPool(ConnectionPool):
    """A :class:`ConnectionPool` whose connections go to the master the sentinels name.

    ``config`` holds everything but the address (credentials, TLS, db, timeouts);
    ``sentinel_config`` is how to reach a sentinel (its host and port are replaced
    by each of ``sentinels``).
    """

    def __init__(
        self,
        config: ConnectionConfig,
        sentinels: Sequence[Address],
        service: str,
        sentinel_config: ConnectionConfig,
        *,
        retry_window: float,
        **options: Any,
    ) -> None:
        super().__init__(config, **options)
        self.sentinels = list(sentinels)
        self.service = service
        self.sentinel_config = sentinel_config
        self.retry_window = retry_window
        #: The master's address when a connection was last opened.
        self.master: Address | None = None

    async def master_address(self) -> Address:
        """The master's address according to the first sentinel that knows it.

        Raises:
            ConnectError: no sentinel answered, or none knows the service.
        """
        last: BaseException | None = None
        for index, (host, port) in enumerate(list(self.sentinels)):
            config = attrs.evolve(self.sentinel_config, host=host, port=port)
            try:
                connection = await open_connection(config, decode=False)
                try:
                    command = pack(("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service))
                    reply = await connection.roundtrip(command, config.connect_timeout, False)
                finally:
                    connection.close()
            except TransportError as exc:
                last = exc
                continue
            if reply.__class__ is ReplyError or not reply:
                last = ConnectError(f"sentinel {host}:{port} does not know {self.service!r}")
                continue
            if index:  # ask the one that answered first next time
                self.sentinels.insert(0, self.sentinels.pop(index))
            return reply[0].decode(), int(reply[1])
        raise ConnectError(
            f"no sentinel ({', '.join(f'{h}:{p}' for h, p in self.sentinels)}) "
            f"named the master of {self.service!r}: {last}"
        ) from last

    async def _connect(self, decode: bool) -> Connection:
        deadline = math.inf
        attempt = 0
        while True:
            try:
                return await self._connect_to_master(decode)
            except AuthenticationError:
                raise
            except ConnectError:
                deadline = min(deadline, trio.current_time() + self.retry_window)
                if trio.current_time() >= deadline:
                    raise
            await trio.sleep(self.backoff.delay(attempt))
            attempt += 1

    async def _connect_to_master(self, decode: bool) -> Connection:
        host, port = await self.master_address()
        config = attrs.evolve(self.config, host=host, port=port)
        connection = await open_connection(config, decode=decode)
        try:
            role = await connection.roundtrip(_ROLE, config.connect_timeout, False)
        except BaseException:
            connection.close()
            raise
        if role.__class__ is ReplyError or role[0] != b"master":
            connection.close()
            said = role if role.__class__ is ReplyError else role[0].decode()
            raise ConnectError(
                f"{config.display_url} is not the master of {self.service!r}: {said}"
            )
        self.master = (host, port)
        return connection

    def forget_connections(self) -> None:
        """Drop the idle connections: they lead to a server that is not the master now."""
        while self._idle:
            self._drop(self._idle.pop())


class SentinelRedis(Redis):
    """A :class:`Redis` client for the master of ``service``, found through ``sentinels``.

    ``sentinels`` are ``(host, port)`` pairs; ``sentinel_username`` and
    ``sentinel_password`` authenticate to them (the other options, credentials
    included, are :class:`Redis`'s and apply to the master). ``retry_window``
    bounds how long opening a connection waits for a failover (seconds).

    Raises:
        ConfigurationError: no sentinel, or invalid settings.
    """

    def __init__(
        self,
        sentinels: Sequence[Address],
        service: str,
        *,
        sentinel_username: str | None = None,
        sentinel_password: str | None = None,
        retry_window: float = 10.0,
        connect_timeout: float | None = 5.0,
        backoff: Backoff | None = None,
        **options: Any,
    ) -> None:
        if not sentinels:
            raise ConfigurationError("a sentinel client needs at least one sentinel")
        if backoff is not None:
            options["backoff"] = backoff
        super().__init__(connect_timeout=connect_timeout, **options)
        plain = self._pool
        self._sentinels = [(host, int(port)) for host, port in sentinels]
        self._service = service
        self._pool = SentinelPool(
            plain.config,
            self._sentinels,
            service,
            ConnectionConfig(
                username=sentinel_username,
                password=sentinel_password,
                connect_timeout=connect_timeout,
            ),
            retry_window=retry_window,
            decode=plain.decode,
            max_connections=plain.max_connections,
            timeout=plain.timeout,
            connect_retries=plain.connect_retries,
            backoff=plain.backoff,
        )

    def __repr__(self) -> str:
        return f"<SentinelRedis {self.url} master={self._sentinel_pool.master}>"

    @property
    def _sentinel_pool(self) -> SentinelPool:
        assert isinstance(self._pool, SentinelPool)
        return self._pool

    @property
    def url(self) -> str:
        """The sentinels and service as a ``redis+sentinel://`` URL: never the password."""
        config = self._pool.config
        user = f"{config.username}@" if config.username else ""
        scheme = "rediss+sentinel" if config.tls else "redis+sentinel"
        hosts = ",".join(f"{host}:{port}" for host, port in self._sentinels)
        return f"{scheme}://{user}{hosts}/{self._service}/{config.db}"

    @property
    def master(self) -> Address | None:
        """The master's address when a connection was last opened (None before)."""
        return self._sentinel_pool.master

    async def master_address(self) -> Address:
        """Ask the sentinels for the master's address now.

        Raises:
            ConnectError: no sentinel answered, or none knows the service.
        """
        return await self._sentinel_pool.master_address()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command on the master; see :meth:`Redis.execute_command`.

        After a ``READONLY`` reply the pool's connections are dropped and the command
        runs once more, on a connection to the master the sentinels name now.
        """
        try:
            return await super().execute_command(*args, **dict(options))
        except CommandError as exc:
            if not _is_readonly(exc):
                raise
        self._sentinel_pool.forget_connections()
        return await super().execute_command(*args, **options)

    async def execute_many(
        self, data: bytes, count: int, decode: list[bool] | None = None
    ) -> list[Any]:
        """Send packed commands in one write; see :meth:`Redis.execute_many`.

        A ``READONLY`` reply among them drops the pool's idle connections (the
        pipeline is not run again: its reads did run).
        """
        replies = await super().execute_many(data, count, decode)
        for reply in replies:
            if reply.__class__ is ReplyError and str(reply).startswith("READONLY"):
                self._sentinel_pool.forget_connections()
                break
        return replies

    def dedicated(
        self,
        *,
        read_timeout: float | Literal["default"] | None = "default",
        key: str | bytes | None = None,
    ) -> _DedicatedContext:
        """``async with client.dedicated() as conn:``; see :meth:`Redis.dedicated`.

        After a ``READONLY`` reply the connection is replaced and the command runs
        once more.
        """
        timeout = self._read_timeout if read_timeout == "default" else read_timeout
        return _SentinelDedicatedContext(self, timeout)


class SentinelDedicatedConnection(DedicatedConnection):
    """A :class:`DedicatedConnection` that reconnects to the new master after READONLY."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command; see :meth:`DedicatedConnection.execute_command`.

        A connection the server closed while idle (sentinels close the clients of
        a demoted master) is replaced before sending.
        """
        if self._connection is not None and not self._connection.is_reusable():
            self._pool.close_dedicated(self._connection)
            self._connection = None
        try:
            return await super().execute_command(*args, **dict(options))
        except CommandError as exc:
            if not _is_readonly(exc):
                raise
        if self._connection is not None:
            self._pool.close_dedicated(self._connection)
            self._connection = None
        return await super().execute_command(*args, **options)


class _SentinelDedicatedContext(_DedicatedContext):
    __slots__ = ()

    async def __aenter__(self) -> DedicatedConnection:
        connection = await self._client.pool.open_dedicated()
        self._dedicated = SentinelDedicatedConnection(self._client, connection, self._read_timeout)
        return self._dedicated
