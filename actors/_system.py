"""ActorSystem: the transport, the supervision tree, tell/ask, and the run lifecycle."""

from __future__ import annotations

import enum
import itertools
import logging
import math
import os
import socket
import time
import types
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar, get_type_hints, overload

import attrs
import trio

from transports import (
    ActorsError,
    Backoff,
    ClosedError,
    ConfigurationError,
    DeadLetter,
    Delivery,
    MailboxSpec,
    Transport,
    TransportError,
    open_transport,
)

from ._actor import DEFAULT_RETRY_BACKOFF, Actor, Directive, function_actor
from ._codec import DEFAULT_MAX_PAYLOAD, Envelope, decode, encode, structure
from ._context import ActorContext, MessageInfo
from ._errors import AskTimeout, CodecError, RemoteError
from ._faults import MailboxFaults
from ._groups import sole_error
from ._mailbox import list_mailbox, one_mailbox
from ._node import NodeName, process_instance
from ._outage import RECHECK, Outage, store_answers
from ._runner import ActorRun, current_system
from ._supervision import ChildInfo, Restart, Supervisor
from ._waiter import ReplyWaiter

__all__ = ["ActorContext", "ActorSystem", "MessageInfo"]

logger = logging.getLogger("actors.system")

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "redis://localhost:6379"
#: Seconds an unread reply list lives after its last reply (its asker may be gone).
REPLY_EXPIRE = 300.0
_REPLY_PREFIX = "actors.reply."
_ERROR_TYPE = "actors-error-type"
_ERROR_MESSAGE = "actors-error"
#: Waits between tries of the reply reader during an outage: short, someone waits.
_REPLY_BACKOFF = Backoff(min=0.05, max=1.0)


