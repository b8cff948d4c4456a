"""One connection to a Redis server: a trio socket, hiredis to parse, RESP2 on the wire.

A :class:`Connection` does no pooling and no retrying. It sends packed commands
and reads replies; every failure closes it for good and raises an ``actors`` error
(translated once, here). Plain TCP and unix connections drive a non-blocking socket
directly with :func:`trio.lowlevel.wait_readable` (one scheduler pass per round
trip); TLS connections go through a :class:`trio.SSLStream`.

Error *replies* are not failures: they come back as :class:`hiredis.ReplyError`
objects and the connection stays usable.
"""

from __future__ import annotations

import math
import select
import socket
from collections.abc import Sequence
from typing import Any, NoReturn, cast

import hiredis
import trio
from hiredis import ReplyError

from transports._exceptions import (
    AuthenticationError,
    BrokenConnectionError,
    ConfigurationError,
    ConnectError,
    TransportTimeout,
    UnavailableError,
)

from ._errors import command_error, map_exceptions, reraise
from ._url import ConnectionConfig

__all__ = ["Connection", "open_connection", "pack"]

_READ_SIZE = 65536
_MORE = object()  # hiredis' "not enough data yet" marker
_pack_command = hiredis.pack_command
_wait_readable = trio.lowlevel.wait_readable
_wait_writable = trio.lowlevel.wait_writable
_current_time = trio.current_time
_PACKABLE = (bytes, str, int, float, memoryview)


def pack(args: Sequence[Any]) -> bytes:
    """One command in RESP, as redis-py packs it (``"CONFIG GET"`` is split in two).

    Raises:
        ConfigurationError: an argument is not ``bytes``, ``str``, ``int``, ``float``
            or ``memoryview`` (``None`` and ``bool`` are refused, as in redis-py).
    """
    name = args[0]
    if (" " in name) if isinstance(name, str) else (b" " in name):
        args = (*name.split(), *args[1:])
    try:
        return _pack_command(cast(Any, args))  # type: ignore[no-any-return]
    except TypeError:
        fixed = tuple(bytes(a) if isinstance(a, bytearray) else a for a in args)
        try:
            return _pack_command(cast(Any, fixed))  # type: ignore[no-any-return]
        except TypeError:
            bad = next(a for a in fixed if isinstance(a, bool) or not isinstance(a, _PACKABLE))
            raise ConfigurationError(
                f"invalid argument of type {type(bad).__name__} for {_name(args[0])}: "
                f"convert it to bytes, str, int or float first"
            ) from None


def _name(command: object) -> str:
    return command.decode("utf-8", "replace") if isinstance(command, bytes) else str(command)


def _new_reader(decode: bool) -> hiredis.Reader:
    if decode:
        return hiredis.Reader(notEnoughData=_MORE, encoding="utf-8", errors="strict")
    return hiredis.Reader(notEnoughData=_MORE)


class Watchdog:
    """Closes connections whose reply is overdue: read timeouts without cancel scopes.

    A trio cancel scope per command costs more than the rest of a round trip, so
    connections instead note a ``deadline`` while they wait for a reply, and one
    system task per trio run checks them every ``tick`` seconds, closing overdue
    ones (the waiting command then raises :class:`TransportTimeout`). Timeouts are
    thus late by up to ``tick``. The task stops when no connection is left open.
    """

    def __init__(self, tick: float = 0.05) -> None:
        self.tick = tick
        self._connections: set[Connection] = set()
        self._token: trio.lowlevel.TrioToken | None = None

    def watch(self, connection: Connection) -> None:
        """Start watching ``connection``; must be called from inside trio."""
        self._connections.add(connection)
        token = trio.lowlevel.current_trio_token()
        if token is not self._token:
            self._token = token
            trio.lowlevel.spawn_system_task(self._run, token, name="redis read-timeout watchdog")

    def forget(self, connection: Connection) -> None:
        """Stop watching ``connection`` (it was closed)."""
        self._connections.discard(connection)

    async def _run(self, token: trio.lowlevel.TrioToken) -> None:
        try:
            while self._token is token and self._connections:
                await trio.sleep(self.tick)
                now = _current_time()
                for connection in list(self._connections):
                    if connection.deadline < now:
                        connection.expire()
        finally:
            if self._token is token:
                self._token = None


