"""The base of the Redis consumers: lifecycle, errors named, keep-alive, blocking reads."""

from __future__ import annotations

import enum
import logging
import math
import re
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from transports._exceptions import (
    ClosedError,
    CommandError,
    ConfigurationError,
    TransportError,
)

from .._base import BrokenConsumerError, Consumer
from .._values import MailboxSpec
from .client import RAW, BlockingConnection
from .host import ConsumerHost
from .keys import Keys

__all__ = ["CLOSE_TIMEOUT", "ConsumerBase", "ConsumerState", "logger"]

logger = logging.getLogger("transports.redis")


MAX_BLOCK = 5.0
"""The longest a blocking read waits before the consumer looks around again (seconds)."""

_BLOCK_GRACE = 10.0  # how much longer than its own timeout a blocking reply may take
CLOSE_TIMEOUT = 2.0  # the longest the last words of a closing consumer may take

# What a script's type check (``wrong_type`` in lua/prelude.lua) says, within its reply.
_NAMED_KEY = re.compile(r"WRONGTYPE key '.*' holds a \w+, not a \w+")


class ConsumerState(enum.Enum):
    """A consumer is open from the end of its setup until its ``async with`` block ends."""

    OPENING = "opening"
    OPEN = "open"
    CLOSED = "closed"


