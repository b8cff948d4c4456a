"""One run of a system, as its actor instances see it: the store, messaging, the node,
mailbox faults, and the system's stop."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs
import trio

from transports import Transport

from ._faults import MailboxFaults
from ._messenger import Messenger
from ._node import NodeName

if TYPE_CHECKING:
    from ._watch import Watch

__all__ = ["SystemRun"]


@attrs.define(eq=False)
class SystemRun:
    """What the instances of one run of a system share."""

    transport: Transport
    messenger: Messenger
    #: This process's node name: consumer names derive from it.
    node: str
    #: Set when the whole system stops: every instance stops with it.
    stop: trio.Event
    #: The actors whose mailbox has a key of the wrong type.
    faults: MailboxFaults = attrs.Factory(MailboxFaults)
    #: The node name, once claimed.
    name: NodeName | None = None
    #: From the start of a stop (trio time): the instances' deadline for store writes.
    stopping_since: float | None = None
    #: Messages the instances could not ack or hand back when the system stopped.
    unacked_at_stop: int = 0
    #: Messages handled (or failed) so far, by actor name: announced in heartbeats.
    handled: Counter[str] = attrs.Factory(Counter)
    #: What the system's lifespan opened for the actors (``context.resources``).
    resources: dict[str, Any] = attrs.Factory(dict)
    #: The death watch (monitors and Down messages).
    watch: Watch | None = None

    def name_lost(self) -> bool:
        """Another process took this node's name: consumers give it up as they close."""
        return self.name is not None and self.name.lost
