"""Lua scripts run by their SHA1 (``EVALSHA``), sent in full only to a server that lacks
them: :class:`LuaScript` knows its source, so the client can answer ``NOSCRIPT`` itself."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from transports._exceptions import AuthenticationError, CommandError

from ._replies import RAW

__all__ = ["LuaScript", "load_missing", "missing_script", "source_of"]


class _Runs(Protocol):
    def execute_command(self, *args: Any, **options: Any) -> Any: ...  # awaitable


_SOURCES: dict[str, str] = {}  # sha -> source, of every LuaScript made in this process


class LuaScript:
    """A Lua script: its ``source`` and the SHA1 (``sha``) servers cache it under.

    :meth:`command` gives the ``EVALSHA`` command to run it, alone
    (``client.execute_command``) or among others (``client.batch``); a server that
    lacks the script (``NOSCRIPT``) gets it in full (``EVAL``) from the client.
    """

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        _SOURCES[self.sha] = source

    def command(self, keys: Sequence[str | bytes], args: Sequence[Any]) -> tuple[Any, ...]:
        """The ``EVALSHA`` command that runs this script on ``keys`` with ``args``."""
        return (b"EVALSHA", self.sha, len(keys), *keys, *args)


def source_of(command: Sequence[Any]) -> str | None:
    """The source of the script that an ``EVALSHA`` ``command`` of a :class:`LuaScript`
    runs (None for any other command)."""
    if len(command) < 2 or command[0] not in (b"EVALSHA", "EVALSHA"):
        return None
    sha = command[1]
    return _SOURCES.get(sha.decode() if isinstance(sha, bytes) else str(sha))


def missing_script(replies: Sequence[Any]) -> bool:
    """True when one of a batch's ``replies`` is a ``NOSCRIPT`` error."""
    return any(isinstance(reply, CommandError) and reply.code == "NOSCRIPT" for reply in replies)


async def load_missing(
    client: _Runs, commands: Sequence[Sequence[Any]], replies: list[Any]
) -> None:
    """Run again with ``EVAL``, on ``client``, each ``EVALSHA`` of ``commands`` (of a
    :class:`LuaScript`) that ``replies`` say the server lacks (``NOSCRIPT``); its reply,
    or error, takes the place of the ``NOSCRIPT`` error.

    Raises:
        The connection errors of the client.
    """
    for index, reply in enumerate(replies):
        if not (isinstance(reply, CommandError) and reply.code == "NOSCRIPT"):
            continue
        command = commands[index]
        source = source_of(command)
        if source is None:
            continue
        try:
            replies[index] = await client.execute_command(b"EVAL", source, *command[2:], **RAW)
        except (CommandError, AuthenticationError) as exc:
            replies[index] = exc
