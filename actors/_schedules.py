"""Periodic sends declared on the system (``system.schedule``): each due time fires once
across every process and host running the system, and one missed while nothing ran fires
once at the next start.

Every running system runs every schedule. At a due time each process tries to raise the
schedule's mark in the store to that time (``Transport.advance_mark``, a compare-and-set):
the one that raises it sends the message. At start, a process compares the mark with the
schedule's last due time: older means a due time passed while nothing ran, and it is
fired then (once, however many were missed); no mark means the schedule is new, and
nothing is fired for the past.

Each message carries the headers ``actors-schedule`` (the schedule's name) and
``actors-due`` (the due time it fires for, ms since the epoch), for a handler that wants to
know which firing it handles.

A firing is lost if its process dies between raising the mark and storing the message (a
window of one round trip); it is never sent twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import attrs
import trio

from transports import Backoff, ConfigurationError, Transport, TransportError

from ._cron import Cadence, Cron, Every

__all__ = ["Schedule", "make_schedule", "run_schedules"]

logger = logging.getLogger("actors.schedules")

_BACKOFF = Backoff(min=0.1, max=5.0)
_T = TypeVar("_T")


@attrs.frozen
class Schedule:
    """Send ``msg`` to ``target`` at every due time of ``cadence``; ``name`` keys its mark
    in the store (the same in every process that runs the system)."""

    name: str
    target: Any
    msg: Any
    cadence: Cadence


def make_schedule(
    target: Any,
    msg: Any,
    *,
    every: float | timedelta | None,
    cron: str | None,
    name: str | None,
) -> Schedule:
    """A :class:`Schedule` from ``system.schedule``'s arguments; ``name`` defaults to the
    target and the cadence (``"reports every 300s"``, ``"reports cron */5 * * * *"``).

    Raises:
        ConfigurationError: neither or both of ``every`` and ``cron``, a period that is
            not positive, or a malformed cron expression.
    """
    if (every is None) == (cron is None):
        raise ConfigurationError("a schedule needs every= or cron=, one of them")
    if cron is not None:
        cadence: Cadence = Cron.parse(cron)
        when = f"cron {cron}"
    else:
        assert every is not None
        seconds = every.total_seconds() if isinstance(every, timedelta) else every
        cadence = Every(seconds)
        when = f"every {seconds:g}s"
    if name is None:
        label = target if isinstance(target, str) else getattr(target, "__name__", target)
        name = f"{label} {when}"
    return Schedule(name, target, msg, cadence)


async def run_schedules(
    schedules: list[Schedule],
    transport: Transport,
    tell: Callable[..., Awaitable[None]],
    stop: trio.Event,
    clock: Callable[[], float] = time.time,
) -> None:
    """Fire ``schedules`` with ``tell(target, msg, headers=...)`` until ``stop`` is set;
    ``clock`` gives Unix time (tests pass one that follows trio's clock).

    Raises:
        ConfigurationError: a target is unknown, or the store keeps no marks.
    """
    async with trio.open_nursery() as nursery:
        for schedule in schedules:
            nursery.start_soon(_run_one, schedule, transport, tell, clock)
        await stop.wait()
        nursery.cancel_scope.cancel()


async def _run_one(
    schedule: Schedule,
    transport: Transport,
    tell: Callable[..., Awaitable[None]],
    clock: Callable[[], float],
) -> None:
    cadence = schedule.cadence
    last = cadence.last_at_or_before(clock())
    if last > -math.inf:
        mark = await _patiently(schedule, partial(transport.read_mark, schedule.name))
        last_ms = _ms(last)
        owned = await _patiently(schedule, partial(transport.advance_mark, schedule.name, last_ms))
        if owned and mark is not None:
            logger.info("schedule %r: firing the due time missed at %s", schedule.name, last)
            await _fire(schedule, tell, last_ms)
    due = last if last > -math.inf else clock()
    while True:
        due = cadence.next_after(due)
        if due == math.inf:
            return
        await trio.sleep(max(0.0, due - clock()))
        due_ms = _ms(due)
        if await _patiently(schedule, partial(transport.advance_mark, schedule.name, due_ms)):
            await _fire(schedule, tell, due_ms)


def _ms(when: float) -> int:
    return round(when * 1000)


async def _fire(schedule: Schedule, tell: Callable[..., Awaitable[None]], due_ms: int) -> None:
    """Send the schedule's message (this process owns the due time): through store
    outages; another error is logged, and the due time is not fired."""
    try:
        headers = {"actors-schedule": schedule.name, "actors-due": str(due_ms)}
        await _patiently(schedule, partial(tell, schedule.target, schedule.msg, headers=headers))
    except Exception:
        logger.exception("schedule %r could not send its message", schedule.name)


async def _patiently(schedule: Schedule, call: Callable[[], Awaitable[_T]]) -> _T:
    """``call()`` again after store outages (logged once each) until it answers."""
    failures = 0
    while True:
        try:
            result = await call()
        except TransportError as exc:
            if not failures:
                logger.warning("schedule %r waits out a store outage: %s", schedule.name, exc)
            await trio.sleep(_BACKOFF.delay(failures))
            failures += 1
            continue
        if failures:
            logger.warning("schedule %r: the store answers again", schedule.name)
        return result
