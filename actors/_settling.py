"""What a batch owes the store once handled: its results, its acks, and the
deliveries it never started, settled in that order."""

from __future__ import annotations

import logging

import trio

from transports import Consumer, Delivery, MailboxSpec, Settlement, TransportError, is_outage

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

        One call, :meth:`Consumer.settle` (one write where the store can): results
        are stored before the acks, so a message is acked only once what it produced
        is stored, and the releases come last. A settle that fails is kept whole for
        the next try (settling again skips what was made, but may store results
        twice); acks are never dropped, or the lease renewal would keep the messages
        from anyone else.
        """
        if self.done:
            return None
        settlement = Settlement(self.outbox, acks=self.handled, releases=self.unstarted)
        try:
            refused = await consumer.settle(settlement)
        except TransportError as error:
            return error
        # Results a target could not take for now (out of memory...) are sent again;
        # the target refusing them (a key of another type, no permission, a pattern)
        # cannot be cured, and must not wedge the actor.
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
                    len(self.outbox[box]),
                    box,
                    exc,
                )
        self.outbox = {box: self.outbox[box] for box in outages}
        self.handled = []
        self.unstarted = []
        if outages:
            return next(iter(outages.values()))
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
