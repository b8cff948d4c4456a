"""Messaging of a running system: tell, ask and its reply box, and the replier's side
of ask (a handler's result or failure sent where the request says)."""

from __future__ import annotations

import itertools
import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import trio

from transports import (
    Backoff,
    ConfigurationError,
    Delivery,
    MailboxSpec,
    Transport,
    TransportError,
)

from ._actor import Actor
from ._codec import Envelope
from ._codec_choice import CodecChoice, decode_reply
from ._codecs import Codec, JsonCodec
from ._errors import AskTimeout, CodecError
from ._mailbox import channel_mailbox, list_mailbox
from ._middleware import Middleware, Sending, overriding, send_through
from ._registry import Registry
from ._replies import (
    ERROR_MESSAGE as ERROR_MESSAGE,
    ERROR_TYPE as ERROR_TYPE,
    read_reply as read_reply,
    reply_patterns as reply_patterns,
)
from ._retry import RECHECK, Outage, store_answers
from ._waiter import ReplyWaiter

__all__ = [
    "ERROR_MESSAGE",
    "ERROR_TYPE",
    "REPLY_EXPIRE",
    "REPLY_PREFIX",
    "Messenger",
    "read_reply",
    "reply_patterns",
    "send_delay",
]

logger = logging.getLogger("actors.system")

#: Seconds an unread reply list lives after its last reply (its asker may be gone).
REPLY_EXPIRE = 300.0
REPLY_PREFIX = "actors.reply."
#: Waits between tries of the reply reader during an outage: short, someone waits.
_REPLY_BACKOFF = Backoff(min=0.05, max=1.0)
_JSON = JsonCodec()


