"""Pub/Sub on a dedicated connection: subscribe, then read messages one by one.

Delivery is at-most-once: a message published while no subscriber listens, or
while the connection is down, is lost. The connection is never reopened
silently (its subscriptions would be gone); when it breaks, reading raises
:class:`BrokenConnectionError` and the caller opens a new :class:`PubSub`.
"""

from __future__ import annotations

import collections
import math
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio
from hiredis import ReplyError

from transports._exceptions import ClosedError

from ._connection import Connection, pack
from ._errors import command_error

if TYPE_CHECKING:
    from ._pool import ConnectionPool

__all__ = ["Message", "PubSub"]

MessageKind = Literal["message", "pmessage", "smessage"]

_CONFIRMATIONS = frozenset(
    {b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"ssubscribe", b"sunsubscribe"}
)


@attrs.frozen
class Message:
    """One published message.

    ``kind`` is ``"message"`` (SUBSCRIBE), ``"pmessage"`` (PSUBSCRIBE, with the
    matching ``pattern``) or ``"smessage"`` (SSUBSCRIBE, sharded). ``channel``,
    ``pattern`` and ``data`` are raw bytes, whatever ``decode_responses`` says.
    """

    kind: MessageKind
    channel: bytes
    data: bytes
    pattern: bytes | None = None


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


class PubSub:
    """A subscriber; made by :meth:`Redis.pubsub`, used as ``async with client.pubsub() as ps``.

    ``subscribe``/``psubscribe``/``ssubscribe`` and their ``un`` variants return once
    the server confirmed them, so a message published afterwards is received.
    :meth:`get_message` and ``async for message in ps`` may run in another task
    meanwhile. One task should read messages at a time.

    Raises (all methods):
        ClosedError: the subscriber was closed (``async with`` left or :meth:`aclose`).
        BrokenConnectionError: the connection broke; subscriptions are gone.
        ConnectError, AuthenticationError, TransportTimeout: opening it failed
            (on ``async with``).
        CommandError: the server refused a subscription command.
    """

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._connection: Connection | None = None
        self._messages: collections.deque[Message] = collections.deque()
        self._channels: set[bytes] = set()
        self._patterns: set[bytes] = set()
        self._shard_channels: set[bytes] = set()
        self._expected = 0  # confirmations asked for so far
        self._confirmed = 0  # confirmations received so far
        self._reading = False
        self._progress = trio.lowlevel.ParkingLot()
        self._send_lock = trio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"<PubSub {self._pool.config.display_url} channels={len(self._channels)} "
            f"patterns={len(self._patterns)} shard_channels={len(self._shard_channels)}>"
        )

    async def __aenter__(self) -> PubSub:
        self._connection = await self._pool.open_dedicated(decode=False)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def channels(self) -> frozenset[bytes]:
        """Channels subscribed with :meth:`subscribe` (as requested, not yet confirmed)."""
        return frozenset(self._channels)

    @property
    def patterns(self) -> frozenset[bytes]:
        """Patterns subscribed with :meth:`psubscribe`."""
        return frozenset(self._patterns)

    @property
    def shard_channels(self) -> frozenset[bytes]:
        """Shard channels subscribed with :meth:`ssubscribe`."""
        return frozenset(self._shard_channels)

    async def subscribe(self, *channels: str | bytes) -> None:
        """Subscribe to ``channels``; returns when the server confirmed."""
        await self._change("SUBSCRIBE", channels, self._channels, add=True)

    async def unsubscribe(self, *channels: str | bytes) -> None:
        """Unsubscribe from ``channels`` (all channels when none given); waits for it."""
        await self._change("UNSUBSCRIBE", channels, self._channels, add=False)

    async def psubscribe(self, *patterns: str | bytes) -> None:
        """Subscribe to glob-style ``patterns``; returns when the server confirmed."""
        await self._change("PSUBSCRIBE", patterns, self._patterns, add=True)

    async def punsubscribe(self, *patterns: str | bytes) -> None:
        """Unsubscribe from ``patterns`` (all patterns when none given); waits for it."""
        await self._change("PUNSUBSCRIBE", patterns, self._patterns, add=False)

    async def ssubscribe(self, *channels: str | bytes) -> None:
        """Subscribe to sharded ``channels`` (Redis 7); returns when confirmed."""
        await self._change("SSUBSCRIBE", channels, self._shard_channels, add=True)

    async def sunsubscribe(self, *channels: str | bytes) -> None:
        """Unsubscribe from sharded ``channels`` (all when none given); waits for it."""
        await self._change("SUNSUBSCRIBE", channels, self._shard_channels, add=False)

    async def _change(
        self, command: str, names: tuple[str | bytes, ...], current: set[bytes], *, add: bool
    ) -> None:
        connection = self._open_connection()
        wanted = [_as_bytes(name) for name in names]
        if add:
            if not wanted:
                return
            current.update(wanted)
            self._expected += len(wanted)
        else:
            self._expected += len(wanted) or max(1, len(current))
            if wanted:
                current.difference_update(wanted)
            else:
                current.clear()
        target = self._expected
        async with self._send_lock:
            await connection.send(pack((command, *wanted)))
        while self._confirmed < target:
            await self._pump(math.inf)

    def _open_connection(self) -> Connection:
        if self._closed or self._connection is None:
            raise ClosedError("this subscriber is closed" if self._closed else "use async with")
        return self._connection

    async def _pump(self, deadline: float) -> bool:
        """Read and dispatch one reply, or wait while another task does; False on timeout."""
        connection = self._open_connection()
        if self._reading:
            with trio.move_on_at(deadline):
                await self._progress.park()
                return True
            return False
        self._reading = True
        try:
            with trio.move_on_at(deadline):
                reply = await connection.read_reply()
                self._dispatch(reply)
                return True
            return False
        except BaseException:
            if self._closed:
                raise ClosedError("this subscriber was closed while reading") from None
            raise
        finally:
            self._reading = False
            self._progress.unpark_all()

    def _dispatch(self, reply: Any) -> None:
        if reply.__class__ is ReplyError:
            raise command_error(reply, "pub/sub")
        kind = reply[0]
        if kind == b"message":
            self._messages.append(Message("message", reply[1], reply[2]))
        elif kind == b"pmessage":
            self._messages.append(Message("pmessage", reply[2], reply[3], pattern=reply[1]))
        elif kind == b"smessage":
            self._messages.append(Message("smessage", reply[1], reply[2]))
        elif kind in _CONFIRMATIONS:
            self._confirmed += 1

    async def get_message(self, timeout: float | None = None) -> Message | None:
        """The next message, skipping subscription confirmations.

        Waits up to ``timeout`` seconds (``None``: until one arrives) and returns
        None when none came. Cancelling it loses nothing.
        """
        if self._messages:
            await trio.lowlevel.checkpoint()
            return self._messages.popleft()
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        while not self._messages:
            if not await self._pump(deadline):
                return None
        return self._messages.popleft()

    def __aiter__(self) -> PubSub:
        return self

    async def __anext__(self) -> Message:
        """The next message; iteration ends when the subscriber is closed."""
        try:
            message = await self.get_message()
        except ClosedError:
            raise StopAsyncIteration from None
        assert message is not None
        return message

    async def aclose(self) -> None:
        """Close the connection (unsubscribing everything); idempotent."""
        self._closed = True
        if self._connection is not None:
            self._pool.close_dedicated(self._connection)
        await trio.lowlevel.checkpoint()
