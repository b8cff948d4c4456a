"""Lua scripts run by their SHA1 (``EVALSHA``), sent in full only to a server that lacks
them: :class:`LuaScript` knows its source, so the client can answer ``NOSCRIPT`` itself."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

__all__ = ["LuaScript", "source_of"]

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
