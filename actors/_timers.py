"""Per-instance timers: ``self.start_timer(key, interval, msg)`` sends ``msg`` to the actor's
own mailbox every ``interval`` seconds (or once), until cancelled or the instance ends.

Timers are in-process: they run in a nursery of the instance and die with it (a stop, a
crash, a restart), so a restarted instance that starts its timers again in ``on_start``
has each of them once. For messages that must survive a restart, use
``tell(..., delay=)`` (held by the store) or ``system.schedule`` (fired once per due time
across every process).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Hashable
from datetime import timedelta
from typing import Any, Protocol

import trio

from transports import ConfigurationError

__all__ = ["TimerMethods", "Timers"]

logger = logging.getLogger("actors.timers")


class Timers:
    """The timers of one instance, by key; they run once :meth:`attach` gave them a nursery."""

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._send: Callable[[Any], Awaitable[None]] | None = None
        self._scopes: dict[Hashable, trio.CancelScope] = {}
        self._path = ""

    def attach(
        self, nursery: trio.Nursery, send: Callable[[Any], Awaitable[None]], path: str
    ) -> None:
        """Run timers in ``nursery`` (the instance's), sending their messages with ``send``."""
        self._nursery, self._send, self._path = nursery, send, path

    def start(
        self, key: Hashable, interval: float | timedelta, msg: Any, *, repeat: bool = True
    ) -> None:
        """Send ``msg`` to the instance's mailbox every ``interval`` (once with
        ``repeat=False``), the first time ``interval`` from now; a timer of the same
        ``key`` is replaced.

        Raises:
            ConfigurationError: ``interval`` is not a positive number of seconds.
            RuntimeError: the instance does not run yet (call it from ``on_start`` or a
                handler, not ``__init__``).
        """
        seconds = interval.total_seconds() if isinstance(interval, timedelta) else interval
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
            raise ConfigurationError(f"a timer needs an interval > 0 seconds, not {interval!r}")
        if self._nursery is None:
            raise RuntimeError("timers start once the instance runs: in on_start or a handler")
        self.cancel(key)
        scope = self._scopes[key] = trio.CancelScope()
        self._nursery.start_soon(self._tick, key, scope, float(seconds), msg, repeat)

    def cancel(self, key: Hashable) -> bool:
        """Stop the timer ``key``; False when there was none."""
        scope = self._scopes.pop(key, None)
        if scope is None:
            return False
        scope.cancel()
        return True

    def keys(self) -> list[Hashable]:
        """The keys of the running timers."""
        return list(self._scopes)

    async def _tick(
        self, key: Hashable, scope: trio.CancelScope, interval: float, msg: Any, repeat: bool
    ) -> None:
        assert self._send is not None
        try:
            with scope:
                due = trio.current_time() + interval
                while True:
                    await trio.sleep_until(due)
                    try:
                        await self._send(msg)
                    except Exception:
                        # A timer must not crash its instance (it shares the nursery): a
                        # tick the store refused is lost, the next one comes on time.
                        logger.exception("%s: timer %r could not send its message", self._path, key)
                    if not repeat:
                        return
                    # Fixed rate; ticks missed while a send was slow are skipped, not bunched.
                    due = max(due + interval, trio.current_time())
        finally:
            if self._scopes.get(key) is scope:
                del self._scopes[key]


class _Context(Protocol):
    @property
    def timers(self) -> Timers: ...


class TimerMethods:
    """The timer methods of :class:`Actor` (see :class:`Timers`)."""

    context: _Context

    def start_timer(
        self, key: Hashable, interval: float | timedelta, msg: Any, *, repeat: bool = True
    ) -> None:
        """Send ``msg`` to this actor's mailbox every ``interval`` seconds (once with
        ``repeat=False``); starting a timer with a key in use replaces it. Timers live in
        this instance and end with it: start them in ``on_start`` to have them after a
        restart.

        Raises:
            ConfigurationError: ``interval`` is not a positive number of seconds.
            RuntimeError: called before the instance runs (in ``__init__``).
        """
        self.context.timers.start(key, interval, msg, repeat=repeat)

    def cancel_timer(self, key: Hashable) -> bool:
        """Stop the timer ``key``; False when none runs."""
        return self.context.timers.cancel(key)
