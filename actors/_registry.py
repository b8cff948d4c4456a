"""What a system runs, as declared: actors, publishers, supervisors; and name lookups.

Pure bookkeeping: nothing here does I/O or knows whether the system runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_type_hints

from transports import Backoff, ConfigurationError, MailboxSpec

from ._actor import DEFAULT_RETRY_BACKOFF, Actor, ActorRun, Directive
from ._function_actor import function_actor
from ._mailbox import one_mailbox
from ._pool import Pool
from ._supervision import Supervisor
from ._tree import Restart

__all__ = ["Registry", "reply_annotation"]

F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """The actors, publishers and supervisors declared on one system."""

    def __init__(self) -> None:
        self._actors: dict[str, type[Actor]] = {}
        self._unsupervised: list[tuple[type[Actor], int, Restart]] = []
        self._supervisors: list[Supervisor] = []
        self._reply_types: dict[tuple[MailboxSpec, type], Any] = {}

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
        """Register an actor function or class; see :meth:`ActorSystem.actor`.

        Raises:
            ConfigurationError: as :meth:`ActorSystem.actor` says.
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

    @staticmethod
    def publisher(
        *,
        channel: str | None = None,
        list: str | None = None,
        stream: str | None = None,
        mailbox: MailboxSpec | None = None,
    ) -> Callable[[F], F]:
        """Publish the decorated actor function's return values to a mailbox; see
        :meth:`ActorSystem.publisher`.

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

    def supervise(self, supervisor: Supervisor) -> None:
        """Add ``supervisor``'s tree; its actor classes become addressable by name.

        Raises:
            ConfigurationError: two actors of the tree share a name with others.
        """
        self._supervisors.append(supervisor)
        for cls in _actors_in(supervisor):
            self._register(cls)

    def adopt(self, cls: type[Actor]) -> None:
        """Make ``cls``, started at run time, addressable by name.

        Raises:
            ConfigurationError: another actor has its name.
        """
        self._register(cls)

    def _register(self, cls: type[Actor]) -> None:
        existing = self._actors.get(cls.name)
        if existing is not None and existing is not cls:
            raise ConfigurationError(f"two actors are named {cls.name!r}")
        self._actors[cls.name] = cls

    @property
    def actors(self) -> Mapping[str, type[Actor]]:
        """The registered actor classes, by name (a live view: do not change it)."""
        return self._actors

    def build_root(self) -> Supervisor:
        """The supervisor to run: the one supervised, or a ``one_for_one`` over the
        unsupervised actors and the supervisors."""
        if len(self._supervisors) == 1 and not self._unsupervised:
            return self._supervisors[0]
        children: list[Any] = [cls.spec(instances=n, restart=r) for cls, n, r in self._unsupervised]
        children.extend(s.spec() for s in self._supervisors)
        return Supervisor(children, name="system", strategy="one_for_one")

    def resolve(self, target: Any) -> MailboxSpec:
        """The mailbox for ``target``; see :meth:`ActorSystem.resolve`.

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

    def reply_type_for(self, spec: MailboxSpec, msg: Any) -> Any:
        """The type a reply from ``spec`` to ``msg`` is structured as (None: plain JSON)."""
        key = (spec, type(msg))
        if key not in self._reply_types:
            self._reply_types[key] = self._find_reply_type(spec, type(msg))
        return self._reply_types[key]

    def _find_reply_type(self, spec: MailboxSpec, msg_type: type) -> Any:
        """The return annotation of the handler of ``spec``'s actor for ``msg_type``."""
        for cls in self._actors.values():
            if cls.mailbox == spec and (found := reply_annotation(cls, msg_type)) is not None:
                return found
        return None


def reply_annotation(cls: type[Actor], msg_type: type) -> Any:
    """The return annotation of ``cls``'s handler for exactly ``msg_type`` (None: no
    such handler, or it returns nothing or ``Any``)."""
    for tp, method in cls.handlers().entries:
        if tp is msg_type:
            hint = get_type_hints(getattr(cls, method)).get("return")
            return None if hint in (None, type(None), Any) else hint
    return None


def _actors_in(supervisor: Supervisor) -> list[type[Actor]]:
    """The actor classes anywhere in ``supervisor``'s tree."""
    found: list[type[Actor]] = [supervisor.actor] if isinstance(supervisor, Pool) else []
    for spec in supervisor.children:
        if isinstance(spec.run, ActorRun):
            found.append(spec.run.actor)
        owner = getattr(spec.run, "__self__", None)
        if isinstance(owner, Supervisor):
            found.extend(_actors_in(owner))
    return found
