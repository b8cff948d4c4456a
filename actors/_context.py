"""What a running actor sees: its context (messaging, the store) and the current message."""

from __future__ import annotations

import types
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import attrs

from transports import ConfigurationError, Delivery, MailboxSpec

from ._codec import Envelope

__all__ = ["ActorContext", "MessageInfo", "Messaging", "message_id"]


def message_id(envelope: Envelope, delivery: Delivery) -> str:
    """A message's one id (``context.message.id``, and in the runtime's logs): the one
    its sender put in the envelope, or for a payload without an envelope, the
    delivery's (a stream entry id, a list payload's SHA-1), which stays the same at
    every attempt where a made-up one would not."""
    return delivery.id if envelope.foreign else envelope.id


@attrs.frozen
class MessageInfo:
    """Metadata of the message a handler is working on.

    ``id`` is the id the sender put in the envelope (``tell``/``ask`` make one per
    message; it stays the same through redeliveries and replays). A payload from
    another client, without an envelope, gets the delivery's id: a stream's entry id,
    a list's SHA-1 of the payload (equal payloads share it), a channel's per-subscriber
    counter.
    """

    id: str
    attempt: int
    headers: Mapping[str, str]
    correlation_id: str | None
    reply_to: str | None
    channel: str | None


class Messaging(Protocol):
    """What an actor sends through: its system's messenger."""

    @property
    def redis(self) -> Any:
        """The system's Redis client."""

    async def tell(
        self,
        target: Any,
        msg: Any,
        *,
        headers: Mapping[str, str] | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        """Send ``msg`` to ``target``, now or later."""

    async def ask(
        self,
        target: Any,
        msg: Any,
        *,
        timeout: float = 5.0,
        reply_type: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Ask ``target``, and return the reply."""


class Watching(Protocol):
    """The death watch an actor monitors through: its system's (``_watch.Watch``)."""

    async def monitor(
        self, target: str, node: str | None, *, owner: str, mailbox: MailboxSpec
    ) -> str:
        """Monitor ``target`` on ``node`` for ``owner``; Down goes to ``mailbox``."""

    def demonitor(self, ref: str) -> None:
        """Drop the monitor ``ref``."""


class ActorContext:
    """What a running actor can reach: messaging, the store, the current message."""

    def __init__(
        self,
        messenger: Messaging,
        path: str,
        consumer: str,
        resources: Mapping[str, Any] | None = None,
        *,
        watch: Watching | None = None,
        mailbox: MailboxSpec | None = None,
    ) -> None:
        self.messenger = messenger
        self._watch = watch
        self._mailbox = mailbox
        #: What the system's lifespan and startup hooks opened (read-only), by name.
        self.resources: Mapping[str, Any] = types.MappingProxyType(
            resources if resources is not None else {}
        )
        #: The instance's place in the tree, such as ``root/bank/ledger-2``.
        self.path = path
        #: The consumer name in the store, unique per node.
        self.consumer = consumer
        self._current: tuple[Envelope, Delivery] | None = None
        self._message: MessageInfo | None = None

    @property
    def message(self) -> MessageInfo:
        """The message being handled.

        Raises:
            RuntimeError: outside a handler.
        """
        if self._message is None:
            # Built on demand: most handlers never look, and it is per message.
            if self._current is None:
                raise RuntimeError("no message is being handled")
            envelope, delivery = self._current
            self._message = MessageInfo(
                id=message_id(envelope, delivery),
                attempt=delivery.attempt,
                headers=envelope.headers,
                correlation_id=envelope.correlation_id,
                reply_to=envelope.reply_to,
                channel=delivery.channel,
            )
        return self._message

    @property
    def redis(self) -> Any:
        """The system's Redis client, for the actor's own commands."""
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
        """Send ``msg`` to ``target``, now or after ``delay``/at ``at``; see
        :meth:`ActorSystem.tell`."""
        await self.messenger.tell(target, msg, headers=headers, delay=delay, at=at)

    async def ask(
        self,
        target: Any,
        msg: Any,
        *,
        timeout: float = 5.0,
        reply_type: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Ask ``target``; see :meth:`ActorSystem.ask`."""
        return await self.messenger.ask(
            target, msg, timeout=timeout, reply_type=reply_type, headers=headers
        )

    async def monitor(self, target: Any, *, node: str | None = None) -> str:
        """Watch ``target``; see :meth:`Actor.monitor`.

        Raises:
            ConfigurationError: the context is not a running instance's.
            TransportError: looking at another node failed.
        """
        if self._watch is None or self._mailbox is None:
            raise ConfigurationError("monitor needs a running actor instance's context")
        name = target if isinstance(target, str) else getattr(target, "name", None)
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"monitor takes a name or an actor class, not {target!r}")
        return await self._watch.monitor(name, node, owner=self.path, mailbox=self._mailbox)

    def demonitor(self, ref: str) -> None:
        """Stop watching; see :meth:`Actor.demonitor`."""
        if self._watch is not None:
            self._watch.demonitor(ref)
