"""Message stores for actors: the Transport interface, in-memory and Redis."""

from ._base import (
    Consumer as Consumer,
    DeadLetter as DeadLetter,
    Delivery as Delivery,
    Failure as Failure,
    MailboxKind as MailboxKind,
    MailboxSpec as MailboxSpec,
    MailboxStats as MailboxStats,
    NodeInfo as NodeInfo,
    Transport as Transport,
)
