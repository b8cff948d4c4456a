"""What an actor instance tells its middleware and its logs: each handler call through
the middleware chain, each fetched batch, and each message's fate (one DEBUG line);
and its sends, through its own middleware."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from transports import MailboxSpec

from ._messenger import Messenger
from ._middleware import (
    Fate,
    Fetch,
    Handling,
    Middleware,
    Outcome,
    handle_through,
    overriding,
)

if TYPE_CHECKING:
    from ._context import ActorContext

__all__ = ["ActorMessaging", "InstanceObserver"]

logger = logging.getLogger("actors.actor")


class InstanceObserver:
    """The middleware ``chain`` (the system's, then the actor's) of the instance
    ``path`` of the actor ``actor`` on ``mailbox``."""

    def __init__(
        self, chain: Sequence[Middleware], actor: str, path: str, mailbox: MailboxSpec
    ) -> None:
        # Only those that override a hook are called for it.
        self.handlers = overriding(chain, "handle")
        self.fate_takers = overriding(chain, "on_fate")
        self.fetch_takers = overriding(chain, "on_fetch")
        self.actor = actor
        self.path = path
        self.mailbox = mailbox

    async def handle(
        self, call: Callable[[Any], Awaitable[Any]], message: Any, context: ActorContext
    ) -> Any:
        """``await call(message)`` inside the chain.

        Raises:
            Exception: what the handler (or a middleware) raised.
        """
        if not self.handlers:  # the common case, and the hot path: no Handling is made
            return await call(message)
        handling = Handling(self.actor, self.path, self.mailbox, message, context)
        if len(self.handlers) == 1:  # no chain to walk
            return await self.handlers[0].handle(handling, lambda: call(message))
        return await handle_through(self.handlers, handling, lambda: call(message))

    def fetched(self, size: int) -> None:
        """A batch of ``size`` messages was fetched (told to the chain if not empty)."""
        if size and self.fetch_takers:
            fetch = Fetch(self.actor, self.path, self.mailbox, size)
            for middleware in self.fetch_takers:
                middleware.on_fetch(fetch)

    def fate(
        self, outcome: Outcome, message_id: str, attempt: int, error: BaseException | None = None
    ) -> None:
        """Tell the chain, and the DEBUG log, what became of a message."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s: message %s of %s %s (attempt %d)%s",
                self.path,
                message_id,
                self.mailbox,
                outcome.replace("_", "-"),
                attempt,
                f": {type(error).__qualname__}: {error}" if error is not None else "",
                extra={
                    "event": outcome,
                    "path": self.path,
                    "mailbox": str(self.mailbox),
                    "message_id": message_id,
                    "attempt": attempt,
                },
            )
        if self.fate_takers:
            fate = Fate(outcome, self.actor, self.path, self.mailbox, message_id, attempt, error)
            for middleware in self.fate_takers:
                middleware.on_fate(fate)


class ActorMessaging:
    """What the instance ``sender`` sends through (its context's ``messenger``): the
    system's ``messenger``, with the actor's own ``middleware`` inside the system's."""

    def __init__(self, messenger: Messenger, middleware: Sequence[Middleware], sender: str) -> None:
        self.messenger = messenger
        self.middleware = tuple(middleware)
        self.sender = sender

    @property
    def redis(self) -> Any:
        """The system's Redis client (see :attr:`Messenger.redis`)."""
        return self.messenger.redis

    async def tell(
        self,
        target: Any,
        msg: Any,
        *,
        headers: Mapping[str, str] | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        """See :meth:`Messenger.tell`."""
        await self.messenger.tell(
            target,
            msg,
            headers=headers,
            middleware=self.middleware,
            sender=self.sender,
            delay=delay,
            at=at,
        )

    async def ask(
        self,
        target: Any,
        msg: Any,
        *,
        timeout: float = 5.0,
        reply_type: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """See :meth:`Messenger.ask`."""
        return await self.messenger.ask(
            target,
            msg,
            timeout=timeout,
            reply_type=reply_type,
            headers=headers,
            middleware=self.middleware,
            sender=self.sender,
        )
