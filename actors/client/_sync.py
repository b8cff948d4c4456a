"""A blocking client for code outside trio: scripts, WSGI apps, Django views, threads."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from redis import Redis

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

__all__ = ["Client"]


class Client:
    """Send messages to actors, and ask them, from synchronous code.

    ``url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL (default: the
    ``ActorSystem``'s default); or pass ``redis=``, a ``redis.Redis`` of your own (its
    pool is shared and not closed by :meth:`close`). ``system`` lets targets be named
    by actor or mailbox name, and gives replies their handler's return type; without
    it, targets are addresses (``"list:jobs"``), mailboxes, or actor classes. The
    client is thread-safe (redis-py's pool is) and runs no background task: an ask
    waits on a reply list of its own.

    Errors are the runtime's: :class:`ConfigurationError` for an unknown target,
    :class:`CodecError` for a message that cannot be encoded, the
    :class:`TransportError` tree for Redis failures (redis-py's errors chained),
    :class:`AskTimeout` and :class:`RemoteError` from :meth:`ask`.
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

    def tell(
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
        self._tell(target, [msg], headers, key, send_delay(delay, at))

    def tell_many(
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
        self._tell(target, msgs, headers, None, send_delay(delay, at))

    def _tell(
        self,
        target: Any,
        msgs: Sequence[Any],
        headers: Mapping[str, str] | None,
        key: str | None,
        seconds: float,
    ) -> None:
        if not seconds:
            self._execute(self._targets.tell_commands(target, msgs, headers, key))
            return
        # Held in Redis until due: the payloads, then the index the runtimes promote from.
        sends = self._targets.sends(target, msgs, headers, key)
        with store_errors(self._url):
            for spec, group, routed in sends:
                command = tell_commands(spec, group, routed, seconds)[0]
                due = self._redis.execute_command(*command)  # type: ignore[no-untyped-call]
                self._redis.execute_command(*due_index_command(spec, due))  # type: ignore[no-untyped-call]

    def ask(
        self,
        target: Any,
        msg: Any,
        *,
        timeout: float = 5.0,
        reply_type: Any = None,
        headers: Mapping[str, str] | None = None,
        key: str | None = None,
    ) -> Any:
        """Send ``msg`` to ``target`` and wait up to ``timeout`` seconds for the handler's
        return value, structured as ``reply_type`` (default: the handler's return
        annotation where the target's class is known, else plain JSON data).

        Raises:
            AskTimeout: no reply in time (a late one is dropped with its list, by Redis).
            RemoteError: the handler failed for good or rejected the message.
            CodecError: the reply does not fit the expected type.
            ConfigurationError, TransportError: as for :meth:`tell`.
        """
        check_timeout(timeout)
        deadline = time.monotonic() + timeout
        request = self._targets.ask_request(
            target,
            msg,
            reply_type=reply_type,
            headers=headers,
            max_payload=self._max_payload,
            key=key,
        )
        self._execute(request.commands)
        while (left := deadline - time.monotonic()) > 0:
            with store_errors(self._url):
                popped = self._redis.blpop([request.reply_list], timeout=left)
            if popped is None:
                break
            matched, value = request.answer(popped[1])
            if matched:
                return value
        raise request.timed_out(timeout)

    def close(self) -> None:
        """Close the connections this client opened (not those of a ``redis=`` given)."""
        if self._owned:
            self._redis.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _execute(self, commands: list[tuple[Any, ...]]) -> None:
        with store_errors(self._url):
            if len(commands) == 1:
                self._redis.execute_command(*commands[0])  # type: ignore[no-untyped-call]
                return
            pipe = self._redis.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            pipe.execute()