class SystemState(enum.Enum):
    """Where an :class:`ActorSystem` is in its life."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSED = "closed"


class ActorSystem:
    """Actors, their supervision tree and their store, run as one unit.

    ``url`` picks the store: ``redis://host:port/db``, ``rediss://`` (TLS),
    ``unix:///path``, or ``memory://`` (in-process); by default ``$ACTORS_URL``,
    else ``redis://localhost:6379``. ``transport`` overrides it.
    ``node`` names this process among others sharing the store (default:
    ``<hostname>-<pid>``); consumer names derive from it, so it must be one live
    process's alone: a system that finds its name held does not start if the holder
    heartbeats within 7 s (it runs), and takes the name over if it does not (it was
    killed); one whose name another process took while its own heartbeats were
    failing stops.

    ``reply_to_allowed`` names the addresses a message's ``reply_to`` may send a
    handler's result (or error) to besides the reply lists of :meth:`ask`
    (``list:actors.reply.*``, always allowed): exact addresses (``"stream:results"``)
    and prefixes ending in ``*`` (``"list:results.*"``; ``"*"`` allows any address).
    Any client that can write to a mailbox can set ``reply_to``, so by default a
    reply goes to no other key; a refused reply is logged, and the message is handled
    and acked as if it had none.

    Use it as ``async with system:`` inside a trio program, or let
    ``python -m actors run file.py`` run it.

    Raises:
        ConfigurationError: an unsupported URL scheme or a malformed
            ``reply_to_allowed`` (here); when it runs, a node name held by another
            live process.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        transport: Transport | None = None,
        node: str | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        reply_to_allowed: Sequence[str] = (),
    ) -> None:
        self.url = url or os.environ.get("ACTORS_URL") or DEFAULT_URL
        self._node = node
        # The token of the process holding the node name: this one's when None (tests
        # pose as another process with it).
        self._instance: str | None = None
        self.max_payload = max_payload
        self.reply_to_allowed = _reply_patterns(reply_to_allowed)
        self.state = SystemState.NEW
        self._given_transport = transport
        self._transport: Transport | None = None
        self._actors: dict[str, type[Actor]] = {}
        self._unsupervised: list[tuple[type[Actor], int, Restart]] = []
        self._supervisors: list[Supervisor] = []
        self._root: Supervisor | None = None
        self._waiters: dict[str, ReplyWaiter] = {}
        self._reply_boxes: dict[str, MailboxSpec] = {}
        self._reply_types: dict[tuple[MailboxSpec, type], Any] = {}
        self._faults = MailboxFaults()  # actors whose mailbox has a key of the wrong type
        self._new_reply_box()
        self._name: NodeName | None = None
        self._stop = trio.Event()
        self._started_at = time.time()
        # From the start of a stop (trio time): the actors' deadline for store writes.
        self._stopping_since: float | None = None
        # Messages the actors could not ack or hand back when the system stopped.
        self._unacked_at_stop = 0

    @property
    def node(self) -> str:
        """This process's name among those sharing the store: the one given, else
        ``<hostname>-<pid>`` of the process that runs the system (a fork of a built
        system gets its own)."""
        return self._node or f"{socket.gethostname()}-{os.getpid()}"

    @node.setter
    def node(self, name: str) -> None:
        self._node = name

    def _name_lost(self) -> bool:
        """Another process took this node's name: consumers give it up as they close."""
        return self._name is not None and self._name.lost

    def _new_reply_box(self) -> None:
        """Make this run's reply box: its own, even in a fork of a built system."""
        # At-most-once: a reply is only useful to a live asker, and is never acked.
        token = uuid.uuid4().hex[:8]
        self._reply_box = list_mailbox(f"{_REPLY_PREFIX}{self.node}.{token}", at_most_once=True)
        # Correlation ids need only be unique among this system's asks (replies come
        # to its own reply box): a counter, cheaper than a uuid4 (a syscall) per ask.
        self._correlation_ids = map(f"{token}-{{:x}}".format, itertools.count())

    # -- declaring actors -------------------------------------------------------------

    @overload
    def actor(self, target: F, /) -> F: ...
    @overload
    def actor(
        self,
        target: None = None,
        /,
        *,
        channel: str | None = None,
        pattern: str | None = None,
        list: str | None = None,
        stream: str | None = None,
        mailbox: MailboxSpec | None = None,
        group: str | None = None,
        at_most_once: bool = False,
        name: str | None = None,
        instances: int = 1,
        max_deliveries: int = 3,
        batch_size: int = 100,
        restart: Restart = "permanent",
        on_error: Mapping[type[BaseException], Directive] | None = None,
        retry_backoff: Backoff | None = None,
    ) -> Callable[[F], F]: ...

    def actor(
        self,
        target: Any = None,
        /,
        *,
        channel: str | None = None,
        pattern: str | None = None,
        list: str | None = None,
        stream: str | None = None,
        mailbox: MailboxSpec | None = None,
        group: str | None = None,
        at_most_once: bool = False,
        name: str | None = None,
        instances: int = 1,
        max_deliveries: int = 3,
        batch_size: int = 100,
        restart: Restart = "permanent",
        on_error: Mapping[type[BaseException], Directive] | None = None,
        retry_backoff: Backoff | None = None,
    ) -> Any:
        """Register an actor, as a decorator on an ``async def`` or an :class:`Actor` class.

        On a function, exactly one of ``channel=``, ``pattern=``, ``list=``, ``stream=``
        or ``mailbox=`` names its mailbox. On a class, the class declares its own
        ``mailbox``. Registered actors run under the system's default
        ``one_for_one`` supervisor, ``instances`` of them. Returns the function or
        class unchanged, so it stays callable and testable.

        At most ``batch_size`` messages are fetched per round-trip (each instance
        still handles one at a time), and about as many as the instance handled
        in 50 ms in its last batch: fast work gets full batches, slow work spreads
        over instances and worker processes. ``batch_size=1`` spreads work whose
        cost varies from one message to the next best.

        ``on_error`` (what a handler's exception means, by class) and
        ``retry_backoff`` are as on :class:`Actor`; a class declares its own.

        Raises:
            ConfigurationError: no mailbox or several, a duplicate name, no handler,
                a malformed ``on_error`` or ``retry_backoff``, or either given with a
                class.
        """

        def register(obj: Any) -> Any:
            if isinstance(obj, type) and issubclass(obj, Actor):
                if on_error is not None or retry_backoff is not None:
                    raise ConfigurationError(
                        f"actor {obj.__name__}: declare on_error and retry_backoff on"
                        " the class, not in @system.actor(...)"
                    )
                cls = obj
            else:
                options: dict[str, Any] = {}
                if group is not None:
                    options["group"] = group
                if at_most_once:
                    options["at_most_once"] = True
                box = one_mailbox(
                    channel=channel,
                    pattern=pattern,
                    list=list,
                    stream=stream,
                    mailbox=mailbox,
                    **options,
                )
                cls = function_actor(
                    obj,
                    mailbox=box,
                    name=name,
                    publish_to=getattr(obj, "__actors_publish__", ()),
                    max_deliveries=max_deliveries,
                    batch_size=batch_size,
                    on_error=on_error,
                    retry_backoff=retry_backoff or DEFAULT_RETRY_BACKOFF,
                )
                obj.__actors_class__ = cls
            cls.spec(instances=instances)  # validate now, at import time
            self._register(cls)
            self._unsupervised.append((cls, instances, restart))
            return obj

        if target is not None:
            return register(target)
        return register

    def publisher(
        self,
        *,
        channel: str | None = None,
        list: str | None = None,
        stream: str | None = None,
        mailbox: MailboxSpec | None = None,
    ) -> Callable[[F], F]:
        """Publish the decorated actor function's return values to a mailbox.

        Stack it under (or over) :meth:`actor`; several publishers may be stacked.

        Raises:
            ConfigurationError: no target or several.
        """
        box = one_mailbox(channel=channel, pattern=None, list=list, stream=stream, mailbox=mailbox)

        def decorate(fn: F) -> F:
            cls = getattr(fn, "__actors_class__", None)
            if cls is not None:  # @publisher above @actor: the class exists already
                cls.publish_to = (*cls.publish_to, box)
            else:
                fn.__actors_publish__ = (box, *getattr(fn, "__actors_publish__", ()))  # type: ignore[attr-defined]
            return fn

        return decorate

    def supervise(self, supervisor: Supervisor) -> Supervisor:
        """Run ``supervisor`` (and its tree) as part of this system; returns it.

        Actor classes found in its tree become addressable by name.

        Raises:
            ConfigurationError: once the system is running.
        """
        if self.state is not SystemState.NEW:
            raise ConfigurationError("supervise() must be called before the system starts")
        self._supervisors.append(supervisor)
        for cls in _actors_in(supervisor):
            self._register(cls)
        return supervisor

    def _register(self, cls: type[Actor]) -> None:
        existing = self._actors.get(cls.name)
        if existing is not None and existing is not cls:
            raise ConfigurationError(f"two actors are named {cls.name!r}")
        self._actors[cls.name] = cls

    @property
    def actors(self) -> Mapping[str, type[Actor]]:
        """The registered actor classes, by name."""
        return dict(self._actors)

    # -- running ----------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The store this system talks to.

        Raises:
            ClosedError: the system is not running.
        """
        if self._transport is None:
            raise ClosedError("the actor system is not running")
        return self._transport

    @property
    def redis(self) -> Any:
        """The Redis client of a Redis-backed system, for your own commands.

        Raises:
            ConfigurationError: the system does not run on Redis.
        """
        client = getattr(self.transport, "client", None)
        if client is None:
            raise ConfigurationError(f"the system runs on {self.url}, not on Redis")
        return client

    def tree(self) -> ChildInfo:
        """A live snapshot of the supervision tree: each child, its state and restarts.

        Raises:
            ClosedError: the system is not running.
        """
        if self._root is None:
            raise ClosedError("the actor system is not running")
        return self._root.tree()

    def _build_root(self) -> Supervisor:
        if len(self._supervisors) == 1 and not self._unsupervised:
            return self._supervisors[0]
        children: list[Any] = [cls.spec(instances=n, restart=r) for cls, n, r in self._unsupervised]
        children.extend(s.spec() for s in self._supervisors)
        return Supervisor(children, name="system", strategy="one_for_one")

    def _open_transport(self) -> Transport:
        try:
            return open_transport(self.url)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{self._safe_url}: {exc}") from exc

    def stop(self) -> None:
        """Ask the system to stop gracefully: stop fetching, finish in-flight messages."""
        self._stop.set()

    async def __aenter__(self) -> ActorSystem:
        self._stack = AsyncExitStack()
        try:
            await self._stack.enter_async_context(self._running())
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool | None:
        self.stop()
        return await self._stack.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _running(self, transport: Transport | None = None) -> AsyncIterator[None]:
        """Run the system for the body of the block (on ``transport`` if given).

        A system may run again after it stopped, as tests of one module-level
        system do.
        """
        if self.state in (SystemState.RUNNING, SystemState.STOPPING):
            raise ConfigurationError("the actor system is already running")
        self._stop = trio.Event()
        self._stopping_since = None
        self._unacked_at_stop = 0
        ran = False
        self._root = self._build_root()
        # Close only what we opened: a transport handed to us belongs to the caller.
        borrowed = transport or self._given_transport
        active = borrowed or self._open_transport()
        self._transport = active
        token = current_system.set(self)
        try:
            await active.ping()
            self._started_at = time.time()
            self._new_reply_box()
            instance = self._instance or process_instance()
            name = self._name = NodeName(active, self.node, instance, self.node_info)
            if not await name.claim(self._stop):
                logger.info("stopped while waiting for the node name %r", self.node)
                yield  # the body runs on a system that never started
                return
            error: Exception | None = None
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(name.keep)  # first: it withdraws the name on failure
                    await nursery.start(self._read_replies)
                    self.state = SystemState.RUNNING
                    await nursery.start(self._run_tree)
                    logger.info("actor system running on %s as node %s", self._safe_url, self.node)
                    for cls in self._actors.values():
                        logger.info("  %s on %s", cls.name, cls.mailbox)
                    ran = True
                    try:
                        yield
                    finally:
                        self.state = SystemState.STOPPING
                        self._stopping_since = trio.current_time()
                        self._stop.set()
                        # The tree stops gracefully on its own; the reply reader only then.
                        await self._tree_done.wait()
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
            current_system.reset(token)
            self.state = SystemState.CLOSED
            self._transport = None
            self._root = None
            if borrowed is None:
                with trio.CancelScope(shield=True):
                    await active.aclose()
            if self._unacked_at_stop:
                n = self._unacked_at_stop
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
        faults = self._faults
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self._started_at,
            "actors": {
                name: {"mailbox": str(cls.mailbox), "group": cls.mailbox.group_name}
                | ({"error": error} if (error := faults.error(name)) else {})
                for name, cls in sorted(self._actors.items())
                if cls.mailbox is not None
            },
        }

    async def _run_tree(self, *, task_status: trio.TaskStatus[None]) -> None:
        assert self._root is not None
        self._tree_done = trio.Event()
        try:
            await self._root.run(self._stop, task_status=task_status)
        finally:
            self._tree_done.set()

    async def run(self) -> None:
        """Run until :meth:`stop` is called (or the root supervisor fails).

        Raises:
            SupervisorError: the root supervisor exceeded its restart intensity.
            TransportError: the store is unreachable at start.
            ConfigurationError: another live process holds this node's name (at start,
                or taken while this one's heartbeat lapsed).
        """
        try:
            async with self:
                await self._stop.wait()
        except BaseExceptionGroup as group:
            # Nurseries wrap errors in groups; a lone error of ours is clearer unwrapped.
            failure = sole_error(group, ActorsError)
            if failure is None:
                raise
            raise failure from None

    @property
    def _safe_url(self) -> str:
        from transports._urls import redact

        return redact(self.url)

    # -- messaging ----------------------------------------------------------------------

    def resolve(self, target: Any) -> MailboxSpec:
        """The mailbox for ``target``: a :class:`MailboxSpec`, an :class:`Actor` class,
        an address (``"list:jobs"``), or the name of a registered actor or its mailbox.

        Raises:
            ConfigurationError: the target is unknown.
        """
        if isinstance(target, MailboxSpec):
            return target
        if isinstance(target, type) and issubclass(target, Actor) and target.mailbox is not None:
            return target.mailbox
        fn_cls = getattr(target, "__actors_class__", None)
        if fn_cls is not None and fn_cls.mailbox is not None:
            return fn_cls.mailbox  # type: ignore[no-any-return]
        if isinstance(target, str):
            cls = self._actors.get(target)
            if cls is not None and cls.mailbox is not None:
                return cls.mailbox
            for cls in self._actors.values():
                if cls.mailbox is not None and cls.mailbox.name == target:
                    return cls.mailbox
            if target.partition(":")[0] in ("list", "stream", "pubsub"):
                return MailboxSpec.parse(target)
        raise ConfigurationError(
            f"unknown target {target!r}: name a registered actor or mailbox, or pass a "
            "mailbox (list_mailbox('jobs')) or an address ('list:jobs')"
        )

    async def tell(
        self, target: Any, msg: Any, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send ``msg`` to ``target`` and return once the store has it (fire-and-forget).

        Raises:
            ConfigurationError: unknown target. CodecError: ``msg`` cannot be encoded.
            TransportError: the store failed. ClosedError: the system is not running.
        """
        await self.transport.send(self.resolve(target), [encode(msg, headers=headers)])

    async def tell_many(self, target: Any, msgs: Sequence[Any]) -> None:
        """Send several messages to one target in one round-trip, in order.

        Raises:
            The same as :meth:`tell`.
        """
        await self.transport.send(self.resolve(target), [encode(m) for m in msgs])

    publish = tell

    async def ask(
        self,
        target: Any,
        msg: Any,
        *,
        timeout: float = 5.0,
        reply_type: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send ``msg`` to ``target`` and wait for the handler's return value.

        The reply is structured as ``reply_type`` if given, else as the return
        annotation of the target actor's handler for ``type(msg)`` when known,
        else returned as plain JSON data.

        ``timeout`` bounds the whole call, sending included: a store that hangs
        makes it raise :class:`AskTimeout` too (the message may then have been sent).

        Raises:
            AskTimeout: no reply within ``timeout`` seconds (a later reply is discarded).
            RemoteError: the handler raised (after its last attempt) or rejected it.
            CodecError: the reply does not fit the expected type.
            ConfigurationError, TransportError, ClosedError: as for :meth:`tell`.
        """
        spec = self.resolve(target)
        expected = reply_type if reply_type is not None else self._reply_type_for(spec, msg)
        correlation_id = next(self._correlation_ids)
        waiter = self._waiters[correlation_id] = ReplyWaiter()
        reply: Envelope | None = None
        try:
            payload = encode(
                msg,
                correlation_id=correlation_id,
                reply_to=str(self._reply_box),
                headers=headers,
            )
            with trio.move_on_after(timeout):
                await self.transport.send(spec, [payload])
                reply = await waiter.wait()
        finally:
            del self._waiters[correlation_id]
        if reply is None:
            raise AskTimeout(f"no reply from {spec} within {timeout}s")
        if _ERROR_TYPE in reply.headers:
            error_type = reply.headers[_ERROR_TYPE]
            raise RemoteError(
                f"{spec} failed: {error_type}: {reply.headers.get(_ERROR_MESSAGE, '')}",
                error_type=error_type,
            )
        if expected is None:
            return reply.body
        return structure(reply, expected)

    def _reply_type_for(self, spec: MailboxSpec, msg: Any) -> Any:
        key = (spec, type(msg))
        if key not in self._reply_types:
            self._reply_types[key] = self._find_reply_type(spec, type(msg))
        return self._reply_types[key]

    def _find_reply_type(self, spec: MailboxSpec, msg_type: type) -> Any:
        """The return annotation of the handler of ``spec``'s actor for ``msg_type``."""
        for cls in self._actors.values():
            if cls.mailbox != spec:
                continue
            for tp, method in cls.handlers().entries:
                if tp is msg_type:
                    hint = get_type_hints(getattr(cls, method)).get("return")
                    return None if hint in (None, type(None), Any) else hint
        return None

    async def _read_replies(self, *, task_status: trio.TaskStatus[None]) -> None:
        async with self.transport.consumer(self._reply_box, self._reply_box.name) as consumer:
            task_status.started()
            outage = Outage(logger, "reply mailbox", _REPLY_BACKOFF)
            while True:
                # During an outage a fetch is bounded, to see (and say) its end when
                # it comes, not at the next reply.
                with trio.move_on_after(RECHECK if outage.ongoing else math.inf):
                    try:
                        batch = await consumer.fetch(100)
                    except TransportError as exc:
                        await outage.wait(exc)
                        continue
                    outage.over()
                if outage.ongoing:
                    if await store_answers(self.transport):
                        outage.over()
                    continue
                woken = False
                for delivery in batch:
                    woken |= self._route_reply(delivery)
                if woken:
                    # Let the askers just woken run before this task re-arms its
                    # blocking read: they are who waits. Two passes, because trio
                    # may run a batch of tasks in either order.
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    await trio.lowlevel.cancel_shielded_checkpoint()

    def _route_reply(self, delivery: Delivery) -> bool:
        """Hand a reply to its waiting asker; True when delivered (the asker runs next)."""
        try:
            reply = decode(delivery.payload, max_size=self.max_payload)
        except CodecError as exc:
            logger.warning("discarding an undecodable reply: %s", exc)
            return False
        waiter = self._waiters.get(reply.correlation_id or "")
        if waiter is None:
            logger.debug("discarding a late reply %s", reply.correlation_id)
            return False
        if not waiter.deliver(reply):
            logger.debug("discarding a duplicate reply %s", reply.correlation_id)
            return False
        return True

    def _outgoing(
        self, cls: type[Actor], request: Envelope, result: Any, path: str, message_id: str
    ) -> list[tuple[MailboxSpec, bytes]]:
        """The messages a handler's result makes: a reply to the asker (if its
        ``reply_to`` is allowed), and one per publisher of the actor (for a non-None
        result). ``path`` and ``message_id`` name the handler and the request in logs.

        Raises:
            CodecError: the result cannot be encoded.
        """
        out: list[tuple[MailboxSpec, bytes]] = []
        if request.reply_to:
            # Encoded first: a result that cannot be encoded is refused before its
            # address, so a refused address is logged once (by _reply_error then).
            reply = encode(result, correlation_id=request.correlation_id)
            box = self._reply_address(request.reply_to, path, message_id)
            if box is not None:
                out.append((box, reply))
        if result is not None and cls.publish_to:
            payload = encode(result)
            out.extend((box, payload) for box in cls.publish_to)
        return out

    def _reply_address(self, address: str, path: str, message_id: str) -> MailboxSpec | None:
        """The mailbox ``address`` names, if replies may go there: a reply list of
        :meth:`ask`, or an address ``reply_to_allowed`` names. Else None, logged once
        with the handler's ``path`` and the request's ``message_id``."""
        box = self._reply_boxes.get(address)
        if box is None:
            try:
                box = MailboxSpec.parse(address)
            except ConfigurationError as exc:
                logger.warning(
                    "%s: ignoring the bad reply_to %r of message %s: %s",
                    path,
                    address,
                    message_id,
                    exc,
                )
                return None
            if not self._may_reply_to(box):
                # Any client that can write to a mailbox can write a reply_to: obeyed,
                # it would make the actor write into any key (another actor's mailbox).
                logger.warning(
                    "%s: reply to message %s not sent: refused reply_to %r (not a reply "
                    "list of ask; see ActorSystem(reply_to_allowed=...))",
                    path,
                    message_id,
                    address,
                )
                return None
            if box.kind == "list" and box.name.startswith(_REPLY_PREFIX):
                # An asker's reply list: if the asker is gone, nobody will ever read
                # it; the store deletes it REPLY_EXPIRE seconds after the last reply.
                box = attrs.evolve(box, at_most_once=True, expire=REPLY_EXPIRE)
            if len(self._reply_boxes) > 1024:  # askers come and go: keep it bounded
                self._reply_boxes.clear()
            self._reply_boxes[address] = box
        return box

    def _may_reply_to(self, box: MailboxSpec) -> bool:
        """True when replies may go to ``box``: see ``reply_to_allowed``."""
        if box.kind == "list" and box.name.startswith(_REPLY_PREFIX):
            return True
        address = str(box)
        return any(
            address.startswith(entry[:-1]) if entry.endswith("*") else address == entry
            for entry in self.reply_to_allowed
        )

    async def _reply_error(
        self, request: Envelope, error_type: str, message: str, path: str, message_id: str
    ) -> None:
        """Tell the asker of ``request`` (if any, and allowed) that it failed; a store
        that fails or refuses is logged, not raised."""
        if not request.reply_to:
            return
        box = self._reply_address(request.reply_to, path, message_id)
        if box is None:
            return
        try:
            payload = encode(
                None,
                correlation_id=request.correlation_id,
                headers={_ERROR_TYPE: error_type, _ERROR_MESSAGE: message[:2000]},
            )
            await self.transport.send(box, [payload])
        except (ConfigurationError, TransportError) as exc:
            logger.warning("could not send the error reply to %s: %s", request.reply_to, exc)

    # -- dead letters -------------------------------------------------------------------

    async def dead_letters(self, target: Any, count: int = 100) -> Sequence[DeadLetter]:
        """The dead letters of ``target``'s mailbox, oldest first.

        Raises:
            ConfigurationError, TransportError, ClosedError: as for :meth:`tell`.
        """
        return await self.transport.dead_letters(self.resolve(target), count)

    async def replay_dead_letters(self, target: Any, ids: Sequence[str] | None = None) -> int:
        """Send dead letters (all, or ``ids``) back into their mailbox; returns how many.

        A letter leaves the dead letters only once its message is stored again: a
        pub/sub letter stays unless a subscriber received it.

        Raises:
            ReplayError: some were not replayed (``.kept``: no subscriber received
                them; ``.not_found``: ids not in the dead letters); the others were.
            ConfigurationError, TransportError, ClosedError: as for :meth:`tell`
                (ConfigurationError too for an id that is not a dead letter id).
        """
        return await self.transport.replay_dead_letters(self.resolve(target), ids)


def _reply_patterns(allowed: Sequence[str]) -> tuple[str, ...]:
    """``reply_to_allowed``, checked: addresses, and prefixes ending in ``*``.

    Raises:
        ConfigurationError: a string rather than a sequence of them, or an entry that
            is neither an address nor a prefix of one.
    """
    if isinstance(allowed, str):
        raise ConfigurationError(
            f"reply_to_allowed must be a sequence of addresses, not the string {allowed!r}"
        )
    for entry in allowed:
        if entry == "*":
            continue
        try:
            if not isinstance(entry, str):
                raise ConfigurationError(f"{entry!r} is not a string")
            # A prefix is checked as an address it would allow.
            MailboxSpec.parse(f"{entry[:-1]}x" if entry.endswith("*") else entry)
        except ConfigurationError as exc:
            raise ConfigurationError(f"reply_to_allowed: {entry!r}: {exc}") from None
    return tuple(allowed)


def _actors_in(supervisor: Supervisor) -> list[type[Actor]]:
    """The actor classes anywhere in ``supervisor``'s tree."""
    found: list[type[Actor]] = []
    for spec in supervisor.children:
        if isinstance(spec.run, ActorRun):
            found.append(spec.run.actor)
        owner = getattr(spec.run, "__self__", None)
        if isinstance(owner, Supervisor):
            found.extend(_actors_in(owner))
    return found
