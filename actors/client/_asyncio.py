"""An asyncio client: FastAPI, Starlette, Django's async views, aiohttp."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from transports import redact

from .._codec import DEFAULT_MAX_PAYLOAD
from .._messenger import send_delay
from ._common import (
    Targets,
    check_timeout,
    client_url,
    due_index_command,
    store_errors,
    tell_commands,
)

if TYPE_CHECKING:
    from .._system import ActorSystem

__all__ = ["AsyncClient"]


class AsyncClient:
    """Send messages to actors, and ask them, from asyncio code.

    The same as :class:`~actors.client.Client` (arguments, targets, errors), with
    coroutines, over ``redis.asyncio``; ``redis=`` takes a ``redis.asyncio.Redis`` of
    your own. Use it as an async context manager, or call :meth:`aclose`. Many asks
    may wait at once (each on a reply list and a pooled connection of its own); the
    ``timeout`` of :meth:`ask` bounds the send too, and cancelling a call is safe.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        redis: Redis | None = None,
        system: ActorSystem | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        url = client_url(url, redis, system)
        self._owned = redis is None
        if redis is None:
            assert url is not None  # client_url gives one when no client is
            redis = Redis.from_url(url)
        self._redis = redis
        self._url = redact(url) if url else repr(redis)
        self._targets = Targets(system)
        self._max_payload = max_payload

    async def tell(
        self,
        target: Any,
        msg: Any,
        *,
        headers: Mapping[str, str] | None = None,
        key: str | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        """Send ``msg`` to ``target``; return once Redis has it. ``key``: for a keyed
        actor, the key whose activation handles it (default: its ``key_of(msg)``). With
        ``delay`` (seconds or a timedelta) or ``at`` (a datetime with a time zone), Redis
        holds it until then (see :meth:`ActorSystem.tell <actors.ActorSystem.tell>`); a
        running system delivers it once due.

        Raises:
            ConfigurationError: unknown target, or a key where none fits; a bad ``delay``
                or ``at``, or either for pub/sub. CodecError: ``msg`` cannot be encoded.
            TransportError: Redis failed.
        """
        await self._tell(target, [msg], headers, key, send_delay(delay, at))

    async def tell_many(
        self,
        target: Any,
        msgs: Sequence[Any],
        *,
        headers: Mapping[str, str] | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        """Send ``msgs`` to ``target`` in order, in one round trip.

        Raises:
            The same as :meth:`tell`.
        """
        await self._tell(target, msgs, headers, None, send_delay(delay, at))

    async def _tell(
        self,
        target: Any,
        msgs: Sequence[Any],
        headers: Mapping[str, str] | None,
        key: str | None,
        seconds: float,
    ) -> None:
        if not seconds:
            await self._execute(self._targets.tell_commands(target, msgs, headers, key))
            return
        # Held in Redis until due: the payloads, then the index the runtimes promote from.
        sends = self._targets.sends(target, msgs, headers, key)
        with store_errors(self._url):
            for spec, group, routed in sends:
                command = tell_commands(spec, group, routed, seconds)[0]
                due = await self._redis.execute_command(*command)  # type: ignore[no-untyped-call]
                await self._redis.execute_command(*due_index_command(spec, due))  # type: ignore[no-untyped-call]

    async def ask(
        self,
        target: Any,
        msg: Any,
        *,
        timeout: float = 5.0,
        reply_type: Any = None,
        headers: Mapping[str, str] | None = None,
        key: str | None = None,
    ) -> Any:
        """Send ``msg`` to ``target`` and wait for the handler's return value; see
        :meth:`Client.ask <actors.client.Client.ask>`. ``timeout`` bounds the whole
        call, sending included.

        Raises:
            AskTimeout: no reply in time. RemoteError: the handler failed for good or
                rejected the message. CodecError: the reply does not fit the type.
            ConfigurationError, TransportError: as for :meth:`tell`.
        """
        check_timeout(timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        request = self._targets.ask_request(
            target,
            msg,
            reply_type=reply_type,
            headers=headers,
            max_payload=self._max_payload,
            key=key,
        )
        try:
            async with asyncio.timeout_at(deadline):
                await self._execute(request.commands)
                while (left := deadline - loop.time()) > 0:
                    with store_errors(self._url):
                        popped = await self._redis.blpop([request.reply_list], timeout=left)
                    if popped is None:
                        break
                    matched, value = request.answer(popped[1])
                    if matched:
                        return value
        except TimeoutError:
            pass
        raise request.timed_out(timeout)

    async def aclose(self) -> None:
        """Close the connections this client opened (not those of a ``redis=`` given)."""
        if self._owned:
            await self._redis.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _execute(self, commands: list[tuple[Any, ...]]) -> None:
        with store_errors(self._url):
            if len(commands) == 1:
                await self._redis.execute_command(*commands[0])  # type: ignore[no-untyped-call]
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                await pipe.execute()
