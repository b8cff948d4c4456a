"""Function actors: an ``async def`` wrapped as an :class:`Actor` class."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from transports import Backoff, ConfigurationError, MailboxSpec

from ._actor import DEFAULT_RETRY_BACKOFF, Actor, Directive
from ._handlers import CATCH_ALL, HandlerTable, check_early, message_types, qualified

__all__ = ["function_actor"]


def function_actor(
    fn: Callable[..., Awaitable[Any]],
    *,
    mailbox: MailboxSpec,
    name: str | None = None,
    publish_to: Sequence[MailboxSpec] = (),
    max_deliveries: int = 3,
    batch_size: int = 100,
    on_error: Mapping[type[BaseException], Directive] | None = None,
    retry_backoff: Backoff = DEFAULT_RETRY_BACKOFF,
) -> type[Actor]:
    """Wrap ``async def fn(msg: T) -> R`` as an actor class.

    If ``fn`` has a second parameter, it receives the :class:`ActorContext`.
    ``on_error`` and ``retry_backoff`` are as on :class:`Actor`.

    Raises:
        ConfigurationError: ``fn`` is not ``async def``, takes no parameter, or
            names a type the converter cannot handle, or ``on_error`` or
            ``retry_backoff`` is malformed (see :func:`check_on_error`).
    """
    if not inspect.iscoroutinefunction(fn):
        raise ConfigurationError(f"actor function {fn.__name__} must be async def")
    owner = qualified(fn)
    check_early(fn, owner)
    params = list(inspect.signature(fn).parameters)
    wants_context = len(params) >= 2

    receive: Any
    if wants_context:

        async def receive(self: Actor, msg: Any) -> Any:
            return await fn(msg, self.context)

    else:
        # The function itself is the handler: no wrapper coroutine per message.
        receive = staticmethod(fn)

    namespace: dict[str, Any] = {
        "mailbox": mailbox,
        "publish_to": tuple(publish_to),
        "max_deliveries": max_deliveries,
        "batch_size": batch_size,
        # A copy, so that the caller's dict changing later changes nothing; anything
        # else is kept as given, for check_on_error to refuse.
        "on_error": dict(on_error) if isinstance(on_error, Mapping) else on_error or {},
        "retry_backoff": retry_backoff,
        "name": name or fn.__name__,
        "receive": receive,
        "__module__": getattr(fn, "__module__", __name__),
        "__doc__": fn.__doc__,
    }
    cls = type(fn.__name__, (Actor,), namespace)

    def handlers(klass: type[Actor]) -> HandlerTable:
        if klass._handler_table is None:
            entries = [(tp, "receive") for tp in message_types(fn, owner, checked=True)]
            entries.sort(key=lambda e: e[0] in CATCH_ALL)
            klass._handler_table = HandlerTable(tuple(entries))
        return klass._handler_table

    # The handler's message type comes from ``fn``'s annotation, not from ``receive``'s.
    setattr(cls, "handlers", classmethod(handlers))  # noqa: B010
    return cls
