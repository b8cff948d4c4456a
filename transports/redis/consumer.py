"""What the Redis consumers share: their fates (acks, dead letters, retries), over
:class:`~transports.redis.consumer_base.ConsumerBase`."""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from typing import Any

import trio

from transports._exceptions import ActorsError, CommandError, ConfigurationError, TransportError

from .._values import (
    Delivery,
    FailedAttempt,
    Failure,
    MailboxSpec,
    Outcome,
    Settlement,
    Verdict,
    check_delay,
)
from .client import RAW
from .consumer_base import ConsumerBase
from .keys import digest
from .scripts import Attempt, Letter, dead_letter, fail
from .sends import send_commands

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

    def _holding(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        """Those of ``deliveries`` this consumer still holds (all, unless its ledger
        knows better)."""
        return deliveries

    def _release_commands(self, deliveries: Sequence[Delivery]) -> list[tuple[Any, ...]]:
        """The commands that hand back ``deliveries`` (held ones), in order, to pipeline
        after others (none when there is nothing to hand back); :meth:`_released` must
        follow their success."""
        return []

    def _released(self, deliveries: Sequence[Delivery]) -> None:
        """The commands of :meth:`_release_commands` ran: forget ``deliveries`` locally."""
        for delivery in deliveries:
            self._forget(delivery)

    async def settle(self, settlement: Settlement) -> dict[MailboxSpec, ActorsError]:
        """Store the results, then ack, then release: see :meth:`Consumer.settle`.

        On a client whose batches keep their order (one Redis server), all in one
        write on one connection: the server runs the commands in order, so the acks
        run only after every result was stored or refused, and the releases last.
        On a cluster the targets may live on other nodes, whose order nothing
        guarantees: the results are sent first, then the acks and releases.

        Raises:
            TransportError: the store failed (a ``WRONGTYPE`` of the mailbox names its
                key); call again (results may be stored twice).
            ClosedError: the consumer or the transport is closed.
        """
        self._check_open()
        acks = self._holding(settlement.acks)
        releases = self._holding(settlement.releases)
        sharded = self._client.features.sharded_pubsub
        refused: dict[MailboxSpec, ActorsError] = {}
        targets: list[MailboxSpec] = []
        sends: list[list[tuple[Any, ...]]] = []
        for spec, payloads in settlement.results.items():
            try:
                commands = send_commands(spec, payloads, sharded=sharded)
            except ConfigurationError as exc:
                refused[spec] = exc
                continue
            if commands:
                targets.append(spec)
                sends.append(commands)
        errors: Sequence[ActorsError | None]
        if self._client.features.ordered_batches:
            errors = await self._settle_in_one_write(sends, acks, releases)
        else:
            errors = [await self._send_apart(commands) for commands in sends]
            await self.ack(acks)
            await self._release_apart(releases)
        for spec, error in zip(targets, errors, strict=True):
            if error is not None:
                refused[spec] = error
        return refused

    async def _send_apart(self, commands: Sequence[tuple[Any, ...]]) -> ActorsError | None:
        """Run one target's ``commands`` on their own; the target's refusal, or None.

        Raises:
            TransportError: the store failed (not a refusal).
        """
        self._check_open()
        client = self._client
        try:
            if len(commands) == 1:
                await client.execute_command(*commands[0], **RAW)
            else:
                async with client.pipeline(transaction=False) as pipe:
                    for command in commands:
                        pipe.execute_command(*command, **RAW)
                    await pipe.execute()
        except CommandError as exc:
            return exc
        return None

    async def _release_apart(self, deliveries: Sequence[Delivery]) -> None:
        """Hand back ``deliveries`` in one call of their own.

        Raises:
            TransportError: the store failed; they come back after the lease.
        """
        commands = self._release_commands(deliveries)
        if not commands:
            await trio.lowlevel.checkpoint()
            return
        client = self._client
        replies: list[Any] = await self._guarded(lambda: client.batch(commands))
        failed = [r for r in replies if isinstance(r, TransportError)]
        if failed:
            raise await self._named(failed[0])
        self._released(deliveries)

    async def _settle_in_one_write(
        self,
        sends: Sequence[Sequence[tuple[Any, ...]]],
        acks: Sequence[Delivery],
        releases: Sequence[Delivery],
    ) -> list[TransportError | None]:
        """Run each group of commands of ``sends`` (those that store one target's
        results), then ack ``acks``, then release ``releases``: in one write (the
        client's batch), which the server runs in order. Returns each group's first
        error (None: stored).

        Raises:
            TransportError: the acks or releases failed (a ``WRONGTYPE`` names its
                key); results may be stored.
            ClosedError: the consumer or its transport is closed.
        """
        commands = [command for group in sends for command in group]
        ack_commands = self._ack_commands(acks)
        release_commands = self._release_commands(releases)
        commands += ack_commands + release_commands
        if not commands:
            await self.ack(acks)  # a no-op, but it checks the consumer is open
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
        ack_replies = replies[start : start + len(ack_commands)]
        release_replies = replies[start + len(ack_commands) :]
        ack_failed = next((r for r in ack_replies if isinstance(r, TransportError)), None)
        release_failed = next((r for r in release_replies if isinstance(r, TransportError)), None)
        # What was made is forgotten even if the rest failed: made again, a release
        # could take back an entry another consumer has claimed since.
        if release_commands and release_failed is None:
            self._released(releases)
        if ack_failed is None and not self._acks_done(acks, ack_replies):
            await self.ack(acks)  # refused as sent: the ack knows why
        failed = ack_failed or release_failed
        if failed is not None:
            raise await self._named(failed)
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

    async def fail(self, attempts: Sequence[FailedAttempt]) -> Sequence[Outcome]:
        """Count each failed attempt and decide its fate (see :meth:`Consumer.fail`),
        all in one script (one round trip, atomic).

        A retry waits in a sorted set scored by due time (server clock); any consumer
        of the mailbox (of the group, for a stream) delivers it when due. The dead
        letter records ``attempts`` and ``dead_at`` (the server's time).

        Raises:
            ConfigurationError: a negative delay (nothing was done).
            TransportError: the store failed; the messages stay unacked.
            ClosedError: the consumer or its transport is closed.
        """
        for attempt in attempts:
            if attempt.delay is not None:
                check_delay(attempt.delay)
        if not attempts:
            self._check_open()
            await trio.lowlevel.checkpoint()
            return []
        stream = self.kind == "stream"
        script_attempts = [
            Attempt(
                attempt.delivery.payload,
                attempt.failure,
                self._failure_field(attempt.delivery),
                attempt.delivery.attempt,
                attempt.delivery.id if stream else "",
                None if attempt.delay is None else max(0, round(attempt.delay * 1000)),
                attempt.max_deliveries,
                secrets.token_hex(8),
            )
            for attempt in attempts
        ]
        for attempt in attempts:
            self._counting(attempt.delivery)
        replies = await self._guarded(
            lambda: fail(
                self._client,
                self._keys,
                kind=self.kind,
                consumer=self._name,
                group=self._spec.group_name if stream else "",
                maxlen=self._spec.dead_maxlen,
                held=self.kind == "list" and self._spec.durable,
                attempts=script_attempts,
            )
        )
        outcomes = [
            Outcome(Verdict(verdict), count, dead_id) for verdict, count, dead_id in replies
        ]
        due = math.inf
        for attempt, outcome in zip(attempts, outcomes, strict=True):
            if outcome.verdict is not Verdict.HELD:
                self._forget(attempt.delivery)
            if outcome.verdict is Verdict.RETRIED and attempt.delay is not None:
                due = min(due, attempt.delay)
        if due < math.inf:
            self._retry_due(trio.current_time() + due)
        return outcomes

    def _counting(self, delivery: Delivery) -> None:
        """A failure of ``delivery`` is being counted in the store."""

    def _retry_due(self, when: float) -> None:
        """A retry falls due at ``when`` (trio time): look again by then."""
