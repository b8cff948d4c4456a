"""Actors: the Actor base class, its error directives, its child specs."""

from __future__ import annotations

import contextvars
import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, get_args

import attrs
import trio

from transports import Backoff, ConfigurationError, MailboxSpec

from ._codec import type_tag
from ._fates import MessageFate
from ._handlers import (
    CATCH_ALL,
    HANDLER_MARK,
    HandlerTable,
    check_early,
    handler,
    message_types,
    qualified,
)
from ._middleware import Middleware
from ._tree import ChildSpec, Restart

if TYPE_CHECKING:
    from ._context import ActorContext

__all__ = [
    "DEFAULT_RETRY_BACKOFF",
    "Actor",
    "ActorRun",
    "Build",
    "Directive",
    "HandlerTable",
    "InstanceHost",
    "builder",
    "check_on_error",
    "current_host",
    "handler",
    "instance_specs",
]

Directive = Literal["retry", "restart", "stop", "escalate"]
"""What a handler's exception means (see :attr:`Actor.on_error`)."""

DIRECTIVES: tuple[str, ...] = get_args(Directive)

DEFAULT_ON_ERROR: Mapping[type[BaseException], Directive] = types.MappingProxyType(
    {Exception: "retry"}
)
"""The directives an actor's ``on_error`` is merged over: any exception retries."""

DEFAULT_RETRY_BACKOFF = Backoff(min=0.1, max=30.0)
"""How long a failed message waits before its next attempt unless the actor says
otherwise: 0.1 s after the first failure, doubling up to 30 s, each less up to 20 %."""


