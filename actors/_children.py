"""Running the children of one supervisor run: each incarnation in a task of the
supervisor's nursery that reports its exit, started in order, stopped in reverse
(a pool together), cancelled one at a time as the last word. Knows no strategy."""

from __future__ import annotations

import itertools
import logging
from contextvars import ContextVar
from typing import Any, Protocol

import trio

from transports import ActorsError

from ._errors import SpawnError
from ._tree import ChildChange, ChildRecord, ChildState, Incarnation

__all__ = ["ChildWatch", "Children", "StartFailed", "current_child_path", "current_watch", "emit"]

log = logging.getLogger("actors.supervision")

# The tree path of the child running in the current task. Set by the wrapper task of
# each incarnation, so a nested supervisor learns its own path without being told by
# its parent, and an actor can put its path in its logs.
_PATH: ContextVar[str | None] = ContextVar("actors.supervision.path", default=None)


class ChildWatch(Protocol):
    """Told when a child comes up (its first start) and goes down for good: stopped,
    or exited or crashed and not restarted (a restart is neither)."""

    def up(self, child: ChildRecord) -> None:
        """``child`` started, and was not running before."""

    def down(self, child: ChildRecord) -> None:
        """``child`` stopped and will not be restarted (``child.error``: why)."""


#: The death watch of the system whose tree runs in this task (set by the runtime).
current_watch: ContextVar[ChildWatch | None] = ContextVar("actors.watch", default=None)


def current_child_path() -> str | None:
    """The tree path ("root/bank/ledger-2") of the supervised child running this task.

    None outside any supervisor. Tasks a child spawns inherit its path.
    """
    return _PATH.get()


class StartFailed(Exception):
    """Internal: ``child`` raised (or returned) before calling ``task_status.started()``."""

    def __init__(self, child: ChildRecord, error: Exception) -> None:
        super().__init__(child.path)
        self.child = child
        self.error = error


class StartedRelay(trio.TaskStatus[None]):
    """The task_status a child sees: notes that it started, then tells the nursery."""

    def __init__(self, inner: trio.TaskStatus[None]) -> None:
        self._inner = inner
        self.is_started = False

    def started(self, value: None = None) -> None:
        if self.is_started:
            raise RuntimeError("called 'started' twice on the same task status")
        self.is_started = True
        self._inner.started()


def emit(
    level: int,
    event: str,
    path: str,
    message: str,
    exc_info: Exception | None = None,
    **fields: Any,
) -> None:
    # One line per event; the fields also go in `extra` for structured log handlers.
    log.log(level, message, exc_info=exc_info, extra={"event": event, "path": path, **fields})


#: The states of a child that went down for good, once the supervise loop is between steps.
_DOWN = (ChildState.STOPPED, ChildState.FAILED)


def pool_of(child: ChildRecord) -> object:
    """What groups ``child`` with its siblings when they stop: its pool, else itself."""
    return child.spec.pool if child.spec.pool is not None else child


