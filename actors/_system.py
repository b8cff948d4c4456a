"""ActorSystem: the facade over a system's registry, lifecycle and messenger."""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload

from transports import (
    ActorsError,
    Backoff,
    ClosedError,
    ConfigurationError,
    DeadLetter,
    MailboxSpec,
    Transport,
)

from ._actor import Actor, Directive
from ._codec import DEFAULT_MAX_PAYLOAD
from ._codec_choice import codec_named
from ._codecs import Codec, JsonCodec
from ._context import ActorContext, MessageInfo
from ._errors import SpawnError
from ._groups import sole_error
from ._lifecycle import DEFAULT_URL, Lifecycle, SystemState
from ._messenger import Messenger, reply_patterns
from ._middleware import Middleware
from ._registry import Registry
from ._supervision import Supervisor
from ._system_lifespan import LifespanHooks
from ._tree import ChildInfo, Restart

__all__ = ["ActorContext", "ActorSystem", "MessageInfo"]

F = TypeVar("F", bound=Callable[..., Any])


class ActorSystem(LifespanHooks):
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

    ``codec`` encodes the messages of mailboxes that do not name their own
    (``"json"``, the default; ``"msgpack"``; ``"faststream"``; or a :class:`Codec`).

    ``middleware`` wraps every handler call and every ``tell``/``ask`` (see
    :class:`Middleware` and :meth:`use`), outside each actor's own.

    Use it as ``async with system:`` inside a trio program, or let
    ``python -m actors run file.py`` run it.

    Raises:
        ConfigurationError: an unsupported URL scheme, a malformed ``reply_to_allowed``
            or an unknown codec (here); when it runs, a node name held by another live
            process.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        transport: Transport | None = None,
        node: str | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        reply_to_allowed: Sequence[str] = (),
        codec: Codec | str = "json",
        middleware: Sequence[Middleware] = (),
    ) -> None:
        self._registry = Registry()
        #: The runtime's handle on this system's runs (for the CLI and the test kit).
        self.lifecycle = Lifecycle(
            self._registry,
            url=url or os.environ.get("ACTORS_URL") or DEFAULT_URL,
            transport=transport,
            node=node,
            max_payload=max_payload,
            reply_to_allowed=reply_patterns(reply_to_allowed),
        )
        self.lifecycle.codec = codec_named(codec) or JsonCodec()
        for each in middleware:
            self.use(each)

    @property
    def url(self) -> str:
        """The store's URL (the transport given instead, if any, is used)."""
        return self.lifecycle.url

    @url.setter
    def url(self, url: str) -> None:
        self.lifecycle.url = url

    @property
    def max_payload(self) -> int:
        """The largest payload, in bytes, a handler or an ask is given."""
        return self.lifecycle.max_payload

    @max_payload.setter
    def max_payload(self, size: int) -> None:
        self.lifecycle.max_payload = size

    @property
    def reply_to_allowed(self) -> tuple[str, ...]:
        """Where replies may go besides the reply lists of :meth:`ask`."""
        return self.lifecycle.reply_to_allowed

    @reply_to_allowed.setter
    def reply_to_allowed(self, allowed: Sequence[str]) -> None:
        self.lifecycle.reply_to_allowed = reply_patterns(allowed)

    @property
    def node(self) -> str:
        """This process's name among those sharing the store: the one given, else
        ``<hostname>-<pid>`` of the process that runs the system (a fork of a built
        system gets its own)."""
        return self.lifecycle.node

    @node.setter
    def node(self, name: str) -> None:
        self.lifecycle.node = name

    def use(self, middleware: Middleware) -> Middleware:
        """Add ``middleware`` inside the system's others (the first added is the
        outermost); returns it. Instances started from now on use it.

        Raises:
            ConfigurationError: ``middleware`` is not a :class:`Middleware`.
        """
        if not isinstance(middleware, Middleware):
            raise ConfigurationError(
                f"middleware must subclass actors.Middleware, not {type(middleware).__name__}"
            )
        self.lifecycle.middleware.append(middleware)
        return middleware

    @property
    def middleware(self) -> Sequence[Middleware]:
        """The system's middleware, outermost first."""
        return tuple(self.lifecycle.middleware)

    @property
    def state(self) -> SystemState:
        """Where the system is in its life."""
        return self.lifecycle.state

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

    def actor(self, target: Any = None, /, **options: Any) -> Any:
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
        return self._registry.actor(target, **options)

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
        return self._registry.publisher(channel=channel, list=list, stream=stream, mailbox=mailbox)

    def supervise(self, supervisor: Supervisor) -> Supervisor:
        """Run ``supervisor`` (and its tree) as part of this system; returns it.

        Actor classes found in its tree become addressable by name.

        Raises:
            ConfigurationError: once the system is running.
        """
        if self.state is not SystemState.NEW:
            raise ConfigurationError("supervise() must be called before the system starts")
        self._registry.supervise(supervisor)
        return supervisor

    @property
    def actors(self) -> Mapping[str, type[Actor]]:
        """The registered actor classes, by name."""
        return dict(self._registry.actors)

    # -- running ----------------------------------------------------------------------

    def _messenger(self) -> Messenger:
        run = self.lifecycle.run
        if run is None:
            raise ClosedError("the actor system is not running")
        return run.messenger

    @property
    def transport(self) -> Transport:
        """The store this system talks to.

        Raises:
            ClosedError: the system is not running.
        """
        return self._messenger().transport

    @property
    def redis(self) -> Any:
        """The Redis client of a Redis-backed system, for your own commands.

        Raises:
            ConfigurationError: the system does not run on Redis.
            ClosedError: the system is not running.
        """
        return self._messenger().redis

    def tree(self) -> ChildInfo:
        """A live snapshot of the supervision tree: each child, its state and restarts.

        Raises:
            ClosedError: the system is not running.
        """
        root = self.lifecycle.root
        if root is None:
            raise ClosedError("the actor system is not running")
        return root.tree()

    def supervisor(self, name: str) -> Supervisor:
        """The running supervisor named ``name`` (or at the tree path ``name``) in this
        system's tree, to start and stop children on (``start_child``, ``stop_child``,
        ``Pool.spawn``). Actors declared with :meth:`actor` run under ``"system"``.

        Raises:
            SpawnError: no running supervisor of that name.
            ClosedError: the system is not running.
        """
        root = self.lifecycle.root
        if root is None:
            raise ClosedError("the actor system is not running")
        found = root.find(name)
        if found is None:
            raise SpawnError(f"no running supervisor named {name!r}")
        return found

    def node_info(self) -> dict[str, Any]:
        """What this node announces: host, pid, start time, and its actors' mailboxes
        (with ``error`` when a key of one has the wrong type)."""
        return self.lifecycle.node_info()

    def stop(self) -> None:
        """Ask the system to stop gracefully: stop fetching, finish in-flight messages."""
        self.lifecycle.stop()

    async def __aenter__(self) -> ActorSystem:
        block = self.lifecycle.running()
        await block.__aenter__()
        # Only once entered: a refused second entry must not replace the running block.
        self._run_block = block
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool | None:
        self.stop()
        return await self._run_block.__aexit__(exc_type, exc, tb)

    async def run(self) -> None:
        """Run until :meth:`stop` is called (or the root supervisor fails).

        Raises:
            SupervisorError: the root supervisor exceeded its restart intensity.
            TransportError: the store is unreachable at start.
            ConfigurationError: another live process holds this node's name (at start,
                or taken while this one's heartbeat lapsed).
            LifespanError: a lifespan, startup or shutdown hook failed.
        """
        try:
            async with self:
                await self.lifecycle.wait_stopped()
        except BaseExceptionGroup as group:
            # Nurseries wrap errors in groups; a lone error of ours is clearer unwrapped.
            failure = sole_error(group, ActorsError)
            if failure is None:
                raise
            raise failure from None

    # -- messaging ----------------------------------------------------------------------

    def resolve(self, target: Any) -> MailboxSpec:
        """The mailbox for ``target``: a :class:`MailboxSpec`, an :class:`Actor` class,
        an address (``"list:jobs"``), or the name of a registered actor or its mailbox.

        Raises:
            ConfigurationError: the target is unknown.
        """
        return self._registry.resolve(target)

    async def tell(
        self,
        target: Any,
        msg: Any,
        *,
        headers: Mapping[str, str] | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        """Send ``msg`` to ``target`` and return once the store has it (fire-and-forget).

        With ``delay`` (seconds or a ``timedelta``) or ``at`` (a ``datetime`` with a time
        zone), the store holds the message and delivers it then: in Redis it survives
        restarts of every process, and any running node promotes it within about
        50 ms of its due time (at-least-once, as every message of its mailbox).

        Raises:
            ConfigurationError: unknown target; a negative delay, both ``delay`` and
                ``at``, a naive ``at``, or a delay for a pub/sub target.
            CodecError: ``msg`` cannot be encoded.
            TransportError: the store failed. ClosedError: the system is not running.
        """
        await self._messenger().tell(target, msg, headers=headers, delay=delay, at=at)

    async def tell_many(
        self,
        target: Any,
        msgs: Sequence[Any],
        *,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        """Send several messages to one target in one round-trip, in order (all held
        until ``delay`` or ``at``, as for :meth:`tell`).

        Raises:
            The same as :meth:`tell`.
        """
        await self._messenger().tell_many(target, msgs, delay=delay, at=at)

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
        spec = self.resolve(target)  # an unknown target is said before a stopped system
        return await self._messenger().ask(
            spec, msg, timeout=timeout, reply_type=reply_type, headers=headers
        )

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
