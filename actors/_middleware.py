"""Middleware: hooks around handling and sending, and the fates of messages.

A :class:`Middleware` wraps each handler call (:meth:`Middleware.handle`) and each
``tell``/``ask`` (:meth:`Middleware.send`), and is told each message's fate
(:meth:`Middleware.on_fate`) and each fetched batch (:meth:`Middleware.on_fetch`).
The system's middleware (``ActorSystem(middleware=[...])``, :meth:`ActorSystem.use`)
wraps the actor's own (``class A(Actor): middleware = [...]``), each list in order:
the first is the outermost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from transports import MailboxSpec

if TYPE_CHECKING:
    from ._context import ActorContext

__all__ = [
    "Fate",
    "Fetch",
    "Handling",
    "Middleware",
    "Outcome",
    "Sending",
    "handle_through",
    "overriding",
    "send_through",
]

Outcome = Literal["handled", "retried", "dead_lettered", "dropped"]
"""What became of a message: handled (acked), retried later, dead-lettered, dropped
(the handler raised :class:`Drop`: acked unhandled)."""


# Handling and Fate are made per message: plain attrs classes are made in a third of
# the time of frozen ones. Treat them as read-only.
@attrs.define
class Handling:
    """A handler call, as :meth:`Middleware.handle` sees it.

    ``actor`` is the actor's name, ``path`` the instance's place in the tree,
    ``mailbox`` its mailbox, ``message`` the message (structured as the handler
    takes it), ``context`` the instance's :class:`ActorContext` (``context.message``
    has the id, the attempt and the headers).
    """

    actor: str
    path: str
    mailbox: MailboxSpec
    message: Any
    context: ActorContext


@attrs.define
class Sending:
    """A ``tell``, ``tell_many`` or ``ask``, as :meth:`Middleware.send` sees it.

    ``headers`` may be changed (a tracer adds ``traceparent``): every message sent
    carries them. ``sender`` is the sending instance's path, None outside an actor.
    ``delay``: the seconds the store holds the messages before delivering them (0: now).
    """

    kind: Literal["tell", "ask"]
    target: MailboxSpec
    messages: Sequence[Any]
    headers: MutableMapping[str, str]
    sender: str | None = None
    delay: float = 0.0


@attrs.define
class Fate:
    """What became of one message (see :data:`Outcome`): handled by the instance
    ``path`` of ``actor``, from ``mailbox``, its id and attempt, and the error that
    failed it (None when handled or dropped)."""

    outcome: Outcome
    actor: str
    path: str
    mailbox: MailboxSpec
    message_id: str
    attempt: int
    error: BaseException | None = None


@attrs.frozen
class Fetch:
    """A batch of ``size`` messages fetched by the instance ``path`` of ``actor``."""

    actor: str
    path: str
    mailbox: MailboxSpec
    size: int


class Middleware:
    """A hook around handling and sending; subclass it and override what you need
    (each default passes through, and costs a call).

    Handling and sending hooks are trio-native: ``await call_next()`` runs the rest
    of the chain (the handler, or the send) and returns its result or raises its
    exception; a hook may return without calling it (short-circuit: its return value
    is the handler's result), replace the result, or raise. The ``on_*`` hooks are
    plain calls, made from the instance's task: keep them quick, they must not block.
    """

    async def handle(self, handling: Handling, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Around one handler call: return its result (or another), or raise.

        An exception raised here is the handler's: the actor's ``on_error`` decides.
        """
        return await call_next()

    async def send(self, sending: Sending, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Around one ``tell``/``tell_many`` (returns None) or ``ask`` (returns the reply,
        and covers the wait for it). Change ``sending.headers`` before ``call_next``
        to add headers to the messages."""
        return await call_next()

    def on_fate(self, fate: Fate) -> None:
        """Told each message's fate, once decided (and, for a retry or a dead letter,
        stored)."""

    def on_fetch(self, fetch: Fetch) -> None:
        """Told each non-empty batch an instance fetched."""


def overriding(chain: Sequence[Middleware], hook: str) -> tuple[Middleware, ...]:
    """The middleware of ``chain`` that override ``hook`` (the others only pass
    through: skipping them costs nothing)."""
    default = getattr(Middleware, hook)
    return tuple(each for each in chain if getattr(type(each), hook) is not default)


async def handle_through(
    chain: Sequence[Middleware], handling: Handling, last: Callable[[], Awaitable[Any]]
) -> Any:
    """Run ``last`` (the handler call) inside ``chain``, the first outermost."""
    return await _through(chain, 0, handling, last, "handle")


async def send_through(
    chain: Sequence[Middleware], sending: Sending, last: Callable[[], Awaitable[Any]]
) -> Any:
    """Run ``last`` (the send) inside ``chain``, the first outermost."""
    return await _through(chain, 0, sending, last, "send")


async def _through(
    chain: Sequence[Middleware],
    index: int,
    what: Any,
    last: Callable[[], Awaitable[Any]],
    hook: str,
) -> Any:
    if index == len(chain):
        return await last()
    if index == len(chain) - 1:  # the innermost: no closure to make
        return await getattr(chain[index], hook)(what, last)

    def call_next() -> Awaitable[Any]:
        return _through(chain, index + 1, what, last, hook)

    return await getattr(chain[index], hook)(what, call_next)
