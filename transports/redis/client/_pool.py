"""A bounded pool of connections, opened lazily, with reconnect backoff.

The pool's invariant: a connection goes back to the pool only after a command on
it completed cleanly (its reply fully read). Any exception or cancellation in the
middle of a command closes the connection and drops it, so nothing half-read is
ever reused. Idle plain-socket connections are polled before reuse, so one that
the server closed meanwhile (a restart) is dropped without sending anything.

Capacity is never lost: whatever is cancelled, and when, every connection the pool
counts is idle, checked out by a caller that will release or discard it, or being
opened by one. Waiting for a free connection is bounded (:data:`DEFAULT_POOL_TIMEOUT`).
"""

from __future__ import annotations

import math
from types import TracebackType

import trio

from transports._backoff import Backoff
from transports._exceptions import (
    AuthenticationError,
    BrokenConnectionError,
    ClosedError,
    ConfigurationError,
    ConnectError,
    TransportTimeout,
)

from ._connection import Connection, open_connection
from ._url import ConnectionConfig

__all__ = ["DEFAULT_BACKOFF", "DEFAULT_POOL_TIMEOUT", "Checkout", "ConnectionPool"]

_SLOT = object()
"""Handed to a waiter instead of a connection: room in the pool to open one in."""

DEFAULT_BACKOFF = Backoff(min=0.05, max=2.0, jitter=0.5)
"""Backoff between attempts to open a connection."""

DEFAULT_POOL_TIMEOUT = 20.0
"""Seconds a command waits for a free pooled connection (redis-py's blocking pool's
default): long enough for any burst a healthy server absorbs, short enough that a
stuck pool or server surfaces as an error instead of a silent hang."""


