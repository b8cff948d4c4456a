"""The store's errors, and the root of every error actors raises (re-exported by ``actors``).

Defined here, in the lowest layer, so that transports never import the runtime; the
runtime's own errors (``AskTimeout``, ``RemoteError``...) extend this tree in
``actors._errors``.

Every error the runtime raises on purpose is an :class:`ActorsError`. Errors from
libraries we drive (redis-py, hiredis, ssl, OSError from sockets) are translated
once, where they enter, and chained as ``__cause__``; actor code never has to
catch a foreign exception. As in trio, *closed* (you closed it) and *broken* (the
world failed it) are different errors::

    ActorsError
    ├── ConfigurationError        a URL, spec, file or argument is wrong; fix the input
    ├── ClosedError               you closed this client, pool, mailbox or system
    ├── TransportError            the message store failed us
    │   ├── ConnectError          cannot connect: refused, unreachable, TLS, DNS
    │   │   └── AuthenticationError   wrong user or password, or no permission
    │   ├── BrokenConnectionError a connection broke mid-command (server died, dropped)
    │   ├── TransportTimeout      connect or read timed out
    │   └── CommandError          the server answered a command with an error
    │       └── UnavailableError  ...that it cannot serve for now (OOM, LOADING, BUSY...)
    └── ReplayError               dead letters asked for were not replayed (kept, or not found)

A store failure is an *outage* (:func:`is_outage`: no connection, a timeout, or
:class:`UnavailableError`), which the runtime waits out, or a *refusal* (every other
:class:`TransportError`: credentials, permissions, a bad argument), which retrying
cannot cure. The runtime also waits out a key of the wrong type (a ``WRONGTYPE``
:class:`CommandError`), which it reports until someone fixes the key.
"""

from __future__ import annotations

__all__ = [
    "ActorsError",
    "AuthenticationError",
    "BrokenConnectionError",
    "ClosedError",
    "CommandError",
    "ConfigurationError",
    "ConnectError",
    "ReplayError",
    "TransportError",
    "TransportTimeout",
    "UnavailableError",
    "is_outage",
]


class ActorsError(Exception):
    """Root of every error actors raises on purpose."""


class ConfigurationError(ActorsError, ValueError):
    """Something the user configured is wrong: a URL, a mailbox, a supervisor, an argument."""


class ClosedError(ActorsError):
    """The object was closed by its owner and cannot be used any more."""


class TransportError(ActorsError):
    """The message store (Redis, or the in-memory store) failed an operation."""


class ConnectError(TransportError):
    """A connection could not be opened: refused, unreachable, DNS or TLS failure."""


class AuthenticationError(ConnectError):
    """The server refused our credentials (wrong user or password, or no permission)."""


class BrokenConnectionError(TransportError):
    """An open connection broke in the middle of a command (server gone, link dropped)."""


class TransportTimeout(TransportError, TimeoutError):
    """Connecting, or waiting for a reply, took longer than the configured timeout."""


class CommandError(TransportError):
    """The server answered a command with an error reply (``WRONGTYPE``, ``NOGROUP``...).

    ``code`` is the reply's first word, such as ``"NOGROUP"``, or ``"ERR"``.
    """

    def __init__(self, message: str, *, code: str = "ERR"):
        super().__init__(message)
        self.code = code


class UnavailableError(CommandError):
    """The server answered that it cannot serve for now, and will again: out of memory
    (``OOM``), loading its data (``LOADING``), running a long script (``BUSY``), its
    master or cluster down (``MASTERDOWN``, ``CLUSTERDOWN``), a slot being moved
    (``TRYAGAIN``). An outage, like a lost connection: wait and try again."""


def is_outage(error: BaseException) -> bool:
    """True when ``error`` means the store cannot serve for now but will again, so that
    waiting and retrying is the cure: a connection that cannot be opened (except for
    credentials), broke or timed out, or an :class:`UnavailableError` reply. False for
    refusals (credentials, permissions, wrong key types, bad arguments) and anything
    that is not a :class:`TransportError`."""
    if isinstance(error, AuthenticationError):
        return False
    return isinstance(
        error, ConnectError | BrokenConnectionError | TransportTimeout | UnavailableError
    )


class ReplayError(ActorsError):
    """Some dead letters asked for were not replayed; the others were.

    ``replayed`` is how many were; ``not_found`` names the ids asked for that are not
    in the dead letters; ``kept`` names the letters left where they are because
    their message would not have been stored anywhere (no subscriber received
    it from a pub/sub channel), or because they hold no payload.
    """

    def __init__(
        self,
        message: str,
        *,
        replayed: int,
        not_found: tuple[str, ...] = (),
        kept: tuple[str, ...] = (),
    ):
        super().__init__(message)
        self.replayed = replayed
        self.not_found = not_found
        self.kept = kept
