"""The vocabulary of supervision trees: child specs, lifecycle states, snapshots, intensity.

Everything here is plain data or pure logic, so the supervisor in ``_supervision.py``
stays about scheduling, and the intensity window can be tested exhaustively on its own.
``ChildRecord`` and ``Incarnation`` are the supervisor's private bookkeeping; they are
not part of the public API.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Awaitable
from typing import Any, Literal, Protocol, get_args

import attrs
import trio

from transports import ConfigurationError

__all__ = [
    "ChildChange",
    "ChildInfo",
    "ChildRun",
    "ChildSpec",
    "ChildState",
    "ExitDirective",
    "Restart",
    "RestartIntensity",
    "Strategy",
]

Restart = Literal["permanent", "transient", "temporary"]
"""When a child is restarted: ``permanent`` always, ``transient`` only after it raised,
``temporary`` never."""

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
"""Which children a supervisor restarts when one of them must be restarted."""

ExitDirective = Literal["restart", "stop", "escalate"]
"""What a child's crash asks of its supervisor, when the child knows better than "a crash":
``restart`` (the crash was caused by the message in hand: restart at once, no backoff),
``stop`` (do not restart this child) or ``escalate`` (the supervisor fails at once)."""

RESTARTS: tuple[str, ...] = get_args(Restart)
STRATEGIES: tuple[str, ...] = get_args(Strategy)


class ChildRun(Protocol):
    """How a supervisor runs a child: one call is one fresh incarnation.

    The call must invoke ``task_status.started()`` once the child is up (for an
    actor: after ``__init__`` and ``on_start``); raising before that is a *start
    failure*. After that it runs until it returns (a normal exit), raises (an
    abnormal exit, a crash), or ``stop`` is set: then it finishes what it is
    doing and returns soon. A child that does not return within its spec's
    ``shutdown`` seconds is cancelled.
    """

    def __call__(
        self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = ...
    ) -> Awaitable[None]:
        """Run one incarnation of the child until it exits, crashes or ``stop`` is set."""
        ...


class ChildState(enum.Enum):
    """Where a child, or a supervisor, is in its lifecycle."""

    STARTING = "starting"
    """Its run was called and it has not called ``task_status.started()`` yet."""
    RUNNING = "running"
    """It started and has not exited."""
    RESTARTING = "restarting"
    """It exited and waits for its restart (backoff delay, or siblings being stopped)."""
    STOPPING = "stopping"
    """Its supervisor asked it to stop and waits for it to return."""
    STOPPED = "stopped"
    """It is not running and will not run again unless its supervisor restarts it."""
    FAILED = "failed"
    """It failed to start, or its supervisor gave up on it (restart intensity)."""


_DIRECTIVE = "__actors_directive__"


def direct(error: Exception, directive: ExitDirective) -> None:
    """Mark ``error``, about to be raised by a child, with what its supervisor should do.

    The mark is an attribute of the exception, so the supervisor, its logs and a
    :class:`SupervisorError`'s ``__cause__`` still see the child's own exception.
    """
    setattr(error, _DIRECTIVE, directive)


def directive_of(error: Exception | None) -> ExitDirective | None:
    """The mark :func:`direct` put on ``error``; None for a plain crash (or no error)."""
    directive = getattr(error, _DIRECTIVE, None)
    return directive if directive in ("restart", "stop", "escalate") else None


def _valid_name(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    check_name(value, what=f"child {attribute.name}")


def check_name(value: object, *, what: str) -> None:
    """Raise ConfigurationError unless ``value`` can name a node of a tree path."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string, not {value!r}")
    # "/" separates the levels of a path such as "root/bank/ledger-2".
    if "/" in value:
        raise ConfigurationError(f"{what} must not contain '/': {value!r}")


def check_restart(value: object) -> None:
    """Raise ConfigurationError unless ``value`` is a :data:`Restart`."""
    if value not in RESTARTS:
        raise ConfigurationError(f"restart must be one of {', '.join(RESTARTS)}; not {value!r}")


def check_timeout(value: object, *, what: str, positive: bool = False) -> None:
    """Raise ConfigurationError unless ``value`` is a number >= 0 (> 0 if ``positive``)."""
    # bool is an int, but `shutdown=True` is a mistake, not a second.
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigurationError(f"{what} must be a number of seconds, not {value!r}")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigurationError(f"{what} must be {bound}, not {value!r}")


def _valid_restart(_: object, __: attrs.Attribute[str], value: str) -> None:
    check_restart(value)


def _valid_shutdown(_: object, __: attrs.Attribute[float], value: float) -> None:
    check_timeout(value, what="shutdown")


def _valid_run(_: object, __: attrs.Attribute[ChildRun], value: ChildRun) -> None:
    if not callable(value):
        raise ConfigurationError(f"child run must be an async callable, not {value!r}")


