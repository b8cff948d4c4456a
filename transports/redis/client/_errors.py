"""Translation of foreign errors (OSError, ssl, trio, hiredis) into ``actors`` errors.

Every error that leaves this package is an :class:`~transports._exceptions.ActorsError`,
with the original exception chained as ``__cause__``. The translation happens once,
where the error enters (in the connection), as in httpcore's ``map_exceptions``.
Messages name the server by its display URL, which never contains a password.
"""

from __future__ import annotations

import errno
import functools
import socket
import ssl
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn

import trio
from hiredis import ReplyError
from redis.exceptions import RedisError

from transports._exceptions import (
    ActorsError,
    AuthenticationError,
    BrokenConnectionError,
    CommandError,
    ConfigurationError,
    ConnectError,
    TransportTimeout,
    UnavailableError,
)

__all__ = [
    "command_error",
    "connect_error",
    "map_exceptions",
    "reraise",
    "translate",
    "translate_argument_errors",
]

# Reply codes that mean "your credentials are not good enough".
_AUTH_CODES = frozenset({"NOAUTH", "WRONGPASS", "NOPERM"})
# Reply codes of a server that cannot serve for now but will again: an outage.
# READONLY, UNBLOCKED: a master demoted under live connections (FAILOVER, a failover
# behind a DNS name); NOREPLICAS: min-replicas-to-write until a replica catches up;
# MISCONF: writes refused until a failing snapshot succeeds.
_UNAVAILABLE_CODES = frozenset(
    {
        "OOM",
        "LOADING",
        "BUSY",
        "MASTERDOWN",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "READONLY",
        "UNBLOCKED",
        "NOREPLICAS",
        "MISCONF",
    }
)
# Said (as ERR) to a connection the server accepted beyond its maxclients.
_FULL = "ERR max number of clients reached"

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.ECONNRESET: "connection reset by peer",
    errno.EADDRNOTAVAIL: "address not available",
    errno.ENOENT: "no such socket file",
    errno.EACCES: "permission denied",
}


def command_error(
    reply: ReplyError | Exception, command: object = None
) -> CommandError | AuthenticationError:
    """The :class:`CommandError` (or :class:`AuthenticationError`) for an error reply.

    ``code`` is the reply's first word (``"WRONGTYPE"``, ``"NOGROUP"``, ``"ERR"``...).
    Credential errors (``NOAUTH``, ``WRONGPASS``, ``NOPERM``) become an
    :class:`AuthenticationError` instead, and replies of a server that cannot serve
    for now (``OOM``, ``LOADING``, ``BUSY``, ``MASTERDOWN``, ``TRYAGAIN``,
    ``CLUSTERDOWN``, ``READONLY``, ``UNBLOCKED``, ``NOREPLICAS``, ``MISCONF``, and
    ``ERR max number of clients reached``) an :class:`UnavailableError`. The error is
    returned, not raised. ``reply`` may be hiredis' error or any exception whose text is
    the reply's (redis-py's ``ResponseError``, for clients built on redis-py).
    """
    text = message = str(reply)
    code = text.split(" ", 1)[0] or "ERR"
    if command is not None:
        message = f"{_command_name(command)}: {text}"
    error: CommandError | AuthenticationError
    if code in _AUTH_CODES:
        error = AuthenticationError(message)
    elif code in _UNAVAILABLE_CODES or text.startswith(_FULL):
        error = UnavailableError(message, code=code)
    else:
        error = CommandError(message, code=code)
    error.__cause__ = reply
    return error


def _command_name(command: object) -> str:
    if isinstance(command, bytes):
        return command.decode("utf-8", "replace").upper()
    return str(command).upper()


