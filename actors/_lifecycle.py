"""A system's life: open the store, claim the node name, run the reply reader and the
supervision tree, stop them in order, close the store."""

from __future__ import annotations

import enum
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from transports import ConfigurationError, Transport, open_transport

from ._actor import Actor, Build, current_host
from ._children import current_child_path, current_watch
from ._codecs import Codec, JsonCodec
from ._faults import MailboxFaults
from ._groups import sole_error
from ._lifespan import Lifespan
from ._messenger import Messenger
from ._middleware import Middleware
from ._node import NodeName, process_instance
from ._registry import Registry
from ._runner import InstanceRunner
from ._runtime import SystemRun
from ._supervision import Supervisor
from ._watch import Watch

__all__ = ["DEFAULT_URL", "Lifecycle", "SystemState"]

logger = logging.getLogger("actors.system")

DEFAULT_URL = "redis://localhost:6379"


class SystemState(enum.Enum):
    """Where an :class:`ActorSystem` is in its life."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSED = "closed"


@attrs.frozen
class _Host:
    """Runs the actor instances of ``run``'s tree (see :class:`InstanceHost`)."""

    run: SystemRun
    registry: Registry
    #: The names of the instances running now: consumer names derive from them.
    running: set[str] = attrs.Factory(set)

    async def run_instance(
        self,
        actor: type[Actor],
        index: int,
        shutdown: float,
        stop: trio.Event,
        task_status: trio.TaskStatus[None],
        build: Build,
    ) -> None:
        name = f"{actor.name}-{index}"
        # An actor started at run time (start_child, a Pool) is addressable by name.
        self.registry.adopt(actor)
        if name in self.running:
            raise ConfigurationError(
                f"instance {name!r} of actor {actor.name!r} runs already on this node:"
                " two instances would consume under one name"
            )
        # The full tree path ("root/media/thumbnailer-0") names the instance in logs
        # and dead letters; outside a supervisor, its own name does.
        path = current_child_path() or name
        runner = InstanceRunner(self.run, actor, name, path, shutdown, build)
        self.running.add(name)
        try:
            await runner.run(stop, task_status)
        finally:
            self.running.discard(name)
            if self.run.watch is not None:
                self.run.watch.drop_owner(path)  # its monitors end with it


