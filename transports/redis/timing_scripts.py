"""Typed wrappers of the Lua scripts that coordinate over time and processes: scheduled
(delayed) messages, schedule marks and keyed actors' partition leases (see
:mod:`transports.redis.scripts` for how scripts are loaded)."""

from __future__ import annotations

from collections.abc import Sequence

from .client import Redis
from .keys import (
    SCHEDULE_MARKS as _SCHEDULE_MARKS,
    SCHEDULED as _SCHEDULED,
    SCHEDULED_MARKS as _SCHEDULED_MARKS,
    Keys,
    partition_keys,
)
from .scripts import Arg, flag, load

__all__ = [
    "advance_mark",
    "lease_partitions",
    "promote",
    "schedule",
    "schedule_index",
    "scheduled_due",
    "scheduled_settle",
]


# -- scheduled messages (see scheduler.py) ----------------------------------------------

SCHEDULE = load("schedule")
"""Hold payloads in ``{name}:scheduled`` until now + a delay; return that due time (ms)."""


async def schedule(
    client: Redis, keys: Keys, *, delay_ms: int, token: str, payloads: Sequence[bytes]
) -> int:
    """Hold ``payloads`` in ``keys.scheduled`` for ``delay_ms`` (server clock), each as
    ``<token>.<i>:<payload>``; return their due time (ms).

    Raises:
        CommandError: the script failed (``WRONGTYPE``: nothing was done).
        TransportError: the client failed.
    """
    return int(await SCHEDULE(client, [keys.scheduled], [delay_ms, token, *payloads]))


SCHEDULE_INDEX = load("schedule_index")
"""Note in the index that a mailbox has a message due at a time (keeping its earliest),
and raise the mailbox's mark."""


async def schedule_index(client: Redis, *, record: str, due_ms: int) -> None:
    """Note in :data:`~transports.redis.keys.SCHEDULED` that ``record`` has a message due
    at ``due_ms`` (the entry keeps the earliest), and raise its mark.

    Raises:
        CommandError: the script failed. TransportError: the client failed.
    """
    await SCHEDULE_INDEX(client, [_SCHEDULED, _SCHEDULED_MARKS], [record, due_ms])


SCHEDULED_DUE = load("scheduled_due")
"""The mailboxes with scheduled messages due (record, mark), and the ms until the next."""


async def scheduled_due(client: Redis, *, most: int) -> tuple[list[tuple[str, bytes]], int, int]:
    """Up to ``most`` records of mailboxes with messages due now, each with its mark,
    the milliseconds until the next entry of the index falls due (-1: none), and the
    server's time (ms).

    Raises:
        CommandError: the script failed. TransportError: the client failed.
    """
    flat, wait, now = await SCHEDULED_DUE(client, [_SCHEDULED, _SCHEDULED_MARKS], [most])
    pairs = [
        (flat[index].decode("utf-8", "replace"), bytes(flat[index + 1]))
        for index in range(0, len(flat) - 1, 2)
    ]
    return pairs, int(wait), int(now)


PROMOTE = load("promote")
"""Append a mailbox's scheduled messages that are due to it; return the next due time."""


async def promote(
    client: Redis,
    keys: Keys,
    *,
    kind: str,
    maxlen: int | None,
    expire_ms: int | None,
    most: int,
) -> tuple[int, int]:
    """Append up to ``most`` of the due messages of ``keys.scheduled`` to the mailbox (a
    list, pushed then given ``expire_ms``; or a stream, trimmed to about ``maxlen``), in
    due order; return the due time (ms) of the next one waiting (-1 for none) and the
    server's time (ms).

    Raises:
        CommandError: the script failed (``WRONGTYPE``: nothing was done).
        TransportError: the client failed.
    """
    args: list[Arg] = [
        kind,
        "" if maxlen is None else maxlen,
        "" if expire_ms is None else expire_ms,
        most,
    ]
    next_due, now = await PROMOTE(client, [keys.scheduled, keys.mailbox], args)
    return int(next_due), int(now)


SCHEDULED_SETTLE = load("scheduled_settle")
"""Set a record's index entry to its next due time (or remove it) unless its mark moved."""


async def scheduled_settle(client: Redis, *, record: str, mark: bytes, next_due_ms: int) -> bool:
    """Make ``record``'s entry of the index ``next_due_ms`` (-1: remove it), unless a
    delayed send raised its mark since it was read as ``mark``; True when done.

    Raises:
        CommandError: the script failed. TransportError: the client failed.
    """
    reply = await SCHEDULED_SETTLE(
        client, [_SCHEDULED, _SCHEDULED_MARKS], [record, mark, next_due_ms]
    )
    return bool(reply)


ADVANCE_MARK = load("advance_mark")
"""Raise a schedule's mark to a due time if lower; 1 when raised."""


async def advance_mark(client: Redis, *, name: str, due_ms: int) -> bool:
    """Raise the mark of the schedule ``name`` to ``due_ms`` if it is lower or unset; True
    when this call raised it.

    Raises:
        CommandError: the script failed. TransportError: the client failed.
    """
    return bool(await ADVANCE_MARK(client, [_SCHEDULE_MARKS], [name, due_ms]))


# -- keyed actors' partition leases ----------------------------------------------------

LEASE_PARTITIONS = load("lease_partitions")
"""Renew an owner's heartbeat among a keyed actor's owners, spread the partitions over
the live ones, renew or take the owner's share and release what it no longer holds."""


async def lease_partitions(
    client: Redis,
    *,
    group: str,
    owner: str,
    partitions: int,
    ttl_ms: int,
    leave: bool,
    keep: Sequence[int],
) -> tuple[list[int], list[int], int]:
    """Run LEASE_PARTITIONS for ``owner`` of ``group``'s ``partitions``; return the
    partitions it holds, those of them it should consume, and the live owners.

    Raises:
        CommandError: the script failed (a key of the wrong type: nothing changed).
        TransportError: the client failed.
    """
    owners, leases = partition_keys(group)
    args: list[Arg] = [owner, partitions, ttl_ms, flag(leave), " ".join(map(str, keep))]
    held, wanted, live = await LEASE_PARTITIONS(client, [owners, leases], args)
    return [int(p) for p in held], [int(p) for p in wanted], int(live)
