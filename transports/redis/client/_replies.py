"""Turning raw replies into redis-py's results, and read timeouts of blocking commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hiredis import ReplyError
from redis._parsers.response_callbacks import get_response_callbacks
from redis.client import EMPTY_RESPONSE, NEVER_DECODE

from ._errors import command_error

__all__ = [
    "BLOCKING_COMMANDS",
    "MISSING",
    "RAW",
    "Callbacks",
    "blocking_read_timeout",
    "finish",
    "response_callbacks",
    "split_options",
]

RAW: dict[str, Any] = {NEVER_DECODE: True}
"""Options of ``execute_command`` for a raw reply: bytes whatever the client decodes."""

MISSING: Any = object()
"""Marks an absent option (``EMPTY_RESPONSE`` may legitimately be None)."""
Callbacks = dict[str, Callable[..., Any]]

# Commands that wait on the server; the read timeout is extended by their own.
_BLOCK_LAST = frozenset({"BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BZPOPMIN", "BZPOPMAX"})
_BLOCK_FIRST = frozenset({"BLMPOP", "BZMPOP"})
_BLOCK_OPTION = frozenset({"XREAD", "XREADGROUP"})
_BLOCK_MS_LAST = frozenset({"WAIT", "WAITAOF"})
BLOCKING_COMMANDS = _BLOCK_LAST | _BLOCK_FIRST | _BLOCK_OPTION | _BLOCK_MS_LAST


def blocking_read_timeout(args: tuple[Any, ...], read_timeout: float | None) -> float | None:
    """The read timeout for a blocking command: its own timeout plus ``read_timeout``.

    ``None`` (wait forever) when the command blocks forever (timeout 0) or when
    ``read_timeout`` is None. Non-blocking forms (XREAD without BLOCK) keep
    ``read_timeout``.
    """
    if read_timeout is None:
        return None
    name = args[0]
    try:
        if name in _BLOCK_OPTION:
            for index, arg in enumerate(args):
                word = arg.upper() if isinstance(arg, str | bytes) else arg
                if word in (b"STREAMS", "STREAMS"):
                    return read_timeout
                if word in (b"BLOCK", "BLOCK"):
                    seconds = float(args[index + 1]) / 1000
                    break
            else:
                return read_timeout
        elif name in _BLOCK_FIRST:
            seconds = float(args[1])
        elif name in _BLOCK_MS_LAST:
            seconds = float(args[-1]) / 1000
        else:
            seconds = float(args[-1])
    except (TypeError, ValueError, IndexError):
        return None
    return None if seconds <= 0 else read_timeout + seconds


def split_options(options: dict[str, Any]) -> tuple[bool, Any]:
    """Pop the options meant for us, not for callbacks: (decode, empty response)."""
    options.pop("keys", None)
    decode = True
    if NEVER_DECODE in options:
        del options[NEVER_DECODE]
        decode = False
    return decode, options.pop(EMPTY_RESPONSE, MISSING)


def finish(reply: Any, name: Any, options: dict[str, Any], empty: Any, callbacks: Callbacks) -> Any:
    """Turn a raw reply into what redis-py returns: error replies raise, callbacks apply.

    Raises:
        CommandError: the reply is an error (unless ``empty`` was given, which is
            then returned, as redis-py does for ``EMPTY_RESPONSE``).
        AuthenticationError: the error is NOAUTH, WRONGPASS or NOPERM.
    """
    if reply.__class__ is ReplyError:
        if empty is not MISSING:
            return empty
        raise command_error(reply, name)
    callback = callbacks.get(name)
    if callback is None and isinstance(name, str):
        callback = callbacks.get(name.upper())
    if callback is None:
        return reply
    return callback(reply, **options)


def response_callbacks() -> Callbacks:
    """redis-py's RESP2 response callbacks, keyed by upper-case command name."""
    callbacks = get_response_callbacks(user_protocol=2, legacy_responses=True)
    return {name.upper(): callback for name, callback in callbacks.items()}
