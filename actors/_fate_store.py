"""Storing the fates of a batch's failed messages: retried later, or dead-lettered
(and their askers told)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
import trio

from transports import Consumer, Delivery, Failure, MailboxSpec

from ._codec import Envelope
from ._context import message_id
from ._groups import sole_error
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
        retries, last = [], []
        for failed in self.failed:
            if failed.delivery.attempt >= self.cls.max_deliveries:
                last.append(failed)
            else:
                retries.append(failed)
        try:
            async with trio.open_nursery() as nursery:
                if retries:
                    nursery.start_soon(self._store_retries, consumer, retries)
                if last:
                    nursery.start_soon(self._store_dead, consumer, last)
        except BaseExceptionGroup as group:
            # One refusal is raised as itself, as it would be from the handler's task.
            error = sole_error(group, Exception)
            if error is None:
                raise
            raise error from None

    async def _store_dead(self, consumer: Consumer, last: list[Failed]) -> None:
        """Dead-letter messages that failed their last attempt, in one store call
        (dead-lettering counts the failure too), then answer those asked."""
        failures = [self._failure(failed.error, failed.delivery.attempt) for failed in last]
        letters = [
            (failed.delivery, failure) for failed, failure in zip(last, failures, strict=True)
        ]
        dead_ids = await self.io.store(lambda: consumer.dead_letter_many(letters))
        for failed, failure, dead_id in zip(last, failures, dead_ids, strict=True):
            self.failed.remove(failed)
            self._log_dead_letter(failure, dead_id, failed.error)
            if dead_id is not None:
                self.io.observer.fate(
                    "dead_lettered", failed.message_id, failed.delivery.attempt, failed.error
                )
        for failed, failure in zip(last, failures, strict=True):
            await self.io.runtime.messenger.reply_error(
                failed.envelope, failure.error_type, failure.error, self.path, failed.message_id
            )

    async def _store_retries(self, consumer: Consumer, retries: list[Failed]) -> None:
        delays = [
            self.cls.retry_backoff.delay(failed.delivery.attempt - 1)
            if failed.delay is None
            else failed.delay
            for failed in retries
        ]
        # One round trip: every failure counted and every retry scheduled together.
        failures = [(failed.delivery, delay) for failed, delay in zip(retries, delays, strict=True)]
        counts = await self.io.store(lambda: consumer.fail_many(failures))
        for failed, delay, attempts in zip(retries, delays, counts, strict=True):
            self.failed.remove(failed)
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
        dead_id = await self.io.store(lambda: consumer.dead_letter(delivery, failure))
        self._log_dead_letter(failure, dead_id, error)
        if dead_id is not None:
            self.io.observer.fate(
                "dead_lettered", message_id or delivery.id, delivery.attempt, error or cause
            )

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