class Actor:
    """Base class of class actors.

    Subclasses declare ``mailbox`` (see :func:`list_mailbox`, :func:`stream_mailbox`,
    :func:`channel_mailbox`), keep state in ``__init__`` (its arguments come from
    :meth:`spec`; a restarted actor is a fresh instance), and handle messages in
    ``async def receive(self, msg: T)`` and/or methods marked :func:`handler`,
    dispatched by the annotated message type. A handler's return value is sent
    to the asker (``reply_to``) and to every mailbox in ``publish_to``.

    Class attributes:
        mailbox: where the actor's messages live (required).
        publish_to: mailboxes that receive each handler's non-``None`` result.
        max_deliveries: attempts at a message before it is dead-lettered.
        batch_size: the most messages fetched per round-trip (handled one at a
            time). An instance fetches fewer when its last batch was slow (about
            50 ms of handling at that speed), so that slow work spreads over
            instances and workers; 1 spreads work of varying cost best.
        name: the actor's name (default: the class name in lower case).
        on_error: what a handler's exception means, by exception class (the most
            specific class in the exception's MRO wins), merged over the default
            ``{Exception: "retry"}``: ``"retry"`` (the message is tried again after
            ``retry_backoff``; this instance goes on with the next message and keeps
            its state), ``"restart"`` (a fresh instance; the message comes back),
            ``"stop"`` (this instance stops for good; the message goes back to the
            mailbox) or ``"escalate"`` (the supervisor fails at once; the message
            goes back to the mailbox). At ``max_deliveries`` the message is
            dead-lettered instead, whatever the directive, and the instance goes on.
        retry_backoff: the wait before a retried message's next attempt: after the
            n-th failure, ``retry_backoff.delay(n - 1)`` (default
            :data:`DEFAULT_RETRY_BACKOFF`: 0.1 s doubling to 30 s, with jitter).
        middleware: :class:`Middleware` around this actor's handler calls and
            sends (``context.tell``/``ask``), inside the system's, first outermost.
    """

    mailbox: ClassVar[MailboxSpec | None] = None
    publish_to: ClassVar[Sequence[MailboxSpec]] = ()
    max_deliveries: ClassVar[int] = 3
    batch_size: ClassVar[int] = 100
    name: ClassVar[str] = ""
    on_error: ClassVar[Mapping[type[BaseException], Directive]] = types.MappingProxyType({})
    retry_backoff: ClassVar[Backoff] = DEFAULT_RETRY_BACKOFF
    middleware: ClassVar[Sequence[Middleware]] = ()

    #: Set by the runtime before ``on_start``: messaging, Redis, the current message.
    context: ActorContext

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__.lower()
        cls._handler_table = None
        # Types are checked at the class statement, not at the first message.
        for attr_name in list(vars(cls)):
            fn = getattr(cls, attr_name, None)
            if callable(fn) and (attr_name == "receive" or getattr(fn, HANDLER_MARK, False)):
                check_early(fn, f"{qualified(cls)}.{attr_name}")
        check_on_error(cls)  # a typo in a directive fails at the class statement

    _handler_table: ClassVar[HandlerTable | None] = None

    async def on_start(self) -> None:
        """Called once per incarnation, before the first message. Raising fails the start."""

    async def on_stop(self) -> None:
        """Called when the actor stops (gracefully or after a crash). Raising is a failure."""

    @classmethod
    def directive_for(cls, error: BaseException) -> Directive:
        """The directive :attr:`on_error` gives ``error``: that of the first class of
        ``type(error).__mro__`` it names, else the default's (``"retry"``)."""
        table = cls.on_error
        for klass in type(error).__mro__:
            directive = table.get(klass) or DEFAULT_ON_ERROR.get(klass)
            if directive is not None:
                return directive
        return "retry"  # not an Exception: never handed to us by the runtime

    @classmethod
    def handlers(cls) -> HandlerTable:
        """The handler table, built from annotations on first use.

        Raises:
            ConfigurationError: a handler's annotations cannot be resolved, or name a
                type the converter cannot handle, or the actor has no handler, or two
                handlers take the same type.
        """
        if cls._handler_table is not None:
            return cls._handler_table
        entries: list[tuple[Any, str]] = []
        seen: dict[Any, str] = {}
        for attr_name in _declared_names(cls):
            fn = getattr(cls, attr_name, None)
            if not callable(fn) or not (attr_name == "receive" or getattr(fn, HANDLER_MARK, False)):
                continue
            if not inspect.iscoroutinefunction(fn):
                raise ConfigurationError(f"handler {cls.__name__}.{attr_name} must be async def")
            for tp in message_types(fn, f"{qualified(cls)}.{attr_name}", checked=True):
                if tp in seen:
                    raise ConfigurationError(
                        f"{cls.__name__}: {seen[tp]} and {attr_name} both take {type_tag(tp)}"
                    )
                seen[tp] = attr_name
                entries.append((tp, attr_name))
        if not entries:
            raise ConfigurationError(f"actor {cls.__name__} has no handler: define receive()")
        # Exact types first, catch-alls last, so that a typed handler wins a foreign payload.
        entries.sort(key=lambda e: e[0] in CATCH_ALL)
        cls._handler_table = HandlerTable(tuple(entries))
        return cls._handler_table

    @classmethod
    def spec(
        cls,
        *,
        instances: int = 1,
        restart: Restart = "permanent",
        shutdown: float = 5.0,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        factory: Callable[[ActorContext], Actor] | None = None,
    ) -> list[ChildSpec]:
        """Child specs for a supervisor: ``instances`` consumers of this actor's mailbox.

        Each instance is its own child (``<name>-0``, ``<name>-1``…), restarted on
        its own under ``one_for_one``. Every incarnation (a restart too) is built
        fresh: ``cls(*args, **kwargs)``, or ``factory(context)`` (the instance's
        :class:`ActorContext`, whose ``resources`` the system's lifespan opened)
        which must return an instance of ``cls``; the context is set on it after.

        Raises:
            ConfigurationError: no mailbox declared, no handler, ``instances < 1``,
                or ``factory`` given with ``args``/``kwargs`` or not callable.
        """
        return instance_specs(
            cls,
            instances=instances,
            restart=restart,
            shutdown=shutdown,
            build=builder(cls, args, kwargs, factory),
        )

    # Messaging shortcuts, for handlers.
    async def tell(
        self, target: Any, msg: Any, *, headers: Mapping[str, str] | None = None,
        delay: float | timedelta | None = None, at: datetime | None = None,
    ) -> None:  # fmt: skip
        """Send ``msg`` to ``target``, now or later. See :meth:`ActorSystem.tell`."""
        await self.context.tell(target, msg, headers=headers, delay=delay, at=at)

    async def ask(
        self, target: Any, msg: Any, *, timeout: float = 5.0, reply_type: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:  # fmt: skip
        """Send ``msg`` to ``target`` and wait for the reply. See :meth:`ActorSystem.ask`."""
        return await self.context.ask(
            target, msg, timeout=timeout, reply_type=reply_type, headers=headers
        )

    async def monitor(self, target: Any, *, node: str | None = None) -> str:
        """Watch ``target`` (an instance name such as ``"ledger-0"``, an actor name or
        class: all its instances, or a supervisor's name) on ``node`` (default: this
        one): a :class:`Down` comes to this actor's mailbox once, when it stops for good
        (not at a restart), its node dies, or at once if it is not running. Monitors
        end with this incarnation. Returns the ref for :meth:`demonitor`.

        Raises:
            ConfigurationError: ``target`` is not a name or an actor class.
            TransportError: looking at another node failed.
        """
        return await self.context.monitor(target, node=node)

    def demonitor(self, ref: str) -> None:
        """Stop the monitor ``ref`` (a Down already sent may still arrive)."""
        self.context.demonitor(ref)


def check_on_error(cls: type[Actor]) -> None:
    """Check ``cls.on_error`` and ``cls.retry_backoff``.

    Raises:
        ConfigurationError: naming the actor, when ``on_error`` is not a mapping of
            exception classes (subclasses of Exception other than Retry, Reject and
            Drop, which decide for themselves) to directives, or ``retry_backoff`` is
            not a Backoff.
    """
    table = cls.on_error
    owner = f"actor {cls.__name__}"
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{owner}: on_error must be a mapping, not {table!r}")
    for key, directive in table.items():
        if not (isinstance(key, type) and issubclass(key, Exception)):
            raise ConfigurationError(
                f"{owner}: on_error keys must be exception classes, not {key!r}"
            )
        if issubclass(key, MessageFate):
            raise ConfigurationError(
                f"{owner}: on_error cannot name {key.__name__}: Retry, Reject and Drop"
                " decide a message's fate themselves"
            )
        if directive not in DIRECTIVES:
            raise ConfigurationError(
                f"{owner}: on_error[{key.__name__}] must be one of"
                f" {', '.join(DIRECTIVES)}; not {directive!r}"
            )
    if not isinstance(cls.retry_backoff, Backoff):
        raise ConfigurationError(
            f"{owner}: retry_backoff must be a Backoff, not {cls.retry_backoff!r}"
        )


def _declared_names(cls: type) -> list[str]:
    """``cls``'s attribute names in declaration order, base classes' first (an override
    keeps its base's place): the order foreign payloads try handlers in."""
    return list(dict.fromkeys(name for klass in reversed(cls.__mro__) for name in vars(klass)))


Build = Callable[["ActorContext"], Actor]
"""How an incarnation of an actor is made, given its context (see :meth:`Actor.spec`)."""


def builder(
    cls: type[Actor],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    factory: Callable[[ActorContext], Actor] | None = None,
) -> Build:
    """What makes each incarnation of ``cls``; see :meth:`Actor.spec`.

    Raises:
        ConfigurationError: ``factory`` given with ``args``/``kwargs``, or not callable.
    """
    if factory is None:
        frozen_args, frozen_kwargs = tuple(args), dict(kwargs or {})
        return lambda _context: cls(*frozen_args, **frozen_kwargs)
    if args or kwargs:
        raise ConfigurationError(f"actor {cls.__name__}: give factory or args/kwargs, not both")
    if not callable(factory):
        raise ConfigurationError(f"actor {cls.__name__}: factory must be callable, not {factory!r}")

    def build(context: ActorContext) -> Actor:
        actor = factory(context)
        if not isinstance(actor, cls):
            raise ConfigurationError(
                f"the factory of actor {cls.__name__} returned {actor!r}, not a {cls.__name__}"
            )
        return actor

    return build


class InstanceHost(Protocol):
    """What runs actor instances: the system whose supervision tree runs them."""

    async def run_instance(
        self,
        actor: type[Actor],
        index: int,
        shutdown: float,
        stop: trio.Event,
        task_status: trio.TaskStatus[None],
        build: Build,
    ) -> None:
        """Run one incarnation of instance ``index`` of ``actor`` (made by ``build``)
        until ``stop`` or a crash."""


#: The host of the supervision tree running in this task: a system sets it for its tree.
current_host: contextvars.ContextVar[InstanceHost] = contextvars.ContextVar("actors_host")


def instance_specs(
    cls: type[Actor],
    *,
    instances: int,
    restart: Restart,
    shutdown: float,
    build: Build | None = None,
) -> list[ChildSpec]:
    """One child spec per instance of ``cls``; see :meth:`Actor.spec`."""
    if cls.mailbox is None:
        raise ConfigurationError(f"actor {cls.__name__} declares no mailbox")
    if instances < 1:
        raise ConfigurationError(f"actor {cls.__name__}: instances must be >= 1, not {instances}")
    if cls.max_deliveries < 1 or cls.batch_size < 1:
        raise ConfigurationError(
            f"actor {cls.__name__}: max_deliveries and batch_size must be >= 1"
        )
    cls.handlers()  # fail at declaration time, not at the first message
    check_on_error(cls)  # again: on_error may have been set after the class statement
    return [
        ChildSpec(
            name=f"{cls.name}-{i}",
            run=ActorRun(cls, i, shutdown, build or builder(cls)),
            restart=restart,
            shutdown=shutdown,
            pool=cls.name,  # the instances stop together, not one after another
        )
        for i in range(instances)
    ]


@attrs.frozen
class ActorRun:
    """The ``run`` of an actor instance's child spec (a :class:`ChildRun`)."""

    actor: type[Actor]
    index: int
    shutdown: float = 5.0  # its ChildSpec's: bounds the store writes of a stop too
    #: Makes each incarnation (compared by identity: it may close over anything).
    build: Build | None = attrs.field(default=None, eq=False)

    async def __call__(
        self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run one fresh incarnation of the actor until ``stop`` is set or it crashes.

        Raises:
            ConfigurationError: not running under an :class:`ActorSystem`.
            Exception: whatever a handler, ``on_start`` or ``on_stop`` raised (a crash).
        """
        try:
            host = current_host.get()
        except LookupError:
            raise ConfigurationError(
                f"actor {self.actor.__name__} must run under an ActorSystem "
                "(async with system: ...)"
            ) from None
        build = self.build or builder(self.actor)
        await host.run_instance(self.actor, self.index, self.shutdown, stop, task_status, build)
