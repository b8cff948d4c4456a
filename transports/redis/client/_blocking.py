"""``async with client.blocking(key) as conn:`` — a connection of its own on the node of
``key``, for blocking reads with commands pipelined around them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, Self

import trio

from transports._exceptions import AuthenticationError, ClosedError, CommandError, TransportTimeout

from ._replies import RAW

__all__ = ["BlockingConnection"]


class DedicatedConnection(Protocol):
    """What :class:`BlockingConnection` uses of the client's dedicated connection."""

    @property
    def connected(self) -> bool: ...

    async def batch(
        self, commands: Sequence[Sequence[Any]], read_timeout: float | None
    ) -> list[Any]: ...

    async def execute_command(self, *args: Any, **options: Any) -> Any: ...

    def close(self) -> None: ...


_REDIRECTS = ("MOVED", "ASK")


class BlockingConnection:
    """A connection outside the pool, on the node of one key, kept open across calls.

    :meth:`batch` sends commands, one of which may block (``BLMOVE``, ``XREADGROUP
    BLOCK``...), in one write: the server runs those before the blocking one at
    once, and those after it as soon as it returns. Made by ``client.blocking(key)``;
    leaving its ``async with`` (or :meth:`close`) closes it. Not to be shared
    between tasks.
    """

    __slots__ = ("_closed", "_dedicated", "_open", "_url")

    def __init__(
        self,
        url: str,
        open_dedicated: Callable[[], AbstractAsyncContextManager[DedicatedConnection]],
    ) -> None:
        self._url = url
        self._open = open_dedicated
        self._dedicated: DedicatedConnection | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<BlockingConnection {self._url}>"

    async def __aenter__(self) -> Self:
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    async def batch(self, commands: Sequence[Sequence[Any]], timeout: float) -> list[Any]:
        """Run ``commands`` and return a reply per command, within ``timeout`` seconds in
        all. Replies are raw (bulk strings as ``bytes``); an error reply comes back as
        the error it would raise, in its place (as :meth:`Redis.batch` gives them).

        One write on the open connection. The first time, after a failure, or when a
        cluster redirected them (``MOVED``/``ASK``: nothing ran), the commands run one
        after another instead, each on the node of its key, following redirections.

        Raises:
            TransportTimeout: the replies are overdue (the connection closes; the next
                call opens another).
            ClosedError: the connection was closed.
            ConfigurationError: an argument hiredis cannot encode (nothing was sent).
            TransportError: the connection failed (it closes; the next call opens
                another).
        """
        if self._closed:
            raise ClosedError(f"{self!r} is closed")
        dedicated = self._dedicated
        if dedicated is not None and dedicated.connected:
            replies = await dedicated.batch(commands, timeout)
            if not any(getattr(reply, "code", "") in _REDIRECTS for reply in replies):
                return replies
        return await self._one_by_one(commands, timeout)

    async def _one_by_one(self, commands: Sequence[Sequence[Any]], timeout: float) -> list[Any]:
        with trio.move_on_after(timeout) as scope:
            dedicated = self._dedicated
            if dedicated is None:
                dedicated = self._dedicated = await self._open().__aenter__()
            replies: list[Any] = []
            for command in commands:
                try:
                    replies.append(await dedicated.execute_command(*command, **RAW))
                except (CommandError, AuthenticationError) as exc:
                    replies.append(exc)
            return replies
        assert scope.cancelled_caught
        # Cancelled mid-command, the dedicated connection closed its connection.
        raise TransportTimeout(
            f"no reply to {_name(commands)} from {self._url} within {timeout:.1f}s"
        )

    @property
    def connected(self) -> bool:
        """Whether a connection is open (the next :meth:`batch` is one write)."""
        return self._dedicated is not None and self._dedicated.connected

    def close(self) -> None:
        """Close the connection now; idempotent. A blocked :meth:`batch` fails."""
        self._closed = True
        if self._dedicated is not None:
            self._dedicated.close()


def _name(commands: Sequence[Sequence[Any]]) -> str:
    names = [command[0] for command in commands if command]
    return " ".join(name.decode() if isinstance(name, bytes) else str(name) for name in names)