class Lifecycle:
    """The runs of one system: the runtime's handle on it (the CLI and the test kit
    run and stop a system through it; users go through :class:`ActorSystem`).

    ``url``, ``transport``, ``node``, ``max_payload`` and ``reply_to_allowed`` are the
    :class:`ActorSystem`'s; so is :attr:`middleware`.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        url: str,
        transport: Transport | None,
        node: str | None,
        max_payload: int,
        reply_to_allowed: tuple[str, ...],
    ) -> None:
        self.registry = registry
        self.url = url
        self.max_payload = max_payload
        self.reply_to_allowed = reply_to_allowed
        #: The codec of mailboxes that name none (the system's ``codec``).
        self.codec: Codec = JsonCodec()
        #: The system's middleware, outermost first (see ``ActorSystem.use``).
        self.middleware: list[Middleware] = []
        self.state = SystemState.NEW
        self._node = node
        #: The token of the process holding the node name: this one's when None (tests
        #: pose as another process with it).
        self.instance: str | None = None
        self._given_transport = transport
        #: The current run, while the system runs.
        self.run: SystemRun | None = None
        #: The supervision tree being run.
        self.root: Supervisor | None = None
        self._stop = trio.Event()
        self._tree_done = trio.Event()
        self._tree_started = False
        self._started_at = time.time()
        #: Messages the actors could not ack or hand back when the last run stopped.
        self.unacked_at_stop = 0
        #: The hooks that open and close what the actors share.
        self.lifespan = Lifespan()

    @property
    def node(self) -> str:
        """This process's name among those sharing the store; see :attr:`ActorSystem.node`."""
        return self._node or f"{socket.gethostname()}-{os.getpid()}"

    @node.setter
    def node(self, name: str) -> None:
        self._node = name

    @property
    def stop_requested(self) -> bool:
        """True once :meth:`stop` was called (or the run ended) since the run began."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the running system to stop gracefully."""
        self._stop.set()

    async def wait_stopped(self) -> None:
        """Wait until :meth:`stop` is called."""
        await self._stop.wait()

    @property
    def safe_url(self) -> str:
        """The store's URL without its password."""
        from transports import redact

        return redact(self.url)

    def open_transport(self) -> Transport:
        """A new transport for the system's URL; the caller closes it.

        Raises:
            ConfigurationError: an unsupported or malformed URL (named, password hidden).
        """
        try:
            return open_transport(self.url)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{self.safe_url}: {exc}") from exc

    @asynccontextmanager
    async def running(self, transport: Transport | None = None) -> AsyncIterator[None]:
        """Run the system for the body of the block (on ``transport`` if given, which
        stays the caller's to close).

        A system may run again after it stopped, as tests of one module-level
        system do.

        Raises:
            ConfigurationError: the system runs already; another live process holds
                the node name.
            TransportError: the store is unreachable at start.
            SupervisorError: the root supervisor gave up.
            LifespanError: a lifespan hook failed (see :class:`Lifespan`).
        """
        if self.state in (SystemState.RUNNING, SystemState.STOPPING):
            raise ConfigurationError("the actor system is already running")
        self._stop = trio.Event()
        self.unacked_at_stop = 0
        ran = False
        self.root = self.registry.build_root()
        # Close only what we opened: a transport handed to us belongs to the caller.
        borrowed = transport or self._given_transport
        active = borrowed or self.open_transport()
        run: SystemRun | None = None
        token = watch_token = None
        try:
            await active.ping()
            self._started_at = time.time()
            messenger = Messenger(
                active,
                self.registry,
                node=self.node,
                url=self.url,
                max_payload=self.max_payload,
                reply_to_allowed=self.reply_to_allowed,
                codec=self.codec,
                middleware=self.middleware,
            )
            run = self.run = SystemRun(active, messenger, self.node, self._stop)
            run.watch = Watch(active, self.node, messenger.tell)
            token = current_host.set(_Host(run, self.registry))
            watch_token = current_watch.set(run.watch)
            instance = self.instance or process_instance()
            name = run.name = NodeName(active, self.node, instance, self.node_info)
            if not await name.claim(self._stop):
                logger.info("stopped while waiting for the node name %r", self.node)
                yield  # the body runs on a system that never started
                return
            error: Exception | None = None
            try:
                self._tree_done = trio.Event()
                self._tree_started = False
                async with trio.open_nursery() as nursery:
                    # First: the heartbeat withdraws the name on failure.
                    await nursery.start(self._vital, "the node's heartbeat", name.keep)
                    await nursery.start(self._vital, "the reply reader", messenger.read_replies)
                    await nursery.start(self._vital, "the death watch", run.watch.run)
                    try:
                        # Resources open before the first actor starts and close
                        # after the last one stopped, while the store is still open.
                        async with self.lifespan.running(run.resources):
                            self.state = SystemState.RUNNING
                            await nursery.start(self._run_tree)
                            await name.refresh()  # the started tree, not in 5 s
                            logger.info(
                                "actor system running on %s as node %s", self.safe_url, self.node
                            )
                            for cls in self.registry.actors.values():
                                logger.info("  %s on %s", cls.name, cls.mailbox)
                            ran = True
                            try:
                                yield
                            finally:
                                self.state = SystemState.STOPPING
                                run.stopping_since = trio.current_time()
                                run.watch.stopping = True
                                self._stop.set()
                                # The tree stops gracefully on its own; the reply reader
                                # only then.
                                await self._tree_done.wait()
                    finally:
                        nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                # The body's own error (an AskTimeout, a failed assert...) or the tree's
                # SupervisorError, not a group around it, so `except` clauses work.
                error = sole_error(group, Exception)
                if error is None:
                    raise
            if error is not None:
                raise error  # outside the except: its own cause kept, no group as context
        finally:
            if token is not None:
                current_host.reset(token)
            if watch_token is not None:
                current_watch.reset(watch_token)
            self.state = SystemState.CLOSED
            self.run = None
            self.root = None
            if borrowed is None:
                with trio.CancelScope(shield=True):
                    await active.aclose()
            if run is not None:
                self.unacked_at_stop = run.unacked_at_stop
            if self.unacked_at_stop:
                n = self.unacked_at_stop
                logger.warning(
                    "actor system stopped; %d message%s could not be acked and will be redelivered",
                    n,
                    "" if n == 1 else "s",
                )
            elif ran:  # a system that never ran does not stop
                logger.info("actor system stopped")

    def node_info(self) -> dict[str, Any]:
        """What this node announces: host, pid, start time, and its actors' mailboxes
        (with ``error`` when a key of one has the wrong type: see ``_faults``)."""
        faults = self.run.faults if self.run is not None else MailboxFaults()
        watch = self.run.watch if self.run is not None else None
        return (
            (watch.announced() if watch is not None else {})
            | {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started_at": self._started_at,
                "actors": {
                    name: {"mailbox": str(cls.mailbox), "group": cls.mailbox.group_name}
                    | ({"error": error} if (error := faults.error(name)) else {})
                    for name, cls in sorted(self.registry.actors.items())
                    if cls.mailbox is not None
                },
            }
            | self._live_info()
        )

    def _live_info(self) -> dict[str, Any]:
        """What a running node adds to its heartbeat (for the dashboard): its
        supervision tree and how many messages each actor handled."""
        if self.run is None or self.root is None:
            return {}
        return {"tree": self.root.tree().as_data(), "handled": dict(self.run.handled)}

    async def _vital(
        self,
        what: str,
        task: Callable[..., Awaitable[None]],
        *,
        task_status: trio.TaskStatus[None],
    ) -> None:
        """Run one of the system's own tasks (``what``). If it fails (the store refused
        it: an outage is waited out inside), say so, let the supervision tree stop as a
        stop would (instances finish their message and write their acks), then fail
        the system with that error.
        """
        try:
            await task(task_status=task_status)
        except Exception as exc:
            logger.error("%s failed (%s); stopping the actor system", what, exc)
            self._stop.set()
            if self._tree_started:
                await self._tree_done.wait()
            raise

    async def _run_tree(self, *, task_status: trio.TaskStatus[None]) -> None:
        assert self.root is not None
        self._tree_started = True
        try:
            await self.root.run(self._stop, task_status=task_status)
        finally:
            self._tree_done.set()