def _oserror_words(exc: BaseException) -> str:
    """A short human reason for a socket error, looking through trio's groups."""
    seen: list[BaseException] = [exc]
    while seen:
        current = seen.pop()
        if isinstance(current, socket.gaierror):
            return f"cannot resolve host ({current.strerror or current})"
        if isinstance(current, OSError) and current.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[current.errno]
        if isinstance(current, BaseExceptionGroup):
            seen.extend(current.exceptions)
        if current.__cause__ is not None:
            seen.append(current.__cause__)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def connect_error(url: str, exc: BaseException) -> ActorsError:
    """The error for a failure while opening a connection to ``url`` (a display URL)."""
    if isinstance(exc, ActorsError):
        return exc
    if isinstance(exc, trio.TooSlowError):
        return TransportTimeout(f"timed out connecting to {url}")
    if isinstance(exc, ssl.SSLError | trio.BrokenResourceError) and _is_tls(exc):
        reason = _tls_reason(exc)
        return ConnectError(f"cannot connect to {url}: TLS handshake failed ({reason})")
    if isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError | EOFError):
        return ConnectError(f"cannot connect to {url}: connection closed by the server")
    if isinstance(exc, OSError):
        return ConnectError(f"cannot connect to {url}: {_oserror_words(exc)}")
    return ConnectError(f"cannot connect to {url}: {type(exc).__name__}: {exc}")


def _is_tls(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def _tls_reason(exc: BaseException) -> str:
    while not isinstance(exc, ssl.SSLError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.strerror or str(exc)
    return str(exc)


def translate(url: str, exc: BaseException) -> ActorsError:
    """The error for a failure on an open connection to ``url`` (a display URL)."""
    if isinstance(exc, ActorsError):
        return exc
    if isinstance(exc, trio.TooSlowError):
        return TransportTimeout(f"timed out waiting for a reply from {url}")
    if isinstance(exc, ssl.SSLError) or (
        isinstance(exc, trio.BrokenResourceError) and _is_tls(exc)
    ):
        return BrokenConnectionError(f"TLS connection to {url} broke: {_tls_reason(exc)}")
    if isinstance(exc, OSError | trio.BrokenResourceError | EOFError):
        return BrokenConnectionError(f"connection to {url} broke: {_oserror_words(exc)}")
    if isinstance(exc, trio.ClosedResourceError):
        return BrokenConnectionError(f"connection to {url} was closed")
    return BrokenConnectionError(f"connection to {url} failed: {type(exc).__name__}: {exc}")


class map_exceptions:
    """Context manager translating foreign errors into ``actors`` errors, once.

    ``with map_exceptions(url, connecting=True):`` turns ``OSError``, ``ssl``,
    ``trio`` stream and timeout errors into :class:`ConnectError` /
    :class:`TransportTimeout` (while connecting) or :class:`BrokenConnectionError` /
    :class:`TransportTimeout` (on an open connection), chaining the original as
    ``__cause__``. ``actors`` errors, ``trio.Cancelled`` and ``KeyboardInterrupt``
    pass through untouched.
    """

    __slots__ = ("_connecting", "_url")

    def __init__(self, url: str, *, connecting: bool = False) -> None:
        self._url = url
        self._connecting = connecting

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, ActorsError) or not isinstance(exc, Exception):
            return
        if isinstance(exc, TypeError | ValueError | AttributeError | KeyError):
            return  # programming errors are not transport errors
        reraise(self._url, exc, connecting=self._connecting)


def reraise(url: str, exc: BaseException, *, connecting: bool = False) -> NoReturn:
    """Raise the translation of ``exc`` from ``exc``."""
    error = connect_error(url, exc) if connecting else translate(url, exc)
    raise error from exc


def _guard(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except RedisError as exc:
            raise ConfigurationError(f"{method.__name__}: {exc}") from exc

    return guarded


def translate_argument_errors(cls: type[Any], mixin: type[Any]) -> None:
    """Wrap ``mixin``'s public command methods on ``cls`` so that redis-py's own
    argument checks (``DataError``) surface as :class:`ConfigurationError`."""
    for name in dir(mixin):
        if name.startswith("_") or name in vars(cls):
            continue
        method = getattr(mixin, name)
        if callable(method) and not isinstance(method, type):
            setattr(cls, name, _guard(method))
