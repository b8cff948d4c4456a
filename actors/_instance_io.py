"""An actor instance's store calls: an outage is waited out, a key of its mailbox with
the wrong type is reported as a fault (``_faults``) and waited out too; a refusal fails
the instance (see ``_retry``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from transports import TransportError

from ._observe import InstanceObserver
from ._retry import Outage, is_wrong_type
from ._runtime import SystemRun

__all__ = ["InstanceIO"]

logger = logging.getLogger("actors.actor")

_T = TypeVar("_T")


class InstanceIO:
    """The store calls of the instance ``path`` of the actor named ``actor`` in ``runtime``,
    and what it tells its middleware and logs (``observer``)."""

    def __init__(
        self, runtime: SystemRun, actor: str, path: str, observer: InstanceObserver
    ) -> None:
        self.runtime = runtime
        self.actor = actor
        self.path = path
        self.observer = observer

    def report_wrong_type(self, exc: BaseException) -> bool:
        """True, after reporting it, when ``exc`` says a key of the mailbox has the
        wrong type (see ``_faults``)."""
        if not is_wrong_type(exc):
            return False
        self.runtime.faults.report(self.actor, self.path, exc)
        return True

    async def wait_out(
        self, outage: Outage, exc: TransportError, stop: trio.Event | None = None
    ) -> None:
        """Back off before the next try of a store call that failed with ``exc``: a key
        of the wrong type is reported as a fault of the mailbox, an outage is logged
        (once); returns early when ``stop`` is set.

        Raises:
            TransportError: ``exc``, when it is a refusal (see ``_retry.waits_out``).
        """
        await outage.wait(exc, stop, quiet=self.report_wrong_type(exc))

    def mailbox_usable(self) -> None:
        """The mailbox worked for this instance: any fault it was in is over for it."""
        self.runtime.faults.clear(self.actor, self.path)

    async def store(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a store call that decides a message's fate, waiting out a store outage.

        A lost connection or a timeout is retried with backoff, for as long as it
        takes (a shutdown cancels the wait; the message then stays unacked and comes
        back): an outage (see :func:`transports.is_outage`: a lost connection, a
        timeout, a server out of memory...) is not the handler's crash. So is a key
        of the mailbox with the wrong type (the fate cannot be recorded until it is
        fixed), reported as a fault.

        Raises:
            TransportError: a refusal (credentials, permissions), at once.
        """
        outage = Outage(logger, self.path)
        while True:
            try:
                result = await call()
            except TransportError as exc:
                await self.wait_out(outage, exc)
            else:
                self.mailbox_usable()
                outage.over()
                return result
