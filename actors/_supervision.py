"""Supervision trees with Erlang/OTP semantics, in plain trio.

A :class:`Supervisor` runs its children (anything that follows :class:`ChildRun`,
including other supervisors) in one nursery, starts them in order, stops them in
reverse order, and restarts them by strategy when they exit, until they crash too
often: then it stops them all and fails, and its parent decides. It knows nothing of
actors, mailboxes or Redis; the runtime plugs actors in as children.

How it is built: every child incarnation runs inside a wrapper task that catches the
child's exception and reports the exit on a memory channel, so a crash never tears
down the nursery; one loop in ``Supervisor.run`` receives those reports and decides.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import NoReturn

import trio

from transports import Backoff, ConfigurationError

from ._children import Children, StartFailed, current_child_path, emit
from ._errors import SpawnError, SupervisorError
from ._tree import (
    STRATEGIES,
    ChildChange,
    ChildInfo,
    ChildRecord,
    ChildSpec,
    ChildState,
    Incarnation,
    Restart,
    RestartIntensity,
    Strategy,
    check_name,
    check_restart,
    check_timeout,
    directive_of,
)

__all__ = ["DEFAULT_RESTART_BACKOFF", "Supervisor"]


DEFAULT_RESTART_BACKOFF = Backoff(min=0.1, max=5.0)
"""The restart backoff of a Supervisor unless told otherwise: 0.1 s doubling to 5 s."""


def _flatten(items: object, into: list[ChildSpec]) -> None:
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise ConfigurationError(
            f"children must be an iterable of ChildSpec, Supervisor or lists of them, not {items!r}"
        )
    for item in items:
        if isinstance(item, ChildSpec):
            into.append(item)
        elif isinstance(item, Supervisor):
            into.append(item.spec())
        else:
            _flatten(item, into)


class Supervisor:
    """Runs children, restarts them by strategy, and gives up past its restart intensity.

    ``children`` are :class:`ChildSpec`, supervisors, or lists of them (flattened), in
    start order. ``strategy`` says which children are restarted when one must be:
    ``one_for_one`` that one, ``one_for_all`` all of them (the others are stopped in
    reverse order first), ``rest_for_one`` that one and those declared after it. A
    child's ``restart`` type says whether its exit calls for a restart at all.

    More than ``max_restarts`` restarts within ``within`` seconds (see
    :class:`RestartIntensity`) make the supervisor stop all its children and raise
    :class:`SupervisorError` from ``run``. Each restart first waits
    ``backoff.delay(n)``, ``n`` counting the child's restarts since it last ran
    ``backoff.reset_after`` seconds; ``backoff=None`` restarts at once. Since the
    intensity counts restarts when they are decided, long backoff delays spread them
    out and can keep a flapping child below the intensity.

    A child can say more about its crash (an actor does, by its ``on_error``
    directives; see ``_tree.direct``): a crash caused by the message in hand restarts
    at once, without backoff; ``stop`` leaves the child stopped whatever its restart
    type (counted against the intensity); ``escalate`` makes the supervisor fail at
    once, as past its intensity.

    ``name``, ``restart`` and ``shutdown`` describe this supervisor when it is the
    child of another (see :meth:`spec`).

    Raises:
        ConfigurationError: on an unknown strategy or restart type, a negative or
            non-integer ``max_restarts``, a ``within`` that is not > 0, a negative
            ``shutdown``, a bad name, a ``backoff`` that is not a Backoff, children
            that are not specs or supervisors, or two children with the same name.
    """

    def __init__(
        self,
        children: Iterable[ChildSpec | Supervisor | Iterable[ChildSpec | Supervisor]] = (),
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        within: float = 5.0,
        backoff: Backoff | None = DEFAULT_RESTART_BACKOFF,
        name: str = "root",
        restart: Restart = "permanent",
        shutdown: float = math.inf,
    ) -> None:
        check_name(name, what="supervisor name")
        if strategy not in STRATEGIES:
            raise ConfigurationError(
                f"supervisor {name!r}: strategy must be one of {', '.join(STRATEGIES)};"
                f" not {strategy!r}"
            )
        check_restart(restart)
        check_timeout(shutdown, what="shutdown")
        RestartIntensity(max_restarts, within)  # validates both
        if backoff is not None and not isinstance(backoff, Backoff):
            raise ConfigurationError(f"backoff must be a Backoff or None, not {backoff!r}")
        specs: list[ChildSpec] = []
        _flatten(children, specs)
        seen: set[str] = set()
        for spec in specs:
            if spec.name in seen:
                raise ConfigurationError(
                    f"supervisor {name!r} has two children named {spec.name!r};"
                    " names must be unique among siblings"
                )
            seen.add(spec.name)

        self.name = name
        self.strategy: Strategy = strategy
        self.max_restarts = max_restarts
        self.within = within
        self.backoff = backoff
        self.restart: Restart = restart
        self.shutdown = shutdown
        self._specs = tuple(specs)
        self._path = name
        self._state = ChildState.STOPPED
        self._running = False
        self._children = [ChildRecord(spec, f"{name}/{spec.name}") for spec in specs]
        # Set for the duration of each run.
        self._stop = trio.Event()
        self._intensity = RestartIntensity(max_restarts, within)
        self._running_children: Children | None = None
        self._exits: trio.MemorySendChannel[Incarnation | ChildChange | None] | None = None
        # start_child / stop_child requests not dealt with yet.
        self._changes: set[ChildChange] = set()

    @property
    def _kids(self) -> Children:
        """The children of the current run."""
        assert self._running_children is not None, "the supervisor is not running"
        return self._running_children

    def __repr__(self) -> str:
        return f"<Supervisor {self._path!r} {self.strategy} {self._state.value}>"

    @property
    def children(self) -> tuple[ChildSpec, ...]:
        """The child specs, flattened, in start order."""
        return self._specs

    def spec(self) -> ChildSpec:
        """A ChildSpec that runs this supervisor as the child of another one."""
        return ChildSpec(name=self.name, run=self.run, restart=self.restart, shutdown=self.shutdown)

    def tree(self) -> ChildInfo:
        """A snapshot of this supervisor and, recursively, its children and their states.

        Temporary children that exited are no longer part of the tree. The root's
        ``restarts`` is 0: a nested supervisor's restarts are counted by its parent.
        """
        return ChildInfo(
            name=self.name,
            path=self._path,
            kind="supervisor",
            state=self._state,
            restarts=0,
            children=self._child_infos(self._path),
        )

    def _child_infos(self, prefix: str) -> tuple[ChildInfo, ...]:
        infos = []
        for child in list(self._children):
            path = f"{prefix}/{child.spec.name}"
            sub = _supervisor_of(child.spec)
            infos.append(
                ChildInfo(
                    name=child.spec.name,
                    path=path,
                    kind="worker" if sub is None else "supervisor",
                    state=child.state,
                    restarts=child.restarts,
                    children=() if sub is None else sub._child_infos(path),
                )
            )
        return tuple(infos)

    async def run(
        self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start the children in order, supervise them until ``stop`` is set, stop them.

        Calls ``task_status.started()`` once every child has started. When ``stop`` is
        set, stops the children in reverse order (each gets its stop event set, then
        ``shutdown`` seconds, then is cancelled) and returns. Each call starts from
        fresh child state, which is how a parent restarts a supervisor. If the task is
        cancelled, the children are cancelled one by one in reverse order and
        ``trio.Cancelled`` propagates.

        Raises:
            SupervisorError: a child failed to start (the children already started are
                stopped first, in reverse order), or the restart intensity was exceeded
                (all children are stopped first). Its ``__cause__`` is the child's
                exception, if it raised one.
            ConfigurationError: this supervisor is already running (a Supervisor can
                appear once in a tree).
        """
        if self._running:
            raise ConfigurationError(
                f"supervisor {self._path!r} is already running; a Supervisor object can"
                " run only once at a time, so it can appear only once in a tree"
            )
        self._running = True
        self._path = current_child_path() or self.name
        self._children = [ChildRecord(spec, f"{self._path}/{spec.name}") for spec in self._specs]
        self._intensity = RestartIntensity(self.max_restarts, self.within)
        self._stop = stop
        self._state = ChildState.STARTING
        failure: SupervisorError | None = None
        send, receive = trio.open_memory_channel[Incarnation | ChildChange | None](math.inf)
        try:
            with send, receive:
                self._exits = send
                async with trio.open_nursery() as nursery:
                    self._running_children = Children(self._children, nursery, send, stop)
                    nursery.start_soon(self._relay_stop)
                    try:
                        await self._supervise(receive, task_status)
                    except SupervisorError as exc:
                        failure = exc
                    finally:
                        with trio.CancelScope(shield=True):
                            await self._kids.cancel_all()
                        self._kids.settle(final=True)
                        nursery.cancel_scope.cancel()  # ends _relay_stop
        finally:
            self._running = False
            self._running_children = None
            self._exits = None
            for change in self._changes:
                if not change.done.is_set():
                    change.error = SpawnError(f"supervisor {self._path!r} stopped")
                    change.done.set()
            self._changes.clear()
            self._state = ChildState.STOPPED if failure is None else ChildState.FAILED
        if failure is not None:
            # Raised here, outside the nursery, so the parent sees a SupervisorError
            # and not an ExceptionGroup around one.
            raise failure from failure.__cause__

    async def start_child(
        self, child: ChildSpec | Supervisor | Iterable[ChildSpec | Supervisor]
    ) -> None:
        """Start ``child`` (a spec, a supervisor, or a list of them, such as
        ``Ledger.spec(instances=2)``) under this running supervisor, after its other
        children; returns once it started. It is then a child like the others (restart
        type, strategy, restart intensity), but a restart of this supervisor itself
        starts only its declared children again.

        Raises:
            SpawnError: this supervisor is not running (or stops meanwhile), a name is
                taken among its children, or the child failed to start (the cause
                chained; what the call started is stopped again).
            ConfigurationError: ``child`` is not a spec or a supervisor.
        """
        specs: list[ChildSpec] = []
        _flatten([child], specs)
        await self._request(
            ChildChange(start=[ChildRecord(spec, f"{self._path}/{spec.name}") for spec in specs])
        )

    async def stop_child(self, name: str) -> None:
        """Stop the child ``name`` (gracefully, within its ``shutdown``) and remove it
        from this running supervisor, declared or started at run time.

        Raises:
            SpawnError: this supervisor is not running, or has no child ``name``.
        """
        await self._request(ChildChange(stop=name))

    async def _request(self, change: ChildChange) -> None:
        # Dealt with by the supervise loop, between exits: never during a restart.
        if self._exits is None or self._stop.is_set():
            raise SpawnError(f"supervisor {self._path!r} is not running")
        self._changes.add(change)
        self._exits.send_nowait(change)
        await change.done.wait()  # cancelled, the change still happens
        self._changes.discard(change)
        if change.error is not None:
            raise change.error

    def find(self, name: str) -> Supervisor | None:
        """This running supervisor or the one named (or at the path) ``name`` below it."""
        if name in (self.name, self._path):
            return self
        for child in list(self._children):
            sub = _supervisor_of(child.spec)
            found = sub.find(name) if sub is not None and sub._running else None
            if found is not None:
                return found
        return None

    async def _relay_stop(self) -> None:
        # Wakes the supervise loop, which otherwise only waits for children's exits.
        await self._stop.wait()
        assert self._exits is not None
        self._exits.send_nowait(None)

    async def _supervise(
        self,
        exits: trio.MemoryReceiveChannel[Incarnation | ChildChange | None],
        task_status: trio.TaskStatus[None],
    ) -> None:
        try:
            await self._kids.start(list(self._children))
        except StartFailed as failed:
            await self._roll_back(failed)
        self._state = ChildState.RUNNING
        task_status.started()
        while not self._stop.is_set():
            event = await exits.receive()
            if isinstance(event, Incarnation):
                await self._on_exit(event)
            elif event is not None:
                await self._kids.change(event)
            self._kids.settle()
        self._state = ChildState.STOPPING
        await self._kids.stop_all()

    async def _on_exit(self, incarnation: Incarnation) -> None:
        child = incarnation.child
        if incarnation is not child.incarnation:
            return  # an incarnation we stopped ourselves: already dealt with
        child.incarnation = None
        error = incarnation.error
        if error is None:
            emit(logging.INFO, "exit", child.path, f"{child.path} exited normally")
        else:
            emit(
                logging.ERROR,
                "crash",
                child.path,
                f"{child.path} crashed: {error!r}",
                exc_info=error,
            )
        directive = directive_of(error)
        if directive == "escalate":
            # The child says its failure is beyond this supervisor: fail at once, as
            # past the intensity, whatever the child's restart type.
            await self._give_up(child, error, escalated=True)
        restart = child.spec.restart
        if restart == "temporary":
            # Never restarted, and (as in OTP) its exit is not a restart, so it does
            # not count against the intensity either. It leaves the live tree.
            self._children.remove(child)
        elif directive == "stop":
            # The child asked not to be restarted, whatever its restart type. It is an
            # abnormal exit all the same, so it counts against the intensity.
            child.state = ChildState.STOPPED
            emit(logging.WARNING, "stop_for_good", child.path, f"{child.path} stopped for good")
            if not self._intensity.record(trio.current_time()):
                await self._give_up(child, error)
        elif restart == "transient" and error is None:
            child.state = ChildState.STOPPED
        else:
            await self._restart(child, error)

    async def _restart(self, failed: ChildRecord, cause: Exception | None) -> None:
        while True:
            now = trio.current_time()
            if not self._intensity.record(now):
                await self._give_up(failed, cause)
            group = self._restart_group(failed)
            failed.state = ChildState.RESTARTING
            for sibling in reversed(group):
                if sibling.incarnation is not None:
                    await self._kids.stop_one(sibling)
            # OTP: a temporary child stopped because of a sibling is not restarted.
            for sibling in group:
                if sibling.spec.restart == "temporary":
                    self._children.remove(sibling)
            group = [child for child in group if child.spec.restart != "temporary"]
            for child in group:
                child.state = ChildState.RESTARTING
            # A crash the message in hand caused says nothing of the child's health: it
            # restarts at once and leaves the backoff, kept for crashes not tied to one
            # message (start failures, crashes while idle), where it was.
            delay = 0.0 if directive_of(cause) == "restart" else self._next_delay(failed, now)
            paths = [child.path for child in group]
            emit(
                logging.WARNING,
                "restart",
                failed.path,
                f"restarting {failed.path} ({self.strategy}, restart {failed.restarts + 1})"
                f" in {delay:.3f}s"
                + (
                    f", with {', '.join(p for p in paths if p != failed.path)}"
                    if len(paths) > 1
                    else ""
                ),
                attempt=failed.consecutive,
                delay=delay,
                children=paths,
            )
            if delay > 0:
                with trio.move_on_after(delay):
                    await self._stop.wait()
            try:
                await self._kids.start(group, restarting=True)
            except StartFailed as start_failure:
                # A restart that fails to start is one more crash of that child.
                failed, cause = start_failure.child, start_failure.error
            else:
                return

    def _restart_group(self, failed: ChildRecord) -> list[ChildRecord]:
        if self.strategy == "one_for_one":
            return [failed]
        if self.strategy == "one_for_all":
            return list(self._children)
        return self._children[self._children.index(failed) :]

    def _next_delay(self, child: ChildRecord, now: float) -> float:
        if self.backoff is None:
            return 0.0
        if now - child.started_at >= self.backoff.reset_after:
            child.consecutive = 0  # it ran quietly long enough: forget its past crashes
        delay = self.backoff.delay(child.consecutive)
        child.consecutive += 1
        return delay

    async def _give_up(
        self, child: ChildRecord, cause: Exception | None, *, escalated: bool = False
    ) -> NoReturn:
        if escalated:
            restarts = self._intensity.count()
            message = f"supervisor {self._path!r} gave up: child {child.path!r} escalated {cause!r}"
        else:
            restarts = self._intensity.count() - 1
            why = "exited normally" if cause is None else f"crashed with {cause!r}"
            message = (
                f"supervisor {self._path!r} gave up: child {child.path!r} {why} after"
                f" {restarts} restarts within {self.within}s (max_restarts={self.max_restarts})"
            )
        emit(
            logging.ERROR,
            "escalate",
            self._path,
            message,
            exc_info=cause,
            child=child.path,
            restarts=restarts,
        )
        self._state = ChildState.STOPPING
        await self._kids.stop_all()
        child.state = ChildState.FAILED
        raise SupervisorError(message, child=child.path, restarts=restarts) from cause

    async def _roll_back(self, failed: StartFailed) -> NoReturn:
        started = [child for child in self._children if child.incarnation is not None]
        emit(
            logging.ERROR,
            "rollback",
            self._path,
            f"supervisor {self._path}: {failed.child.path} failed to start; stopping the"
            f" {len(started)} children already started",
            child=failed.child.path,
        )
        self._state = ChildState.STOPPING
        await self._kids.stop_all()
        failed.child.state = ChildState.FAILED
        raise SupervisorError(
            f"supervisor {self._path!r} could not start child {failed.child.path!r}:"
            f" {failed.error!r}; the {len(started)} children started before it were stopped",
            child=failed.child.path,
            restarts=0,
        ) from failed.error


def _supervisor_of(spec: ChildSpec) -> Supervisor | None:
    """The Supervisor whose ``run`` this spec runs, if it is one."""
    owner = getattr(spec.run, "__self__", None)
    if isinstance(owner, Supervisor) and spec.run == owner.run:
        return owner
    return None
