"""The runtime's errors: what ``run``, ``ask``, codecs and supervisors raise.

They extend the store's tree (:mod:`transports._exceptions`, whose root
:class:`ActorsError` is every error actors raises on purpose)::

    ActorsError
    ├── ConfigurationError
    │   └── SystemFileError       `python -m actors run FILE` cannot use FILE
    ├── CodecError                a payload cannot be encoded or decoded
    ├── AskTimeout                no reply to `ask` within its timeout (also a TimeoutError)
    ├── RemoteError               the handler that served an `ask` raised
    ├── SupervisorError           a supervisor gave up: restart intensity exceeded
    ├── SpawnError                a child could not be started or stopped at run time
    └── LifespanError             a lifespan, startup or shutdown hook of the system failed
"""

from __future__ import annotations

from transports import ActorsError, ConfigurationError

__all__ = [
    "AskTimeout",
    "CodecError",
    "LifespanError",
    "RemoteError",
    "SpawnError",
    "SupervisorError",
    "SystemFileError",
]


class SystemFileError(ConfigurationError):
    """The file given to ``python -m actors run`` cannot be used.

    ``filename`` and ``lineno`` point at the culprit when it is known.
    """

    def __init__(self, message: str, *, filename: str | None = None, lineno: int | None = None):
        super().__init__(message)
        self.filename = filename
        self.lineno = lineno


class CodecError(ActorsError):
    """A message could not be encoded, or a payload could not be decoded or validated."""


class AskTimeout(ActorsError, TimeoutError):
    """No reply arrived for an ``ask`` within its timeout."""


class RemoteError(ActorsError):
    """The handler that served an ``ask`` raised; ``error_type`` names its exception."""

    def __init__(self, message: str, *, error_type: str):
        super().__init__(message)
        self.error_type = error_type


class SupervisorError(ActorsError):
    """A supervisor exceeded its restart intensity and stopped its children.

    ``child`` names the child whose failures ended it, ``restarts`` how often it
    was restarted inside the window.
    """

    def __init__(self, message: str, *, child: str, restarts: int):
        super().__init__(message)
        self.child = child
        self.restarts = restarts


class SpawnError(ActorsError):
    """A child could not be started or stopped at run time (``start_child``,
    ``stop_child``, ``Pool.spawn``): the supervisor is not running (or stops), the
    name is taken among its children, there is no child of that name, or the child
    failed to start (its exception is the ``__cause__``). The supervisor goes on.
    """


class LifespanError(ActorsError):
    """A hook of the system's lifespan failed: at start (``@system.lifespan`` before
    its ``yield``, or ``@system.on_startup``: the system does not run), or at stop
    (after the actors stopped; every other hook still ran). The hook's exception is
    the ``__cause__``.
    """
