"""Mailboxes that cannot be used because one of their keys has the wrong type.

A key of a mailbox that another client gave another type (``SET jobs x`` on a list
mailbox, ``HSET {jobs}:dead ...``) is neither an outage nor a crash: retrying cannot
help until someone fixes the key, and restarting the actor cannot either. The
instances of the actor wait instead, retrying with backoff, so the rest of the
system runs on and the mailbox works again as soon as the key is deleted or given
the right type. Each fault is logged when it starts, again every :data:`REPEAT`
seconds while it lasts (one line, whatever the number of instances), and when it
ends; the node announces it (see :meth:`ActorSystem.node_info`), so that
``python -m actors status`` shows it.
"""

from __future__ import annotations

import logging

import attrs
import trio

__all__ = ["REPEAT", "MailboxFaults"]

logger = logging.getLogger("actors.actor")

#: Seconds between two log lines about one fault that lasts.
REPEAT = 30.0


@attrs.define
class _Fault:
    error: str
    logged_at: float  # trio time
    holders: set[str]  # the instances that met it and did not get past it yet


class MailboxFaults:
    """The faults of this node's actors, by actor name (one mailbox each)."""

    def __init__(self) -> None:
        self._faults: dict[str, _Fault] = {}

    def report(self, actor: str, instance: str, error: BaseException) -> None:
        """``instance`` of ``actor`` met ``error``: log it, unless this fault was logged
        less than :data:`REPEAT` seconds ago."""
        text = str(error)
        now = trio.current_time()
        fault = self._faults.get(actor)
        if fault is None:
            fault = self._faults[actor] = _Fault(text, now, set())
        elif fault.error != text or now - fault.logged_at >= REPEAT:
            fault.error, fault.logged_at = text, now
        else:
            fault.holders.add(instance)
            return
        fault.holders.add(instance)
        logger.error(
            "%s: %s; handling nothing until the key is deleted or given that type"
            " (said again every %.0f s while it lasts)",
            instance,
            text,
            REPEAT,
            extra={"event": "mailbox_fault", "path": instance},
        )

    def clear(self, actor: str, instance: str) -> None:
        """``instance`` of ``actor`` used its mailbox: the fault, if any, is over for it
        (for good when no instance is left in it)."""
        fault = self._faults.get(actor)
        if fault is None or instance not in fault.holders:
            return
        fault.holders.discard(instance)
        if not fault.holders:
            del self._faults[actor]
            logger.info("%s: mailbox usable again", instance)

    def leave(self, actor: str, instance: str) -> None:
        """``instance`` of ``actor`` stopped: forget it, without saying the fault is over."""
        fault = self._faults.get(actor)
        if fault is not None:
            fault.holders.discard(instance)
            if not fault.holders:
                del self._faults[actor]

    def holds(self, actor: str, instance: str) -> bool:
        """True while ``instance`` of ``actor`` is in a fault it did not get past."""
        fault = self._faults.get(actor)
        return fault is not None and instance in fault.holders

    def error(self, actor: str) -> str | None:
        """The fault ``actor`` is in now, if any."""
        fault = self._faults.get(actor)
        return None if fault is None else fault.error
