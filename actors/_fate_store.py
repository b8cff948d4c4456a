"""Storing the fates of a batch's failed messages: retried later, or dead-lettered
(and their askers told)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs

from transports import Consumer, Delivery, FailedAttempt, Failure, MailboxSpec, Outcome, Verdict

from ._codec import Envelope
from ._context import message_id
from ._instance_io import InstanceIO
from ._tracebacks import format_error

if TYPE_CHECKING:
    from ._actor import Actor

__all__ = ["Failed", "FateStore"]

logger = logging.getLogger("actors.actor")


@attrs.define(eq=False)
class Failed:
    """A delivery whose handler failed with ``error``, to be retried (after ``delay``,
    or the actor's ``retry_backoff`` when None) or, at ``max_deliveries``, dead-lettered.
    """

    delivery: Delivery
    envelope: Envelope
    message_id: str
    error: Exception
    delay: float | None


class FateStore:
    """The fates an instance of ``cls`` still owes the store (:attr:`failed`), and
    the calls that store them, through ``io``."""

    def __init__(self, io: InstanceIO, cls: type[Actor], spec: MailboxSpec) -> None:
        self.io = io
        self.cls = cls
        self.spec = spec
        self.path = io.path
        #: Failed deliveries whose fate (retry or dead letter) is still to be stored.
        self.failed: list[Failed] = []

    async def store_fates(self, consumer: Consumer) -> None:
        """Store the fates of the batch's failed messages, all at once: those to retry
        have their failures counted and are scheduled again (durably, in the store:
        one round trip for them all), those at their ``max_deliveries``-th attempt are
        dead-lettered, concurrently.

        So a batch's failures cost about the round trips of one, not two each: a
        burst of poison messages costs little more than the messages themselves. A
        fate not stored (a stop's deadline cut it short) leaves its message unacked:
        it comes back, its failure maybe not counted.

        Raises:
            TransportError: the store refused a write (an outage is waited out).
        """
        if not self.failed:
            return
        batch = list(self.failed)
        delays = [
            self.cls.retry_backoff.delay(failed.delivery.attempt - 1)
            if failed.delay is None
            else failed.delay
            for failed in batch
        ]
        failures = [self._failure(failed.error, failed.delivery.attempt) for failed in batch]
        attempts = [
            FailedAttempt(failed.delivery, failure, delay, self.cls.max_deliveries)
            for failed, failure, delay in zip(batch, failures, delays, strict=True)
        ]
        # One round trip: every failure counted and every fate stored together.
        outcomes = await self.io.store(lambda: consumer.fail(attempts))
        for failed, failure, delay, outcome in zip(batch, failures, delays, outcomes, strict=True):
            self.failed.remove(failed)
            if outcome.verdict in (Verdict.DEAD, Verdict.TAKEN_OVER):
                self._dead(failure, outcome, failed.error, failed.delivery, failed.message_id)
            else:
                self._retried(failed, outcome.attempts, delay)
        for failed, failure, outcome in zip(batch, failures, outcomes, strict=True):
            if outcome.verdict in (Verdict.DEAD, Verdict.TAKEN_OVER):
                await self.io.runtime.messenger.reply_error(
                    failed.envelope, failure.error_type, failure.error, self.path, failed.message_id
                )

    def _retried(self, failed: Failed, attempts: int, delay: float) -> None:
        """Tell the middleware, and log unless the handler asked for the retry."""
        self.io.observer.fate("retried", failed.message_id, attempts, failed.error)
        if failed.delay is None:
            logger.info(
                "%s: attempt %d of %d at message %s failed (%s: %s); retrying in %.3fs",
                self.path,
                attempts,
                self.cls.max_deliveries,
                failed.message_id,
                type(failed.error).__qualname__,
                failed.error,
                delay,
                extra={
                    "event": "retry",
                    "path": self.path,
                    "mailbox": str(self.spec),
                    "message_id": failed.message_id,
                    "attempt": attempts,
                },
            )

    def _dead(
        self,
        failure: Failure,
        outcome: Outcome,
        error: BaseException | None,
        delivery: Delivery,
        message_id: str,
        cause: BaseException | None = None,
    ) -> None:
        """Log a message's dead letter (or that another consumer had it), and tell the
        middleware of a dead letter made."""
        self._log_dead_letter(failure, outcome.dead_letter_id, error)
        if outcome.dead_letter_id is not None:
            self.io.observer.fate("dead_lettered", message_id, delivery.attempt, error or cause)

    async def count_failure(
        self, consumer: Consumer, delivery: Delivery, envelope: Envelope, exc: BaseException
    ) -> bool:
        """Count a failed attempt at ``delivery`` whose message stays held (the
        instance fails); at the actor's ``max_deliveries`` dead-letter it instead, in
        the same store call, and answer its asker. True when it was dead-lettered (or
        another consumer had it)."""
        failure = self._failure(exc, delivery.attempt)
        attempt = FailedAttempt(delivery, failure, None, self.cls.max_deliveries)
        (outcome,) = await self.io.store(lambda: consumer.fail([attempt]))
        if outcome.verdict not in (Verdict.DEAD, Verdict.TAKEN_OVER):
            return False
        ident = message_id(envelope, delivery)
        self._dead(failure, outcome, exc, delivery, ident)
        await self.io.runtime.messenger.reply_error(
            envelope, failure.error_type, failure.error, self.path, ident
        )
        return True

    async def give_up(
        self,
        consumer: Consumer,
        delivery: Delivery,
        envelope: Envelope,
        exc: BaseException,
        attempts: int,
        reason: str = "",
    ) -> None:
        failure = self._failure(exc, attempts, reason)
        await self.dead_letter(
            consumer, delivery, failure, exc, message_id=message_id(envelope, delivery)
        )
        await self.io.runtime.messenger.reply_error(
            envelope, failure.error_type, failure.error, self.path, message_id(envelope, delivery)
        )

    def _failure(self, exc: BaseException, attempts: int, reason: str = "") -> Failure:
        """Why a message is dead-lettered: ``exc``, after ``attempts``."""
        return Failure(
            reason=reason or f"failed {attempts} times",
            actor=self.path,
            error_type=type(exc).__qualname__,
            error=str(exc),
            traceback=format_error(exc),
        )

    async def dead_letter(
        self,
        consumer: Consumer,
        delivery: Delivery,
        failure: Failure,
        error: BaseException | None = None,
        *,
        cause: BaseException | None = None,
        message_id: str | None = None,
    ) -> None:
        """Dead-letter ``delivery`` and log it once (see :meth:`_log_dead_letter`), with
        ``error``'s traceback; tell the middleware, with ``error`` or ``cause`` (no
        traceback logged) and ``message_id`` (default: the delivery's id)."""
        attempt = FailedAttempt(delivery, failure, max_deliveries=1)
        (outcome,) = await self.io.store(lambda: consumer.fail([attempt]))
        self._dead(failure, outcome, error, delivery, message_id or delivery.id, cause)

    def _log_dead_letter(
        self, failure: Failure, dead_id: str | None, error: BaseException | None
    ) -> None:
        """Log a message dead-lettered as ``dead_id`` (None: another consumer had taken
        it over, nothing was done), with ``error``'s traceback if given (the only
        traceback a failing message logs: its retries log one line each)."""
        if dead_id is None:
            logger.warning(
                "%s: a message of %s was not dead-lettered: another consumer took it over",
                self.path,
                self.spec,
            )
            return
        # The dead letter's id, and no other: the one `dead-letters replay --id` takes.
        logger.error(
            "%s: message dead-lettered from %s as %s: %s%s",
            self.path,
            self.spec,
            dead_id,
            failure.reason,
            f" ({failure.error_type}: {failure.error})" if failure.error_type else "",
            exc_info=error,
            extra={
                "event": "dead_letter",
                "path": self.path,
                "mailbox": str(self.spec),
                "dead_letter_id": dead_id,
            },
        )