class Children:
    """The children (``records``, in start order) of one supervisor run, in
    ``nursery``; each incarnation's exit is sent on ``exits``; ``stop`` is the run's."""

    def __init__(
        self,
        records: list[ChildRecord],
        nursery: trio.Nursery,
        exits: trio.MemorySendChannel[Incarnation | ChildChange | None],
        stop: trio.Event,
    ) -> None:
        self.records = records
        self.nursery = nursery
        self.exits = exits
        self.stop = stop
        #: The children up (started, not down for good), for the death watch.
        self.alive: set[ChildRecord] = set()

    def settle(self, *, final: bool = False) -> None:
        """Tell the death watch which children went down for good since the last
        look (``final``: all of them: the supervisor's run ends). Called between
        the supervise loop's steps, when no restart is half done."""
        watch = current_watch.get()
        for child in list(self.alive):
            if final or child not in self.records or child.state in _DOWN:
                self.alive.discard(child)
                if watch is not None:
                    watch.down(child)

    async def start(self, children: list[ChildRecord], *, restarting: bool = False) -> None:
        for child in children:
            if self.stop.is_set():
                return  # shutting down: what is not running yet stays down
            await self._start_one(child, restarting=restarting)

    async def change(self, change: ChildChange) -> None:
        """Start or stop the children ``change`` asks for, in the supervise loop (so
        that it never races a restart); its ``error`` says why it failed (SpawnError)."""
        try:
            if change.stop is not None:
                await self._remove(change.stop)
            else:
                await self._add(change.start)
        except SpawnError as exc:
            change.error = exc
        finally:
            change.done.set()

    async def _add(self, children: list[ChildRecord]) -> None:
        taken = {child.spec.name for child in self.records}
        for child in children:
            if child.spec.name in taken:
                raise SpawnError(f"{child.path}: a child of that name runs already")
            taken.add(child.spec.name)
        if self.stop.is_set():
            raise SpawnError(f"cannot start {children[0].path}: its supervisor is stopping")
        self.records.extend(children)
        try:
            await self.start(children)
        except StartFailed as failed:
            # A failed start_child leaves the supervisor as it was (as in OTP): what
            # this request started is stopped again, and none of it stays.
            for child in reversed(children):
                if child.incarnation is not None:
                    await self.stop_one(child)
            for child in children:
                self.records.remove(child)
            raise SpawnError(f"{failed.child.path} failed to start: {failed.error!r}") from (
                failed.error
            )

    async def _remove(self, name: str) -> None:
        child = next((c for c in self.records if c.spec.name == name), None)
        if child is None:
            raise SpawnError(f"no child named {name!r} to stop")
        if child.incarnation is not None:
            await self.stop_one(child)
        self.records.remove(child)

    async def _start_one(self, child: ChildRecord, *, restarting: bool) -> None:
        incarnation = Incarnation(child)
        child.incarnation = incarnation
        child.state = ChildState.STARTING
        child.started_at = trio.current_time()
        if restarting:
            child.restarts += 1
        try:
            await self.nursery.start(self._run_incarnation, incarnation)
        except Exception as exc:
            child.incarnation = None
            child.state = ChildState.FAILED
            child.error = exc
            emit(
                logging.ERROR,
                "start_failed",
                child.path,
                f"{child.path} failed to start: {exc!r}",
                # Our own errors (the store refused, a bad configuration) explain
                # themselves in one line; anything else is a bug worth its traceback.
                exc_info=None if isinstance(exc, ActorsError) else exc,
            )
            raise StartFailed(child, exc) from exc
        # From now on only the supervisor cancels this child, so that even a cancelled
        # supervisor cancels its children one at a time, in reverse order. Not before:
        # a cancelled supervisor must not wait for a child that is still starting.
        incarnation.cancel_scope.shield = True
        child.state = ChildState.RUNNING
        child.error = None
        if child not in self.alive:
            self.alive.add(child)
            if (watch := current_watch.get()) is not None:
                watch.up(child)
        emit(logging.INFO, "start", child.path, f"{child.path} started", restarts=child.restarts)

    async def _run_incarnation(
        self, incarnation: Incarnation, *, task_status: trio.TaskStatus[None]
    ) -> None:
        child = incarnation.child
        _PATH.set(child.path)  # this task's context is a copy: it does not leak
        status = StartedRelay(task_status)
        try:
            with incarnation.cancel_scope:
                try:
                    await child.spec.run(incarnation.stop, task_status=status)
                except Exception as exc:
                    if not status.is_started:
                        raise  # nursery.start raises it in _start_one
                    # Caught, not propagated: a crash must reach the supervise loop as
                    # a report, never as an error that cancels the whole nursery.
                    incarnation.error = exc
            if not status.is_started:
                raise RuntimeError(f"{child.path} returned before calling task_status.started()")
        finally:
            child.error = incarnation.error
            incarnation.done.set()
        self.exits.send_nowait(incarnation)

    async def stop_all(self) -> None:
        # In reverse order; the children of one pool (next to each other) together.
        for _, pool in itertools.groupby(reversed(list(self.records)), key=pool_of):
            running = []
            for child in pool:
                if child.incarnation is not None:
                    running.append(child)
                elif child.state is not ChildState.FAILED:
                    child.state = ChildState.STOPPED
            if len(running) == 1:
                await self.stop_one(running[0])
            elif running:
                async with trio.open_nursery() as nursery:
                    for child in running:
                        nursery.start_soon(self.stop_one, child)

    async def stop_one(self, child: ChildRecord) -> None:
        incarnation = child.incarnation
        assert incarnation is not None
        child.state = ChildState.STOPPING
        incarnation.stop.set()
        with trio.move_on_after(child.spec.shutdown):
            await incarnation.done.wait()
        if not incarnation.done.is_set():
            emit(
                logging.WARNING,
                "kill",
                child.path,
                f"{child.path} did not stop within {child.spec.shutdown}s; cancelling it",
            )
            incarnation.cancel_scope.cancel()
            await incarnation.done.wait()
        child.incarnation = None
        child.state = ChildState.STOPPED
        if incarnation.error is not None:
            emit(
                logging.ERROR,
                "crash",
                child.path,
                f"{child.path} crashed while stopping: {incarnation.error!r}",
                exc_info=incarnation.error,
            )
        emit(logging.INFO, "stop", child.path, f"{child.path} stopped")

    async def cancel_all(self) -> None:
        # The last word on every exit path: whatever still runs is cancelled, one child
        # at a time in reverse order (children are shielded from the nursery's scope).
        for child in reversed(list(self.records)):
            incarnation = child.incarnation
            if incarnation is not None:
                incarnation.cancel_scope.cancel()
                await incarnation.done.wait()
                child.incarnation = None
                child.state = ChildState.STOPPED
                emit(logging.INFO, "stop", child.path, f"{child.path} cancelled")
