"""What the Redis consumers share: lifecycle, blocking reads, dead letters."""

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
from .._values import Delivery, Failure, MailboxSpec, check_delay
from .client import RAW, BlockingConnection
from .host import ConsumerHost
from .keys import Keys, digest
from .scripts import Letter, dead_letter

__all__ = ["CLOSE_TIMEOUT", "ConsumerState", "RedisConsumer", "logger"]

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


class RedisConsumer(Consumer):
    """Base of the list, stream and pub/sub consumers of a Redis transport."""

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

    # -- fates shared by all kinds -------------------------------------------------------

    def _failure_field(self, delivery: Delivery) -> str:
        """The field of ``delivery`` in ``{name}:failures`` ('' when none is kept)."""
        return digest(delivery.payload)

    def _forget(self, delivery: Delivery) -> None:
        """Stop tracking ``delivery`` locally (it was acked one way or another)."""

    def _ack_commands(self, deliveries: Sequence[Delivery]) -> list[tuple[Any, ...]]:
        """The commands that ack ``deliveries``, to pipeline after others (none when
        acks are no-ops); :meth:`_acked` must follow their success."""
        return []

    def _acked(self, deliveries: Sequence[Delivery]) -> None:
        """The commands of :meth:`_ack_commands` ran: forget ``deliveries`` locally."""
        for delivery in deliveries:
            self._forget(delivery)

    async def ack_after(
        self, sends: Sequence[Sequence[tuple[Any, ...]]], deliveries: Sequence[Delivery]
    ) -> list[TransportError | None]:
        """Run each group of commands of ``sends`` (those that store one target's
        results), then ack ``deliveries``: in one write (the client's batch), which the
        server runs in order, so the acks run only after every result was stored or
        refused. Returns each group's first error (None: stored).

        Only for a client whose batches keep their order (``features.ordered_batches``).

        Raises:
            TransportError: the acks failed (a ``WRONGTYPE`` names its key); results
                may be stored. Calling again is safe (results may be stored twice).
            ClosedError: the consumer or its transport is closed.
        """
        commands = [command for group in sends for command in group]
        acks = self._ack_commands(deliveries)
        commands += acks
        if not commands:
            await self.ack(deliveries)  # a no-op, but it checks the consumer is open
            return [None] * len(sends)
        client = self._client
        replies: list[Any] = await self._guarded(lambda: client.batch(commands))
        errors: list[TransportError | None] = []
        start = 0
        for group in sends:
            end = start + len(group)
            errors.append(
                next((r for r in replies[start:end] if isinstance(r, TransportError)), None)
            )
            start = end
        ack_replies = replies[len(commands) - len(acks) :]
        failed = [r for r in ack_replies if isinstance(r, TransportError)]
        if failed:
            raise await self._named(failed[0])
        if not self._acks_done(deliveries, ack_replies):
            await self.ack(deliveries)  # refused as sent: the ack knows why
        return errors

    def _acks_done(self, deliveries: Sequence[Delivery], replies: Sequence[Any]) -> bool:
        """The commands of :meth:`_ack_commands` replied ``replies`` (no errors):
        forget ``deliveries`` and return True, or return False when the store
        refused them (then :meth:`ack` makes them)."""
        self._acked(deliveries)
        return True

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> str | None:
        """Append ``delivery`` to ``{name}:dead`` with ``failure``, ack it, forget its count.

        Returns the dead letter's id, or None when this (at-least-once list) consumer
        no longer held the message (nothing done).

        The dead-letter stream keeps the newest ``spec.dead_maxlen`` letters.

        One script, so the three happen together or not at all. The dead letter
        records ``attempts``: the larger of ``delivery.attempt`` and the failures
        recorded, and ``dead_at``: the server's time (seconds since the epoch).

        Raises:
            TransportError: the store failed; the message stays unacked.
            ClosedError: the consumer or its transport is closed.
        """
        (dead_id,) = await self.dead_letter_many([(delivery, failure)])
        return dead_id

    async def dead_letter_many(
        self, letters: Sequence[tuple[Delivery, Failure]]
    ) -> list[str | None]:
        """:meth:`dead_letter` for each ``(delivery, failure)`` of ``letters``, all in
        one script (one round trip, atomic); return their dead letter ids, in order.

        Raises:
            TransportError: the store failed; the messages stay unacked.
            ClosedError: the consumer or its transport is closed.
        """
        if not letters:
            return []
        stream = self.kind == "stream"
        dead_ids: list[str | None] = await self._guarded(
            lambda: dead_letter(
                self._client,
                self._keys,
                kind=self.kind,
                consumer=self._name,
                group=self._spec.group_name if stream else "",
                maxlen=self._spec.dead_maxlen,
                # A list message taken over meanwhile (its lease lapsed) is not buried.
                held=self.kind == "list" and self._spec.durable,
                letters=[
                    Letter(
                        delivery.payload,
                        failure,
                        self._failure_field(delivery),
                        delivery.attempt,
                        delivery.id if stream else "",
                    )
                    for delivery, failure in letters
                ],
            )
        )
        for delivery, _ in letters:
            self._forget(delivery)
        return dead_ids

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        """Ack ``delivery`` now and deliver it again in ``delay`` seconds.

        The retry waits in a sorted set scored by due time (server clock); any
        consumer of the mailbox (of the group, for a stream) delivers it when due,
        and a waiting fetch looks again by then. Its failure count is kept: the
        next ``attempt`` is 1 + the failures recorded.

        Raises:
            ConfigurationError: ``delay`` is negative.
            TransportError: the store failed; the message stays unacked.
            ClosedError: the consumer or its transport is closed.
        """
        check_delay(delay)
        milliseconds = max(0, round(delay * 1000))
        await self._guarded(lambda: self._retry(delivery, milliseconds))
        self._forget(delivery)
        self._retry_due(trio.current_time() + delay)

    async def _retry(self, delivery: Delivery, milliseconds: int) -> None:
        """Ack ``delivery`` and schedule it ``milliseconds`` from now, atomically."""
        raise NotImplementedError

    async def fail(self, delivery: Delivery, delay: float) -> int:
        """Count a failed attempt at ``delivery`` and make it due again in ``delay``
        seconds: :meth:`record_failure` and :meth:`retry_later` in one script.

        Raises:
            ConfigurationError: ``delay`` is negative.
            TransportError: the store failed; the message stays unacked.
            ClosedError: the consumer or its transport is closed.
        """
        (count,) = await self.fail_many([(delivery, delay)])
        return count

    async def fail_many(self, failures: Sequence[tuple[Delivery, float]]) -> list[int]:
        """:meth:`fail` for each ``(delivery, delay)`` of ``failures``, all in one
        script (one round trip, atomic); return their failed attempts so far, in order.

        Raises:
            ConfigurationError: a negative delay (nothing was done).
            TransportError: the store failed; the messages stay unacked.
            ClosedError: the consumer or its transport is closed.
        """
        for _, delay in failures:
            check_delay(delay)
        if not failures:
            return []
        timed = [(delivery, max(0, round(delay * 1000))) for delivery, delay in failures]
        counts = await self._guarded(lambda: self._fail(timed))
        for delivery, _ in failures:
            self._forget(delivery)
        self._retry_due(trio.current_time() + min(delay for _, delay in failures))
        return [
            delivery.attempt if count is None else count
            for (delivery, _), count in zip(failures, counts, strict=True)
        ]

    async def _fail(self, failures: Sequence[tuple[Delivery, int]]) -> list[int | None]:
        """Count the failed attempts and schedule each ``(delivery, milliseconds)`` from
        now, in one script; return each one's count (None: no longer ours)."""
        raise NotImplementedError

    def _retry_due(self, when: float) -> None:
        """A retry falls due at ``when`` (trio time): look again by then."""
