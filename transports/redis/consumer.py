"""What the Redis consumers share: their fates (acks, dead letters, retries), over
:class:`~transports.redis.consumer_base.ConsumerBase`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio

from transports._exceptions import TransportError

from .._values import Delivery, Failure, check_delay
from .consumer_base import ConsumerBase
from .keys import digest
from .scripts import Letter, dead_letter

__all__ = ["RedisConsumer"]


class RedisConsumer(ConsumerBase):
    """Base of the list, stream and pub/sub consumers of a Redis transport."""

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
