"""Messages sent with a delay: held in Redis until due, then appended to their mailbox.

A delayed send (``RedisTransport.send(spec, payloads, delay=...)``) writes the payloads to
the mailbox's ``{name}:scheduled`` zset, scored by due time (server clock), then notes in
the global index ``{actors:scheduled}`` that this mailbox has a message due then (the
index keeps each mailbox's earliest due time) and raises the mailbox's mark in
``{actors:scheduled}:marks``. Two scripts, on two slots of a cluster, in that order: a
mailbox with scheduled messages is always in the index.

Every transport that runs a list or stream consumer runs one :class:`Scheduler` task (in
the nursery of its consumers' background tasks) that promotes due messages: it reads the
index's due mailboxes, appends each one's due messages to it with one script (atomic per
mailbox, so several promoters never deliver one twice), then moves the mailbox's index
entry to its next due time or removes it, unless its mark moved meanwhile (a send came
in: the entry stays due and the next pass looks again). It sleeps until the index's next
due time, at most :data:`POLL` (sends from other processes wake no one here).

Everything is in Redis, so scheduled messages survive restarts of every process; each is
appended once (at-least-once from there on, like any message of its mailbox).
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Sequence
from typing import Any

import trio

from transports._exceptions import ClosedError, CommandError, ConfigurationError, TransportError

from .._backoff import Backoff
from .._values import MailboxSpec
from . import timing_scripts
from .client import Redis
from .host import ConsumerHost
from .keys import (
    SCHEDULED,
    SCHEDULED_MARKS,
    Keys,
    parse_scheduled_record,
    scheduled_record,
)

__all__ = ["POLL", "Scheduler", "delay_ms", "index_command", "schedule_command"]

logger = logging.getLogger("transports.redis")

POLL = 0.05
"""Longest sleep (s) of a promoter between two looks at the index: a message sent with a
delay by another process is promoted within about this much of its due time."""

_MOST = 100  # mailboxes per look at the index
_BATCH = 1000  # messages per promotion of one mailbox
_BROKEN_RETRY_MS = 10_000  # a mailbox of another type is looked at again after this
_BACKOFF = Backoff(min=0.05, max=2.0)


def delay_ms(spec: MailboxSpec, delay: float) -> int:
    """The milliseconds of a send's ``delay`` (seconds, rounded up), 0 for a plain send.

    Raises:
        ConfigurationError: ``delay`` is negative or not a number, or ``spec`` is a
            pub/sub channel (at-most-once: nothing holds a delayed publish).
    """
    if not delay >= 0:
        raise ConfigurationError(f"delay must be >= 0 seconds, not {delay!r}")
    if delay and spec.kind == "pubsub":
        raise ConfigurationError(f"{spec}: pub/sub cannot hold a message for later")
    return math.ceil(delay * 1000) if math.isfinite(delay) else 2**62


class Scheduler:
    """The delayed sends of one Redis transport, and its promoter task (started once by
    :meth:`start`, with the transport's first list or stream consumer)."""

    __slots__ = ("_client", "_started", "_wake")

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._started = False
        self._wake = trio.Event()

    async def schedule(self, spec: MailboxSpec, payloads: Sequence[bytes], delay: int) -> None:
        """Hold ``payloads`` for ``spec`` until ``delay`` ms from now (server clock).

        Raises:
            CommandError: ``{name}:scheduled`` or the index holds another type.
            TransportError: the store failed; the payloads may be held but not indexed
                (then they are promoted after the next delayed send to the mailbox).
        """
        if not payloads:
            await trio.lowlevel.checkpoint()
            return
        keys = Keys(spec.name)
        token = secrets.token_hex(6)
        due = await timing_scripts.schedule(
            self._client, keys, delay_ms=delay, token=token, payloads=payloads
        )
        await timing_scripts.schedule_index(self._client, record=record_of(spec), due_ms=due)
        self._wake.set()

    def start(self, host: ConsumerHost) -> None:
        """Run the promoter in ``host``'s nursery, once per transport."""
        if not self._started:
            self._started = True
            host.start_soon(self._run, name=f"{self._client.url} scheduled messages")

    async def _run(self) -> None:
        failures = 0
        while True:
            self._wake = trio.Event()  # before the pass: a send during it wakes the next
            try:
                wait = await self.promote_due()
            except ClosedError:
                return
            except TransportError as exc:
                wait = _BACKOFF.delay(failures)
                if not failures:  # once per outage, not once per try
                    logger.warning("promoting scheduled messages failed: %s; retrying", exc)
                failures += 1
            except Exception:
                # A bug must not end promotion for good (nor cancel the consumers'
                # tasks beside it in the nursery): log it and try again later.
                wait = _BACKOFF.max
                logger.exception("promoting scheduled messages failed")
            else:
                if failures:
                    logger.warning("promoting scheduled messages again")
                failures = 0
            with trio.move_on_after(wait):
                await self._wake.wait()

    async def promote_due(self) -> float:
        """Append the due scheduled messages of every mailbox to it; return how long
        (s) to sleep before the next pass (at most :data:`POLL`).

        Raises:
            TransportError: the store failed; what was promoted stays promoted.
        """
        due, wait_ms, now = await timing_scripts.scheduled_due(self._client, most=_MOST)
        wait = POLL if wait_ms < 0 else min(POLL, wait_ms / 1000)
        if len(due) == _MOST:
            wait = 0.0
        for record, mark in due:
            try:
                kind, name, maxlen, expire_ms = parse_scheduled_record(record)
            except ValueError:
                logger.warning("dropping %r from the scheduled index: not a mailbox", record)
                await timing_scripts.scheduled_settle(
                    self._client, record=record, mark=mark, next_due_ms=-1
                )
                continue
            try:
                next_due, now = await timing_scripts.promote(
                    self._client,
                    Keys(name),
                    kind=kind,
                    maxlen=maxlen,
                    expire_ms=expire_ms,
                    most=_BATCH,
                )
            except CommandError as exc:
                if exc.code != "WRONGTYPE":
                    raise
                logger.warning("%s:%s: scheduled messages wait: %s", kind, name, exc)
                next_due = now + _BROKEN_RETRY_MS
            settled = await timing_scripts.scheduled_settle(
                self._client, record=record, mark=mark, next_due_ms=next_due
            )
            if not settled or next_due == -1:
                continue
            if next_due <= now:
                wait = 0.0  # more were due than one promotion takes
        return wait


def record_of(spec: MailboxSpec) -> str:
    """The index record of ``spec``'s mailbox (see :func:`keys.scheduled_record`)."""
    expire_ms = None if spec.expire is None else max(1, round(spec.expire * 1000))
    return scheduled_record(spec.kind, spec.name, spec.maxlen, expire_ms)


def schedule_command(spec: MailboxSpec, payloads: Sequence[bytes], delay: int) -> tuple[Any, ...]:
    """The ``EVAL`` that holds ``payloads`` for ``spec`` for ``delay`` ms (its reply: their
    due time, ms), for a client of another library (redis-py); then run
    :func:`index_command` with that due time, as :meth:`Scheduler.schedule` does."""
    token = secrets.token_hex(6)
    keys = Keys(spec.name)
    return (b"EVAL", timing_scripts.SCHEDULE.source, 1, keys.scheduled, delay, token, *payloads)


def index_command(spec: MailboxSpec, due_ms: int) -> tuple[Any, ...]:
    """The ``EVAL`` that notes in the index that ``spec`` has a message due at ``due_ms``."""
    source = timing_scripts.SCHEDULE_INDEX.source
    return (b"EVAL", source, 2, SCHEDULED, SCHEDULED_MARKS, record_of(spec), due_ms)