WATCHDOG = Watchdog()
"""The process' read-timeout watchdog; connections register themselves when opened."""


class Connection:
    """A connection over a plain TCP or unix socket; the base of :class:`TLSConnection`.

    Methods raise :class:`BrokenConnectionError` when the link fails or the server
    closes it, and :class:`TransportTimeout` when a reply takes longer than the
    given ``reply_timeout`` (seconds, ``None`` for no limit; enforced by :data:`WATCHDOG`).
    Both close the connection first, as does cancellation in the middle of a
    command (``trio.Cancelled`` is re-raised): a connection is never left with
    half a reply in it. Using a closed connection raises
    :class:`BrokenConnectionError` too.
    """

    __slots__ = ("_buffer", "_poller", "_reader", "_sock", "closed", "deadline", "timed_out", "url")

    def __init__(self, sock: socket.socket, url: str, *, decode: bool) -> None:
        self._sock = sock
        self._reader = _new_reader(decode)
        self._buffer = bytearray(_READ_SIZE)
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN)
        self._init_state(url)

    def _init_state(self, url: str) -> None:
        #: The server's display URL (no password), for messages.
        self.url = url
        #: True once closed: by :meth:`close`, or after any failure.
        self.closed = False
        #: When the awaited reply is overdue (trio time); ``inf`` when not waiting.
        self.deadline = math.inf
        #: True when the watchdog closed it for an overdue reply.
        self.timed_out = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self.url} {state}>"

    def _fail(self, exc: BaseException) -> NoReturn:
        """Close, then raise the translation of ``exc`` (``exc`` itself if not an Exception)."""
        self.close()
        if self.timed_out:
            raise TransportTimeout(f"timed out waiting for a reply from {self.url}") from exc
        if isinstance(exc, Exception):
            reraise(self.url, exc)
        raise exc

    # -- the fast path ---------------------------------------------------------------

    async def roundtrip(self, data: bytes, reply_timeout: float | None, decode: bool = True) -> Any:
        """Send one packed command and return its reply (a ``ReplyError`` for errors).

        Raises:
            BrokenConnectionError: the connection failed or was already closed.
            TransportTimeout: no full reply within ``reply_timeout`` seconds.
        """
        sock = self._sock
        try:
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            if sent != len(data):
                await self._send_rest(data, sent)
            if reply_timeout is None:
                return await self._read(decode)
            self.deadline = _current_time() + reply_timeout
            reply = await self._read(decode)
            self.deadline = math.inf
            return reply
        except BaseException as exc:
            self._fail(exc)

    async def _read(self, decode: bool) -> Any:
        reader = self._reader
        reply = reader.gets(decode)
        if reply is not _MORE:
            return reply
        sock = self._sock
        buffer = self._buffer
        while True:
            await _wait_readable(sock)
            try:
                count = sock.recv_into(buffer)
            except BlockingIOError:
                continue
            if not count:
                raise EOFError("connection closed by the server")
            reader.feed(buffer, 0, count)  # type: ignore[arg-type]
            reply = reader.gets(decode)
            if reply is not _MORE:
                return reply

    async def _send_rest(self, data: bytes, sent: int) -> None:
        view = memoryview(data)
        sock = self._sock
        while sent < len(data):
            await _wait_writable(sock)
            try:
                sent += sock.send(view[sent:])
            except BlockingIOError:
                continue

    # -- general primitives ----------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Send packed commands without reading anything.

        Raises:
            BrokenConnectionError: the connection failed or was already closed.
        """
        try:
            await self._send(data)
        except BaseException as exc:
            self._fail(exc)

    async def _send(self, data: bytes) -> None:
        if self.closed:
            raise trio.ClosedResourceError
        # Write at once: the socket buffer almost always has room, and waiting for
        # writability first would cost a scheduler pass per command.
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent != len(data):
            await self._send_rest(data, sent)

    async def read_replies(
        self, count: int, reply_timeout: float | None, decode: Sequence[bool] | None = None
    ) -> list[Any]:
        """Read ``count`` replies; ``decode[i]`` False reads reply ``i`` as raw bytes.

        Raises:
            BrokenConnectionError: the connection failed or was already closed.
            TransportTimeout: the replies did not all arrive within ``reply_timeout`` seconds.
        """
        try:
            if reply_timeout is not None:
                self.deadline = _current_time() + reply_timeout
            if decode is None:
                replies = [await self._read(True) for _ in range(count)]
            else:
                replies = [await self._read(flag) for flag in decode]
            self.deadline = math.inf
            return replies
        except BaseException as exc:
            self._fail(exc)

    async def read_reply(self) -> Any:
        """Read one reply, however long it takes (the caller sets deadlines).

        Unlike the other methods, cancellation does not close the connection:
        bytes already received stay buffered in the parser, so nothing is lost
        and nothing is half-read. Used by pub/sub, where silence is normal.

        Raises:
            BrokenConnectionError: the connection failed or was already closed.
        """
        try:
            if self.closed:
                raise trio.ClosedResourceError
            return await self._read(True)
        except Exception as exc:
            self._fail(exc)

    def is_reusable(self) -> bool:
        """False when the connection is closed, or the server closed or wrote to it idle.

        A cheap non-blocking poll: an idle connection must have nothing to read.
        """
        return not self.closed and not self._poller.poll(0)

    def expire(self) -> None:
        """Close because the awaited reply is overdue (the watchdog calls this)."""
        self.timed_out = True
        self.close()

    def close(self) -> None:
        """Close the socket now (synchronous, so it cannot be cancelled); idempotent."""
        if not self.closed:
            self.closed = True
            self.deadline = math.inf
            WATCHDOG.forget(self)
            self._close_socket()

    def _close_socket(self) -> None:
        trio.lowlevel.notify_closing(self._sock)
        self._sock.close()

    async def aclose(self) -> None:
        """Close the connection (same as :meth:`close`, plus a checkpoint)."""
        self.close()
        await trio.lowlevel.checkpoint()


class TLSConnection(Connection):
    """A connection through a :class:`trio.SSLStream`; same contract as :class:`Connection`."""

    __slots__ = ("_stream", "_trio_sock")

    def __init__(self, stream: trio.SSLStream[trio.SocketStream], url: str, *, decode: bool):
        self._stream = stream
        self._trio_sock = stream.transport_stream.socket
        self._reader = _new_reader(decode)
        self._init_state(url)

    async def roundtrip(self, data: bytes, reply_timeout: float | None, decode: bool = True) -> Any:
        """Send one packed command and return its reply; see :meth:`Connection.roundtrip`."""
        try:
            await self._send(data)
            if reply_timeout is not None:
                self.deadline = _current_time() + reply_timeout
            reply = await self._read(decode)
            self.deadline = math.inf
            return reply
        except BaseException as exc:
            self._fail(exc)

    async def _send(self, data: bytes) -> None:
        if self.closed:
            raise trio.ClosedResourceError
        await self._stream.send_all(data)

    async def _read(self, decode: bool) -> Any:
        reader = self._reader
        reply = reader.gets(decode)
        while reply is _MORE:
            chunk = await self._stream.receive_some(_READ_SIZE)
            if not chunk:
                raise EOFError("connection closed by the server")
            reader.feed(chunk)  # type: ignore[arg-type]
            reply = reader.gets(decode)
        return reply

    def is_reusable(self) -> bool:
        """False when closed (TLS buffers data above the socket, so no poll here)."""
        return not self.closed

    def _close_socket(self) -> None:
        self._trio_sock.close()


async def open_connection(config: ConnectionConfig, *, decode: bool) -> Connection:
    """Open, TLS-wrap if asked, and set up (AUTH, SELECT, CLIENT SETNAME) a connection.

    All of it must finish within ``config.connect_timeout``. The setup commands go in
    one round trip, ending with PING when there is nothing else to send, so that a
    server that does not speak RESP (or wants TLS) is detected here.

    Raises:
        ConnectError: refused, unreachable, DNS or TLS failure, or the server closed
            the connection during setup.
        AuthenticationError: the server refused the credentials (or wants some).
        TransportTimeout: it took longer than ``connect_timeout``.
        ConfigurationError: SELECT or CLIENT SETNAME was refused, or TLS files are bad.
    """
    url = config.display_url
    context = config.ssl_context() if config.tls else None
    connection: Connection | None = None
    stream: trio.SocketStream | None = None
    deadline = trio.current_time() + (config.connect_timeout or math.inf)
    handshaking = False
    try:
        with map_exceptions(url, connecting=True):
            try:
                with trio.fail_at(deadline):
                    if config.path is not None:
                        stream = await trio.open_unix_socket(config.path)
                    else:
                        stream = await trio.open_tcp_stream(config.host, config.port)
                    if context is not None:
                        tls = trio.SSLStream(stream, context, server_hostname=config.host)
                        connection = TLSConnection(tls, url, decode=decode)
                        handshaking = True
                        await tls.do_handshake()
                        handshaking = False
                    else:
                        raw = socket.socket(fileno=stream.socket.detach())
                        stream = None
                        connection = Connection(raw, url, decode=decode)
                    await _setup(connection, config)
            except trio.TooSlowError as exc:
                if handshaking:
                    raise TransportTimeout(
                        f"timed out connecting to {url}: no reply to the TLS handshake "
                        f"(is it a plain, non-TLS port? then use redis://)"
                    ) from exc
                raise
        WATCHDOG.watch(connection)
        return connection
    except BaseException:
        if connection is not None:
            connection.close()
        if stream is not None:
            stream.socket.close()
        raise


async def _setup(connection: Connection, config: ConnectionConfig) -> None:
    commands: list[tuple[Any, ...]] = []
    if config.password is not None or config.username is not None:
        if config.username is not None:
            commands.append(("AUTH", config.username, config.password or ""))
        else:
            commands.append(("AUTH", config.password or ""))
    if config.db:
        commands.append(("SELECT", config.db))
    if config.client_name:
        commands.append(("CLIENT", "SETNAME", config.client_name))
    if not commands:
        commands.append(("PING",))
    try:
        await connection.send(b"".join(_pack_command(command) for command in commands))
        replies = await connection.read_replies(len(commands), None)
    except BrokenConnectionError as exc:
        hint = "" if config.tls else " (does it want TLS? then use rediss://)"
        raise ConnectError(
            f"cannot connect to {config.display_url}: the server closed the connection "
            f"during setup{hint}"
        ) from exc
    for command, reply in zip(commands, replies, strict=True):
        if not isinstance(reply, ReplyError):
            continue
        error = command_error(reply)
        if isinstance(error, UnavailableError):
            # A full server (maxclients) or one loading its data: an outage, which is
            # waited out, not a wrong password or setting.
            raise ConnectError(f"cannot use {config.display_url} for now: {reply}") from error
        if command[0] == "AUTH" or isinstance(error, AuthenticationError):
            raise AuthenticationError(f"authentication to {config.display_url} failed: {reply}")
        what = " ".join(str(part) for part in command[:2])
        if command[0] == "PING":
            raise ConnectError(f"cannot use {config.display_url}: PING failed: {reply}")
        raise ConfigurationError(f"cannot set up {config.display_url}: {what} failed: {reply}")