class ConnectionPool:
    """At most ``max_connections`` connections to one server, shared by commands.

    ``timeout`` bounds the wait for a free connection when all are busy
    (:data:`DEFAULT_POOL_TIMEOUT` seconds by default; ``None``: wait as long as it
    takes). Opening a connection is retried ``connect_retries``
    times after a :class:`ConnectError` (never after an
    :class:`AuthenticationError`), sleeping ``backoff.delay(attempt)`` in between.
    A command that broke mid-flight is not retried here: it may have run.

    Raises:
        ConfigurationError: ``max_connections < 1``, ``connect_retries < 0`` or a
            ``timeout`` that is not positive.
    """

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        decode: bool = False,
        max_connections: int = 16,
        timeout: float | None = DEFAULT_POOL_TIMEOUT,
        connect_retries: int = 3,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        if max_connections < 1:
            raise ConfigurationError(f"max_connections must be >= 1, not {max_connections}")
        if connect_retries < 0:
            raise ConfigurationError(f"connect_retries must be >= 0, not {connect_retries}")
        if timeout is not None and not timeout > 0:
            raise ConfigurationError(f"pool_timeout must be positive or None, not {timeout!r}")
        self.config = config
        self.decode = decode
        self.max_connections = max_connections
        self.timeout = timeout
        self.connect_retries = connect_retries
        self.backoff = backoff
        self._idle: list[Connection] = []
        self._size = 0
        self._lot = trio.lowlevel.ParkingLot()
        # What a release or a drop handed to each woken waiter: a connection, or _SLOT.
        self._handed: dict[trio.lowlevel.Task, Connection | object] = {}
        self._dedicated: set[Connection] = set()
        self.closed = False

    def __repr__(self) -> str:
        return (
            f"<ConnectionPool {self.config.display_url} size={self._size} "
            f"idle={len(self._idle)} max={self.max_connections}"
            f"{' closed' if self.closed else ''}>"
        )

    @property
    def size(self) -> int:
        """Pooled connections open or being opened, idle or in use."""
        return self._size

    @property
    def idle(self) -> int:
        """Pooled connections open and waiting for a command."""
        return len(self._idle)

    @property
    def in_use(self) -> int:
        """Pooled connections checked out (or being opened) right now."""
        return self._size - len(self._idle)

    @property
    def dedicated(self) -> int:
        """Dedicated connections open right now (outside the pool and its limit)."""
        return len(self._dedicated)

    def take_idle(self) -> Connection | None:
        """An idle connection that looks healthy, or None; never waits."""
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.is_reusable():
                return connection
            self._drop(connection)
        return None

    async def acquire(self) -> Connection:
        """Check a connection out: an idle one, a new one, or wait for one.

        Waiters are served in turn: a connection given back, or the room left by
        one dropped, goes to the longest waiter, never to a caller that comes
        later. Cancelling the wait at any moment costs the pool nothing.

        Pair with :meth:`release` (clean) or :meth:`discard` (anything else); the
        :meth:`checkout` context manager does that for you.

        Raises:
            ClosedError: the pool is closed.
            TransportTimeout: no connection came free within ``timeout``.
            ConnectError: a new connection could not be opened, even after retries.
            AuthenticationError: the server refused the credentials.
        """
        connection = self.take_idle()
        if connection is not None:
            return connection
        if self.closed:
            raise ClosedError(f"the connection pool to {self.config.display_url} is closed")
        if self._size < self.max_connections:
            self._size += 1
            return await self._open_counted()
        deadline = math.inf if self.timeout is None else trio.current_time() + self.timeout
        task = trio.lowlevel.current_task()
        with trio.move_on_at(deadline) as waiting:
            await self._lot.park()
        handed = self._handed.pop(task, None)
        if self.closed:
            if isinstance(handed, Connection):
                handed.close()
            if handed is not None:
                self._free_room()
            raise ClosedError(f"the connection pool to {self.config.display_url} is closed")
        if handed is _SLOT:
            return await self._open_counted()  # cancelled, it passes the room on
        if isinstance(handed, Connection):
            # A cancellation that came after the hand-off must neither keep the
            # connection (it would stay counted in ``size`` forever) nor send a
            # command for a caller that gave up: the connection goes on, clean.
            try:
                await trio.lowlevel.checkpoint_if_cancelled()
            except BaseException:
                self.release(handed)
                raise
            return handed
        assert waiting.cancelled_caught
        await trio.lowlevel.checkpoint_if_cancelled()  # an outer cancellation wins
        raise TransportTimeout(
            f"no free connection to {self.config.display_url} within {self.timeout}s: "
            f"all {self.in_use} pooled connections are busy; raise the limit with the "
            f"URL option ?max_connections=N (now {self.max_connections}) or wait "
            f"longer with ?pool_timeout=SECONDS"
        )

    async def _open_counted(self) -> Connection:
        """Open a connection in room already counted in ``size``; give the room up on failure."""
        try:
            return await self.open()
        except BaseException:
            self._free_room()
            raise

    def _hand_off(self, item: Connection | object) -> bool:
        """Wake the longest waiter with ``item`` (a connection or _SLOT); False when none waits."""
        if self.closed or not self._lot:
            return False
        [task] = self._lot.unpark()
        self._handed[task] = item
        return True

    def _free_room(self) -> None:
        """A counted connection is gone: its room goes to a waiter, or out of ``size``."""
        if not self._hand_off(_SLOT):
            self._size -= 1

    def release(self, connection: Connection) -> None:
        """Give back a connection whose last command completed cleanly."""
        if self.closed or connection.closed:
            self._drop(connection)
        elif not self._hand_off(connection):
            self._idle.append(connection)

    def discard(self, connection: Connection, error: BaseException | None = None) -> None:
        """Close and forget a connection that failed or was cancelled mid-command.

        When ``error`` is a :class:`BrokenConnectionError` the idle connections are
        dropped too: they most likely lead to the same dead server.
        """
        self._drop(connection)
        if isinstance(error, BrokenConnectionError):
            while self._idle:
                self._drop(self._idle.pop())

    def _drop(self, connection: Connection) -> None:
        connection.close()
        self._free_room()

    def checkout(self) -> Checkout:
        """``async with pool.checkout() as connection:`` — released only on a clean exit."""
        return Checkout(self)

    async def open(self) -> Connection:
        """A new connection (not counted in the pool), retried with backoff.

        Raises:
            ConnectError: still failing after ``connect_retries`` retries.
            AuthenticationError: the server refused the credentials (never retried).
            TransportTimeout: connecting took longer than ``connect_timeout``.
            ConfigurationError: SELECT or CLIENT SETNAME was refused.
        """
        return await self._connect(self.decode)

    async def open_dedicated(self, *, decode: bool | None = None) -> Connection:
        """A new connection outside the pool's limit, closed by :meth:`aclose` too.

        Give it back with :meth:`close_dedicated`. Raises as :meth:`open`, and
        :class:`ClosedError` when the pool is closed.
        """
        if self.closed:
            raise ClosedError(f"the connection pool to {self.config.display_url} is closed")
        connection = await self._connect(self.decode if decode is None else decode)
        if self.closed:
            connection.close()
            raise ClosedError(f"the connection pool to {self.config.display_url} is closed")
        self._dedicated.add(connection)
        return connection

    async def _connect(self, decode: bool) -> Connection:
        attempt = 0
        while True:
            try:
                return await open_connection(self.config, decode=decode)
            except AuthenticationError:
                raise
            except ConnectError:
                if attempt >= self.connect_retries:
                    raise
            await trio.sleep(self.backoff.delay(attempt))
            attempt += 1

    def close_dedicated(self, connection: Connection) -> None:
        """Close a connection from :meth:`open_dedicated`; idempotent."""
        connection.close()
        self._dedicated.discard(connection)

    async def aclose(self) -> None:
        """Close every idle and dedicated connection; in-use ones close when released.

        Waiters for a connection get :class:`ClosedError`. Idempotent.
        """
        self.closed = True
        while self._idle:
            self._drop(self._idle.pop())
        for connection in list(self._dedicated):
            self.close_dedicated(connection)
        self._lot.unpark_all()
        await trio.lowlevel.checkpoint()


class Checkout:
    """The async context manager returned by :meth:`ConnectionPool.checkout`."""

    __slots__ = ("_connection", "_pool")

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._connection: Connection | None = None

    async def __aenter__(self) -> Connection:
        self._connection = await self._pool.acquire()
        return self._connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        assert connection is not None
        if exc is None:
            self._pool.release(connection)
        else:
            self._pool.discard(connection, exc)