class ConsumerBase(Consumer):
    """Base of the list, stream and pub/sub consumers of a Redis transport: what they
    share but their fates (see :class:`~transports.redis.consumer.RedisConsumer`)."""

    kind = "list"

    def __init__(self, host: ConsumerHost, spec: MailboxSpec, name: str) -> None:
        self._host = host
        self._client = host.client
        self._spec = spec
        self._name = name
        self._keys = Keys(spec.name)
        self._state = ConsumerState.OPENING
        # Blocking reads wait on a connection of their own, on the mailbox's node.
        self._blocking: BlockingConnection = self._client.blocking(self._keys.mailbox)
        self._background: trio.CancelScope | None = None
        self._broken: Exception | None = None  # what killed the keep-alive
        self._abandoned = False
        self._close_deadline = math.inf

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} of {self._spec} {self._state.value}>"

    @property
    def name(self) -> str:
        """This consumer's name."""
        return self._name

    @property
    def spec(self) -> MailboxSpec:
        """The mailbox this consumer reads."""
        return self._spec

    @property
    def state(self) -> ConsumerState:
        """Opening, open or closed."""
        return self._state

    # -- lifecycle, driven by the context manager of RedisTransport.consumer -------------

    @abstractmethod
    async def _setup(self) -> None:
        """Prepare the mailbox and start the background task, if any.

        Raises:
            TransportError: the store failed.
        """

    async def _teardown(self) -> None:
        """Last words before closing (runs shielded, with a short deadline), unless the
        consumer was abandoned."""
        await trio.lowlevel.checkpoint()

    def abandon(self) -> None:
        """Give up the name: closing runs no close script (they would hand back, and
        reset, what another process holds under the same name)."""
        self._abandoned = True

    def close_by(self, deadline: float) -> None:
        """Have closing finish its last words by ``deadline`` (trio time) at the latest:
        what it did not hand back by then comes back after the lease."""
        self._close_deadline = deadline

    def _close(self) -> None:
        self._state = ConsumerState.CLOSED
        if self._background is not None:
            self._background.cancel()
        self._blocking.close()

    async def _abort(self) -> None:
        """Close now, because the transport closes: blocked calls raise ClosedError."""
        self._close()
        await trio.lowlevel.checkpoint()

    def _check_open(self) -> None:
        if self._state is ConsumerState.CLOSED or self._host.closed:
            raise ClosedError(f"consumer {self._name!r} of {self._spec} is closed")
        if self._broken is not None:
            raise BrokenConsumerError(
                f"consumer {self._name!r} of {self._spec} is broken: its keep-alive died of "
                f"{type(self._broken).__name__}: {self._broken}"
            ) from self._broken

    def _closed_error(self, exc: BaseException) -> ClosedError | None:
        """A ClosedError to raise instead of ``exc`` if we were closed meanwhile."""
        if self._state is ConsumerState.CLOSED or self._host.closed:
            error = ClosedError(f"consumer {self._name!r} of {self._spec} was closed")
            error.__cause__ = exc
            return error
        return None

    async def _guarded(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``call``; a failure caused by closing becomes :class:`ClosedError`, and
        a ``WRONGTYPE`` error names the key (see :meth:`_named`)."""
        self._check_open()
        try:
            return await call()
        except TransportError as exc:
            closed = self._closed_error(exc)
            if closed is not None:
                raise closed from exc
            named = await self._named(exc)
            if named is not exc:
                raise named from exc
            raise

    def _key_types(self) -> dict[str, str]:
        """The keys this consumer uses, with the type each must have (or be missing)."""
        return {self._keys.dead: "stream"}

    async def _named(self, exc: TransportError) -> TransportError:
        """``exc``, or for a ``WRONGTYPE`` error one that says which key of the mailbox
        holds what: ``list:jobs: WRONGTYPE key '{jobs}:dead' holds a hash, not a stream``.

        Scripts name the key themselves; Redis's own ``WRONGTYPE`` (a plain or
        blocking command) names none, so the keys are looked at (``TYPE``).
        """
        if not isinstance(exc, CommandError) or exc.code != "WRONGTYPE":
            return exc
        prefix = f"{self._spec}: "
        if str(exc).startswith(prefix):
            return exc  # named already (by a nested call)
        found = _NAMED_KEY.search(str(exc))
        what = found.group(0) if found is not None else await self._wrong_key()
        return CommandError(prefix + (what or str(exc)), code="WRONGTYPE")

    async def _wrong_key(self) -> str | None:
        """Which key holds the wrong type (None if none does now, or if looking fails)."""
        try:
            for key, wanted in self._key_types().items():
                found = await self._client.execute_command(b"TYPE", key, **RAW)
                found = found.decode() if isinstance(found, bytes) else str(found)
                if found not in ("none", wanted):
                    return f"WRONGTYPE key '{key}' holds a {found}, not a {wanted}"
        except TransportError as exc:
            logger.debug("%r: cannot tell which key has the wrong type: %s", self, exc)
        return None

    def _keep_alive(self, action: Callable[[], Awaitable[object]]) -> None:
        """Run ``action`` every ``lease/3`` seconds until the consumer closes, in the
        nursery of the transport (see :class:`ConsumerHost`).

        Outages and errors the store answers are logged and ridden out (the
        consumer's own calls meet them too). Any other error ends the keep-alive and
        breaks the consumer, loudly: it is logged once, and every call of the
        consumer from then on raises :class:`BrokenConsumerError` naming it.
        """
        scope = self._background = trio.CancelScope()
        self._host.start_soon(
            self._periodically, scope, self._spec.lease / 3, action, name=f"{self!r} keep-alive"
        )

    async def _periodically(
        self, scope: trio.CancelScope, interval: float, action: Callable[[], Awaitable[object]]
    ) -> None:
        with scope:
            while True:
                await trio.sleep(interval)
                try:
                    await action()
                except ClosedError:
                    return
                except TransportError as exc:
                    logger.debug("%r: keep-alive failed: %s", self, exc)
                except Exception as exc:
                    # Not raised into the nursery: that would cancel the keep-alives of
                    # every other consumer of the transport.
                    self._broken = exc
                    logger.error(
                        "%r: keep-alive died; the consumer fails its next call", self, exc_info=exc
                    )
                    return

    # -- blocking reads on a dedicated connection ----------------------------------------

    async def _block(
        self,
        timeout: float,
        leading: Sequence[tuple[Any, ...]],
        blocking: tuple[Any, ...],
        *followers: tuple[Any, ...],
    ) -> tuple[list[Any], Any, list[Any]]:
        """Send ``leading``, ``blocking`` and ``followers`` on this consumer's own
        connection, in one write where it can (see :class:`BlockingConnection`); return
        the replies of the leading commands, of the blocking one, and of the followers.

        The server runs the leading commands at once, the blocking one next, and the
        followers as soon as it returns. A follower's error reply becomes -1 (its
        count is unknown: the caller looks again). Cancelling it closes the
        connection (the next call opens a new one).

        Raises:
            CommandError: a leading or the blocking command failed (the blocking
                one may have run: the caller must look again at what it holds).
            TransportTimeout: the reply is long overdue (the connection closes).
            TransportError: the store failed (the connection closes).
        """
        commands = [*leading, blocking, *followers]
        replies = await self._blocking.batch(commands, timeout + _BLOCK_GRACE)
        lead = len(leading)
        for reply in replies[: lead + 1]:
            if isinstance(reply, TransportError):
                raise reply
        rest = [-1 if isinstance(reply, TransportError) else reply for reply in replies[lead + 1 :]]
        return replies[:lead], replies[lead], rest

    @staticmethod
    def _bounded(seconds: float) -> float:
        """A blocking timeout: at least 10 ms (0 would mean forever), at most MAX_BLOCK."""
        if math.isnan(seconds):
            return MAX_BLOCK
        return min(MAX_BLOCK, max(0.01, seconds))

    @staticmethod
    def _check_max_count(max_count: int) -> None:
        if max_count < 1:
            raise ConfigurationError(f"fetch needs max_count >= 1, not {max_count!r}")
