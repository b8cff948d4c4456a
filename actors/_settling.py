"""What a batch owes the store once handled: its results, its acks, and the
deliveries it never started, settled in that order."""

from __future__ import annotations

import logging

import trio

from transports import Consumer, Delivery, MailboxSpec, TransportError, is_outage

from ._instance_io import InstanceIO
from ._retry import Outage

__all__ = ["Unsettled"]

logger = logging.getLogger("actors.actor")


class Unsettled:
    """Results to send (by target), deliveries to ack and to release, in that order,
    for the instance whose store calls ``io`` makes."""

    def __init__(self, io: InstanceIO) -> None:
        self.io = io
        self.path = io.path
        self.outbox: dict[MailboxSpec, list[bytes]] = {}
        self.handled: list[Delivery] = []
        self.unstarted: list[Delivery] = []

    @property
    def done(self) -> bool:
        """Nothing is owed."""
        return not (self.outbox or self.handled or self.unstarted)

    async def settle(self, consumer: Consumer) -> TransportError | None:
        """Finish the batch: send its results, ack what was handled, and hand back what
        was never started (after a graceful stop, or a crash mid-batch), so that it is
        delivered again at once and not counted as a failed attempt. None when done,
        else the store's error.

        Results are stored before the acks (in one round trip where the store can):
        a message is acked only once what it produced is stored. A step that fails
        is kept, with what follows it, for the next try; acks are never dropped, or
        the lease renewal would keep the messages from anyone else.
        """
        work = self
        try:
            if work.outbox or work.handled:
                refused = await self.io.runtime.transport.settle(
                    consumer, work.outbox, work.handled
                )
                # Results a target could not take for now (out of memory...) are sent
                # again; the target refusing them (a key of another type, no
                # permission, a pattern) cannot be cured, and must not wedge the actor.
                outages = {
                    box: exc
                    for box, exc in refused.items()
                    if isinstance(exc, TransportError) and is_outage(exc)
                }
                for box, exc in refused.items():
                    if box not in outages:
                        logger.error(
                            "%s: dropped %d result(s) for %s: %s",
                            self.path,
                            len(work.outbox[box]),
                            box,
                            exc,
                        )
                work.outbox = {box: work.outbox[box] for box in outages}
                work.handled = []
                if outages:
                    return next(iter(outages.values()))
            if work.unstarted:
                await consumer.release(work.unstarted)
                work.unstarted = []
        except TransportError as exc:
            return exc
        return None

    async def settle_patiently(self, consumer: Consumer, stop: trio.Event) -> bool:
        """Retry :meth:`settle` with backoff until it succeeds (True) or ``stop`` (False).

        On a stop, what is left gets one more chance, until the stop's deadline.
        """
        outage = Outage(logger, self.path)
        while (error := await self.settle(consumer)) is not None:
            if stop.is_set():
                return False
            await self.io.wait_out(outage, error, stop)
        outage.over()
        return True

    async def settle_at_stop(self, consumer: Consumer, deadline: float) -> None:
        """Retry :meth:`settle` with backoff until the stop's deadline for store writes;
        what is still unsettled then is redelivered later (see the runner's
        ``_count_unacked``)."""
        outage = Outage(logger, self.path)
        with trio.CancelScope(shield=True, deadline=deadline):
            while (error := await self.settle(consumer)) is not None:
                await self.io.wait_out(outage, error)
            outage.over()