class Messenger:
    """Sends for one run of a system on ``transport``, and routes the replies to its
    asks (read by :meth:`read_replies`, which must run meanwhile).

    ``registry`` resolves targets; ``node`` names the reply box; ``url`` names the
    store in errors; ``max_payload`` bounds the replies read; ``reply_to_allowed``
    is checked (see :func:`reply_patterns`). ``middleware`` (the system's) wraps every
    ``tell``/``ask``; the list is shared, so that later additions count. ``codec`` is
    the system's (see ``CodecChoice``).
    """

    def __init__(
        self,
        transport: Transport,
        registry: Registry,
        *,
        node: str,
        url: str,
        max_payload: int,
        reply_to_allowed: tuple[str, ...],
        middleware: Sequence[Middleware] = (),
        codec: Codec | None = None,
    ) -> None:
        self.transport = transport
        self.middleware = middleware
        self.registry = registry
        self.url = url
        self.max_payload = max_payload
        self.reply_to_allowed = reply_to_allowed
        #: The asks waiting for their reply, by correlation id.
        self.waiters: dict[str, ReplyWaiter] = {}
        self._reply_boxes: dict[str, MailboxSpec] = {}
        # At-most-once: a reply is only useful to a live asker, and is never acked.
        token = uuid.uuid4().hex[:8]
        #: This run's reply box: its own, even in a fork of a built system.
        self.reply_box = list_mailbox(f"{REPLY_PREFIX}{node}.{token}", at_most_once=True)
        #: Its channel, for asks through codecs whose repliers publish (FastStream's):
        #: read from the first such ask on (see :meth:`_channel_reply_box`).
        self.channel_reply_box = channel_mailbox(f"{REPLY_PREFIX}{node}.{token}")
        self._channel_open: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self.codecs = CodecChoice(
            codec or JsonCodec(),
            lambda: [c.mailbox for c in registry.actors.values() if c.mailbox is not None],
        )  # Correlation ids need only be unique among this system's asks (replies come
        # to its own reply box): a counter, cheaper than a uuid4 (a syscall) per ask.
        self._correlation_ids = map(f"{token}-{{:x}}".format, itertools.count())

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

    async def tell(
        self,
        target: Any,
        msg: Any,
        *,
        headers: Mapping[str, str] | None = None,
        middleware: Sequence[Middleware] = (),
        sender: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        """Send ``msg`` to ``target``, now or held until ``delay``/``at`` (see
        :func:`send_delay`); see :meth:`ActorSystem.tell`. The system's middleware wraps
        it, then ``middleware`` (the sending actor's, ``sender``).

        Raises:
            ConfigurationError: unknown target, or a bad ``delay``/``at``.
            CodecError: ``msg`` cannot be encoded. TransportError: the store failed.
        """
        spec, codec = self.codecs.route(self.registry.resolve(target))
        seconds = send_delay(delay, at)
        chain = overriding((*self.middleware, *middleware), "send")
        if not chain:  # the hot path: nothing to wrap
            await self._send(spec, [codec.encode(msg, headers=headers)], seconds)
            return
        sending = Sending("tell", spec, (msg,), dict(headers or {}), sender, seconds)

        async def send() -> None:
            payload = codec.encode(msg, headers=sending.headers or None)
            await self._send(spec, [payload], seconds)

        await send_through(chain, sending, send)

    async def tell_many(
        self,
        target: Any,
        msgs: Sequence[Any],
        *,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        """Send several messages to one target in one round-trip, in order (held until
        ``delay``/``at`` as for :meth:`tell`).

        Raises:
            The same as :meth:`tell`.
        """
        spec, codec = self.codecs.route(self.registry.resolve(target))
        seconds = send_delay(delay, at)
        chain = overriding(self.middleware, "send")
        if not chain:
            await self._send(spec, [codec.encode(m) for m in msgs], seconds)
            return
        sending = Sending("tell", spec, msgs, {}, None, seconds)

        async def send() -> None:
            headers = sending.headers or None
            await self._send(spec, [codec.encode(m, headers=headers) for m in msgs], seconds)

        await send_through(chain, sending, send)

    async def _send(self, spec: MailboxSpec, payloads: Sequence[bytes], delay: float) -> None:
        # Without a delay, the transport's send as before its delay= existed: transports
        # of other people that predate it keep working.
        if delay:
            await self.transport.send(spec, payloads, delay=delay)
        else:
            await self.transport.send(spec, payloads)

    async def ask(
        self,
        target: Any,
        msg: Any,
        *,
        timeout: float = 5.0,
        reply_type: Any = None,
        headers: Mapping[str, str] | None = None,
        middleware: Sequence[Middleware] = (),
        sender: str | None = None,
    ) -> Any:
        """Send ``msg`` to ``target`` and wait for the handler's return value; see
        :meth:`ActorSystem.ask` (and :meth:`tell` for the middleware).

        Raises:
            AskTimeout: no reply within ``timeout`` seconds (a later reply is discarded).
            RemoteError: the handler raised (after its last attempt) or rejected it.
            CodecError: the reply does not fit the expected type.
            ConfigurationError, TransportError: as for :meth:`tell`.
        """
        spec, codec = self.codecs.route(self.registry.resolve(target))
        chain = overriding((*self.middleware, *middleware), "send")
        if not chain:
            return await self._ask(spec, codec, msg, timeout, reply_type, headers)
        sending = Sending("ask", spec, (msg,), dict(headers or {}), sender)

        async def send() -> Any:
            headers = sending.headers or None
            return await self._ask(spec, codec, msg, timeout, reply_type, headers)

        return await send_through(chain, sending, send)

    async def _ask(
        self,
        spec: MailboxSpec,
        codec: Codec,
        msg: Any,
        timeout: float,
        reply_type: Any,
        headers: Mapping[str, str] | None,
    ) -> Any:
        expected = reply_type if reply_type is not None else self.registry.reply_type_for(spec, msg)
        correlation_id = next(self._correlation_ids)
        waiter = self.waiters[correlation_id] = ReplyWaiter()
        reply: Envelope | None = None
        try:
            with trio.move_on_after(timeout):
                box = self.reply_box
                if codec.reply_kind == "pubsub":
                    box = await self._channel_reply_box()
                payload = codec.encode(
                    msg, correlation_id=correlation_id, reply_to=str(box), headers=headers
                )
                await self.transport.send(spec, [payload])
                reply = await waiter.wait()
        finally:
            del self.waiters[correlation_id]
        if reply is None:
            raise AskTimeout(f"no reply from {spec} within {timeout}s")
        return read_reply(reply, spec, expected)

    async def read_replies(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Read the reply box (and its channel, once an ask needs it) and wake the
        askers, riding out store outages, until cancelled.

        Raises:
            TransportError: a reply box could not be opened, or the store refused
                a read (see ``_retry.waits_out``).
        """
        async with trio.open_nursery() as nursery:
            await nursery.start(self._read_replies, self.reply_box)
            self._nursery = nursery
            task_status.started()

    async def _channel_reply_box(self) -> MailboxSpec:
        """The channel reply box, subscribed to before this returns.

        Raises:
            TransportError: it could not be opened (then the system stops, as for
                the reply list).
        """
        if self._channel_open is None:
            assert self._nursery is not None, "read_replies runs while the system does"
            opened = self._channel_open = trio.Event()

            async def open_box() -> None:
                assert self._nursery is not None
                await self._nursery.start(self._read_replies, self.channel_reply_box)
                opened.set()

            self._nursery.start_soon(open_box)
        await self._channel_open.wait()
        return self.channel_reply_box

    async def _read_replies(self, box: MailboxSpec, *, task_status: trio.TaskStatus[None]) -> None:
        async with self.transport.consumer(box, box.name) as consumer:
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
            reply = decode_reply(delivery.payload, max_size=self.max_payload)
        except CodecError as exc:
            logger.warning("discarding an undecodable reply: %s", exc)
            return False
        waiter = self.waiters.get(reply.correlation_id or "")
        if waiter is None:
            logger.debug("discarding a late reply %s", reply.correlation_id)
            return False
        if not waiter.deliver(reply):
            logger.debug("discarding a duplicate reply %s", reply.correlation_id)
            return False
        return True

    # -- the replier's side ---------------------------------------------------------------

    def outgoing(
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
            # address, so a refused address is logged once (by reply_error then).
            # In the request's own codec: the asker reads that one.
            codec: Codec = request.codec or _JSON
            reply = codec.encode(result, correlation_id=request.correlation_id)
            box = self._reply_address(request.reply_to, path, message_id, codec)
            if box is not None:
                out.append((box, reply))
        if result is not None and cls.publish_to:
            for target in cls.publish_to:
                box, codec = self.codecs.route(target)
                out.append((box, codec.encode(result)))
        return out

    def _reply_address(
        self, address: str, path: str, message_id: str, codec: Codec
    ) -> MailboxSpec | None:
        """The mailbox ``address`` names, if replies may go there: a reply list of
        :meth:`ask`, an address ``reply_to_allowed`` names, or one the request's
        ``codec`` may reply to. Else None, logged once with the handler's ``path``
        and the request's ``message_id``."""
        if codec.reply_kind == "pubsub" and address.startswith("pubsub:"):
            try:  # (not cached: that would allow it to requests of other codecs)
                channel = MailboxSpec.parse(address)
                if codec.may_reply_to(channel):
                    return channel
            except ConfigurationError:
                pass  # logged below
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
            if box.kind == "list" and box.name.startswith(REPLY_PREFIX):
                # An asker's reply list: if the asker is gone, nobody will ever read
                # it; the store deletes it REPLY_EXPIRE seconds after the last reply.
                box = attrs.evolve(box, at_most_once=True, expire=REPLY_EXPIRE)
            if len(self._reply_boxes) > 1024:  # askers come and go: keep it bounded
                self._reply_boxes.clear()
            self._reply_boxes[address] = box
        return box

    def _may_reply_to(self, box: MailboxSpec) -> bool:
        """True when replies may go to ``box``: see ``reply_to_allowed``."""
        if box.kind == "list" and box.name.startswith(REPLY_PREFIX):
            return True
        address = str(box)
        return any(
            address.startswith(entry[:-1]) if entry.endswith("*") else address == entry
            for entry in self.reply_to_allowed
        )

    async def reply_error(
        self, request: Envelope, error_type: str, message: str, path: str, message_id: str
    ) -> None:
        """Tell the asker of ``request`` (if any, and allowed) that it failed; a store
        that fails or refuses is logged, not raised."""
        if not request.reply_to:
            return
        codec: Codec = request.codec or _JSON
        box = self._reply_address(request.reply_to, path, message_id, codec)
        if box is None:
            return
        try:
            payload = codec.encode(
                None,
                correlation_id=request.correlation_id,
                headers={ERROR_TYPE: error_type, ERROR_MESSAGE: message[:2000]},
            )
            await self.transport.send(box, [payload])
        except (ConfigurationError, TransportError) as exc:
            logger.warning("could not send the error reply to %s: %s", request.reply_to, exc)


def send_delay(delay: float | timedelta | None, at: datetime | None) -> float:
    """Seconds a send waits: ``delay`` (seconds or a timedelta), or until ``at`` (a
    datetime with a time zone, read against this host's clock; one in the past is now),
    or 0 for neither.

    Raises:
        ConfigurationError: both given, a negative or non-numeric delay, or a naive ``at``.
    """
    if at is not None:
        if delay is not None:
            raise ConfigurationError("give delay= or at=, not both")
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ConfigurationError(f"at= needs a datetime with a time zone, not {at!r}")
        return max(0.0, (at - datetime.now(at.tzinfo)).total_seconds())
    if delay is None:
        return 0.0
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
        raise ConfigurationError(f"delay must be seconds >= 0 or a timedelta, not {delay!r}")
    return float(seconds)