@attrs.frozen
class ChildSpec:
    """What a supervisor needs to know to run, restart and stop one child.

    ``name`` is unique among its siblings and becomes the last part of the child's
    path ("root/bank/ledger-2"). ``shutdown`` is how many seconds the child gets to
    return after its stop event is set before it is cancelled (0 cancels at once,
    ``math.inf`` waits forever, which is the right choice for a supervisor).
    Siblings declared next to each other with the same ``pool`` (the instances of
    one actor) are stopped together, each within its own ``shutdown``, as OTP's
    ``simple_one_for_one`` stops its children: a pool of 12 stops as fast as one.

    Raises:
        ConfigurationError: on an empty name or one containing "/", a ``run`` that
            is not callable, an unknown ``restart``, a negative or NaN ``shutdown``.
    """

    name: str = attrs.field(validator=_valid_name)
    run: ChildRun = attrs.field(validator=_valid_run)
    restart: Restart = attrs.field(default="permanent", validator=_valid_restart)
    shutdown: float = attrs.field(default=5.0, validator=_valid_shutdown)
    pool: str | None = None


@attrs.frozen
class ChildInfo:
    """A snapshot of one node of a live supervision tree, from ``Supervisor.tree()``.

    ``restarts`` counts how often this node was restarted by its supervisor since the
    supervisor (re)started; ``children`` is empty for a worker.
    """

    name: str
    path: str
    kind: Literal["supervisor", "worker"]
    state: ChildState
    restarts: int
    children: tuple[ChildInfo, ...] = ()

    def as_data(self) -> dict[str, Any]:
        """This snapshot as JSON-able data (a node's heartbeat carries it): name, kind,
        state, restarts, and children (only where there are some)."""
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "state": self.state.value,
            "restarts": self.restarts,
        }
        if self.children:
            data["children"] = [child.as_data() for child in self.children]
        return data

    def find(self, path: str) -> ChildInfo | None:
        """The node of this snapshot whose path is ``path``, or None."""
        if self.path == path:
            return self
        for child in self.children:
            found = child.find(path)
            if found is not None:
                return found
        return None


@attrs.define(eq=False)
class Incarnation:
    """One run of one child: its own stop event and cancel scope, and how it ended."""

    child: ChildRecord
    stop: trio.Event = attrs.Factory(trio.Event)
    cancel_scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    done: trio.Event = attrs.Factory(trio.Event)
    error: Exception | None = None


@attrs.define(eq=False)
class ChildChange:
    """A request to the loop of a running supervisor, from another task: start the
    children ``start`` (appended to its children), or stop and remove the child named
    ``stop``. ``done`` is set once it is dealt with, ``error`` set if it failed."""

    start: list[ChildRecord] = attrs.Factory(list)
    stop: str | None = None
    done: trio.Event = attrs.Factory(trio.Event)
    error: Exception | None = None


@attrs.define(eq=False)
class ChildRecord:
    """What a supervisor remembers about one child across its incarnations."""

    spec: ChildSpec
    path: str
    state: ChildState = ChildState.STOPPED
    restarts: int = 0
    incarnation: Incarnation | None = None
    # Restarts since the child last ran `backoff.reset_after` seconds without crashing.
    consecutive: int = 0
    #: What its last incarnation raised (None: it stopped without error).
    error: Exception | None = None
    started_at: float = -math.inf


class RestartIntensity:
    """OTP's restart intensity: at most ``max_restarts`` restarts in any ``within`` seconds.

    ``record(now)`` notes one restart at time ``now`` and says whether it is allowed:
    it is when at most ``max_restarts`` recorded restarts, this one included, lie in
    the window ``[now - within, now]``. Like OTP the window is inclusive, so restarts
    exactly ``within`` seconds apart are in the same window. Times must not decrease.

    Raises:
        ConfigurationError: on a negative or non-integer ``max_restarts``, or a
            ``within`` that is not a positive number.
    """

    def __init__(self, max_restarts: int, within: float) -> None:
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ConfigurationError(f"max_restarts must be an int >= 0, not {max_restarts!r}")
        check_timeout(within, what="within", positive=True)
        self.max_restarts = max_restarts
        self.within = within
        # Only the times still inside the window matter, and never more than
        # max_restarts + 1 of them, so memory stays bounded however long we run.
        self._times: deque[float] = deque()

    def record(self, now: float) -> bool:
        """Record a restart at ``now``; True if it is allowed, False if it is one too many."""
        self._times.append(now)
        while self._times[0] < now - self.within:
            self._times.popleft()
        while len(self._times) > self.max_restarts + 1:
            self._times.popleft()
        return len(self._times) <= self.max_restarts

    def count(self) -> int:
        """How many restarts were recorded in the window that ended at the last record."""
        return len(self._times)
