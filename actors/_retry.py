"""The runtime's one retry policy for store calls: which failures are waited out, and
how (one log line when an outage starts, one when it ends, backoff between tries).

One classification serves every task that calls the store (actor instances, the
reply reader, the node's heartbeat): a failure is *waited out* when retrying can
cure it (:func:`waits_out`): an outage (:func:`transports.is_outage`: no
connection, a timeout, a server that cannot serve for now), or a key of the wrong
type (someone fixes it; an actor reports it meanwhile, see ``_faults``). Anything
else is a *refusal* (credentials, permissions, a bad argument) and is raised.
"""

from __future__ import annotations

import logging

import trio

from transports import Backoff, CommandError, Transport, TransportError, is_outage

__all__ = ["OUTAGE_BACKOFF", "RECHECK", "Outage", "is_wrong_type", "store_answers", "waits_out"]

#: Waits between tries during an outage: 50 ms doubling to 5 s.
OUTAGE_BACKOFF = Backoff(min=0.05, max=5.0)

#: While an outage lasts, a fetch (which waits for a message) is cut this often to
#: look whether the store answers, so that the outage's end is said when it comes,
#: not at the next message.
RECHECK = 1.0


def is_wrong_type(exc: BaseException) -> bool:
    """True when ``exc`` says a key holds the wrong type (``WRONGTYPE``)."""
    return isinstance(exc, CommandError) and exc.code == "WRONGTYPE"


def waits_out(exc: BaseException) -> bool:
    """True when retrying a store call that failed with ``exc`` can succeed: an outage,
    or a key of the wrong type. False for a refusal, and for anything that is not a
    store failure."""
    return is_outage(exc) or is_wrong_type(exc)


async def store_answers(transport: Transport) -> bool:
    """True when ``transport``'s store answers a ping within :data:`RECHECK`."""
    with trio.move_on_after(RECHECK):
        try:
            await transport.ping()
        except TransportError:
            return False
        return True
    return False


class Outage:
    """The store outage one task is living through, if any.

    ``await outage.wait(exc)`` after each failed try: the first logs ``"<who>: store
    unavailable (<exc>); retrying"`` (a warning), and each waits the next backoff
    delay, or until ``stop`` is set. :meth:`over` after a try that worked logs
    ``"<who>: store reachable again after <s>s"`` once, if there was an outage. However
    long it lasts, an outage makes these two lines.
    """

    def __init__(self, logger: logging.Logger, who: str, backoff: Backoff = OUTAGE_BACKOFF) -> None:
        self.logger = logger
        self.who = who
        self.backoff = backoff
        self.tries = 0
        self._since = 0.0
        self._logged = False

    @property
    def ongoing(self) -> bool:
        """True from the first failure until :meth:`over`."""
        return self.tries > 0

    async def wait(
        self, exc: BaseException, stop: trio.Event | None = None, *, quiet: bool = False
    ) -> None:
        """Note a failed try (logging the first not ``quiet`` one), then wait before the
        next one; return early when ``stop`` is set. ``quiet``: the failure was
        reported otherwise (a key of the wrong type: see ``_faults``); back off only.

        Raises:
            TransportError: ``exc`` itself, when it is a refusal (see :func:`waits_out`).
        """
        if not waits_out(exc):
            raise exc
        if not self.tries:
            self._since = trio.current_time()
        if not quiet and not self._logged:
            self._logged = True
            self.logger.warning("%s: store unavailable (%s); retrying", self.who, exc)
        delay = self.backoff.delay(self.tries)
        self.tries += 1
        if stop is None:
            await trio.sleep(delay)
            return
        with trio.move_on_after(delay):
            await stop.wait()

    def over(self) -> None:
        """A try worked: log the end of the outage, if there was one, and forget it."""
        if self._logged:
            lasted = trio.current_time() - self._since
            self.logger.info("%s: store reachable again after %.1fs", self.who, lasted)
        self.tries = 0
        self._logged = False
