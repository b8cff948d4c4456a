"""``async with transport.consumer(spec, name)``: a Redis consumer's setup and close."""

from __future__ import annotations

from types import TracebackType

import trio

from transports._exceptions import TransportError

from .consumer import RedisConsumer
from .consumer_base import CLOSE_TIMEOUT, ConsumerState, logger

__all__ = ["ConsumerContext"]


class ConsumerContext:
    """``async with transport.consumer(spec, name) as consumer``: set up, then close.

    Leaving the block stops the consumer's keep-alive task and closes it without
    acking anything; an exception from the body passes through unchanged.
    """

    __slots__ = ("_consumer",)

    def __init__(self, consumer: RedisConsumer) -> None:
        self._consumer = consumer

    async def __aenter__(self) -> RedisConsumer:
        consumer = self._consumer
        consumer._check_open()
        try:
            await consumer._setup()
        except TransportError as exc:
            try:
                named = await consumer._named(exc)
            finally:
                consumer._close()
            if named is not exc:
                raise named from exc
            raise
        except BaseException:
            consumer._close()
            raise
        consumer._state = ConsumerState.OPEN
        consumer._host.consumers.add(consumer)
        return consumer

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        consumer = self._consumer
        with trio.CancelScope(shield=True):
            if not consumer._host.closed and not consumer._abandoned:
                limit = trio.current_time() + CLOSE_TIMEOUT
                with trio.move_on_at(min(limit, consumer._close_deadline)):
                    try:
                        await consumer._teardown()
                    except TransportError as error:
                        logger.debug("%r: closing failed: %s", consumer, error)
            consumer._close()
            consumer._host.consumers.discard(consumer)
