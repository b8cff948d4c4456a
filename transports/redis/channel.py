"""The pub/sub mailbox: SUBSCRIBE or PSUBSCRIBE on a dedicated connection, at most once."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import trio

from transports._exceptions import ConfigurationError, TransportError

from .._values import Delivery, check_delay
from .client import RAW, PubSub, Redis
from .consumer import RedisConsumer

__all__ = ["ChannelConsumer", "republish_sharded"]


class ChannelConsumer(RedisConsumer):
    """A subscriber of a channel, or of a glob pattern of channels (``spec.pattern``).

    It receives what is published while it is subscribed, each delivery with the
    channel it came through. Delivery is at-most-once: nothing is stored, so
    ``ack`` does nothing, ``record_failure`` returns ``delivery.attempt`` (1),
    and ``retry_later`` drops the message. ``dead_letter`` still records it in
    ``{name}:dead``. When the connection breaks, ``fetch`` raises the client's
    error; the next ``fetch`` reconnects and subscribes again (what was published
    in between is lost). On a Redis Cluster a channel is sharded (SSUBSCRIBE on the
    node of its slot, SPUBLISH to send); patterns are refused there: sharded
    pub/sub has none.
    """

    kind = "pubsub"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._pubsub: PubSub | None = None
        self._ids = itertools.count(1)

    async def _setup(self) -> None:
        if self._spec.pattern and self._client.features.sharded_pubsub:
            raise ConfigurationError(
                f"cannot subscribe to pattern {self._spec.name!r} on Redis Cluster: channel "
                "mailboxes use sharded pub/sub there, which has no patterns"
            )
        await self._subscribe()

    async def _subscribe(self) -> PubSub:
        sharded = self._client.features.sharded_pubsub
        pubsub = self._client.pubsub(key=self._spec.name)
        await pubsub.__aenter__()
        try:
            if self._spec.pattern:
                await pubsub.psubscribe(self._spec.name)
            elif sharded:
                await pubsub.ssubscribe(self._spec.name)
            else:
                await pubsub.subscribe(self._spec.name)
        except BaseException:
            await pubsub.aclose()
            raise
        self._pubsub = pubsub
        return pubsub

    async def _abort(self) -> None:
        await self._teardown()
        await super()._abort()

    async def _teardown(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await pubsub.aclose()

    async def fetch(self, max_count: int, *, ack: Sequence[Delivery] = ()) -> Sequence[Delivery]:
        """Wait for at least one message and return up to ``max_count`` already received
        (``ack`` is ignored: pub/sub acks are no-ops).

        Raises:
            ConfigurationError: ``max_count`` is below 1.
            TransportError: the connection broke (the next fetch reconnects) or
                could not be reopened.
            ClosedError: the consumer or its transport is closed.
        """
        self._check_max_count(max_count)
        return await self._guarded(lambda: self._fetch(max_count))  # type: ignore[no-any-return]

    async def _fetch(self, max_count: int) -> list[Delivery]:
        pubsub = self._pubsub or await self._subscribe()
        try:
            message = await pubsub.get_message()
            out = []
            while message is not None:
                channel = message.channel.decode("utf-8", "replace")
                delivery_id = f"{self._name}:{next(self._ids)}"
                out.append(Delivery(delivery_id, message.data, 1, channel, delivery_id))
                if len(out) == max_count:
                    break
                message = await pubsub.get_message(timeout=0)
            return out
        except TransportError:
            self._pubsub = None
            await pubsub.aclose()
            raise

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Do nothing: pub/sub messages are never redelivered.

        Raises:
            ClosedError: the consumer or its transport is closed.
        """
        self._check_open()
        await trio.lowlevel.checkpoint()

    async def record_failure(self, delivery: Delivery) -> int:
        """Count nothing and return ``delivery.attempt`` (always 1 for pub/sub).

        Raises:
            ClosedError: the consumer or its transport is closed.
        """
        self._check_open()
        await trio.lowlevel.checkpoint()
        return delivery.attempt

    def _failure_field(self, delivery: Delivery) -> str:
        return ""

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        """Drop ``delivery``: pub/sub is at-most-once and keeps nothing to retry.

        Raises:
            ConfigurationError: ``delay`` is negative.
            ClosedError: the consumer or its transport is closed.
        """
        check_delay(delay)
        self._check_open()
        await trio.lowlevel.checkpoint()


async def republish_sharded(
    client: Redis, dead: str, channel: str, ids: Sequence[str | bytes]
) -> tuple[int, list[str], list[str], list[str]]:
    """SPUBLISH the dead letters ``ids`` of ``dead`` to ``channel``, deleting each that a
    subscriber received; return how many, and the ids not found, kept as no subscriber
    received them, and kept as they hold no payload.

    The sharded pub/sub stand-in for the REPLAY script (which uses PUBLISH). Not
    atomic, which at-most-once pub/sub does not need.
    """
    replayed = 0
    missing: list[str] = []
    unheard: list[str] = []
    empty: list[str] = []
    for entry_id in ids:
        name = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        entries = await client.execute_command(b"XRANGE", dead, entry_id, entry_id, **RAW)
        if not entries:
            missing.append(name)
            continue
        fields = entries[0][1]
        payload = dict(zip(fields[::2], fields[1::2], strict=True)).get(b"payload")
        if payload is None:
            empty.append(name)
        elif not await client.execute_command(b"SPUBLISH", channel, payload, **RAW):
            unheard.append(name)  # nobody received it: the letter is all that is left
        else:
            replayed += 1
            await client.execute_command(b"XDEL", dead, entry_id, **RAW)
    return replayed, missing, unheard, empty
