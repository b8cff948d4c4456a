"""The Lua scripts of stream mailboxes, each with the one typed function that names its keys
and arguments (see ``transports/redis/scripts.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ..client import Redis
from ..keys import Keys
from ..scripts import Arg, flag, load

__all__ = [
    "StreamTaken",
    "stream_fail",
    "stream_renew",
    "stream_retry",
    "stream_retry_command",
    "stream_take",
]

STREAM_RETRY = load("stream_retry")
"""Hand pending entries to the pseudo-consumer ``{delayed}`` until they fall due."""


async def stream_retry(
    client: Redis, keys: Keys, *, group: str, delay_ms: int, entry_ids: Sequence[str]
) -> int:
    """Make the pending ``entry_ids`` retries of ``group`` due in ``delay_ms``, in
    order; return how many were still pending.

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    keys_ = [keys.mailbox, keys.delayed_in(group)]
    return int(await STREAM_RETRY(client, keys_, [group, delay_ms, *entry_ids]))


def stream_retry_command(
    keys: Keys, *, group: str, delay_ms: int, entry_ids: Sequence[str]
) -> tuple[Any, ...]:
    """STREAM_RETRY's ``EVALSHA`` command, to pipeline with others (see
    :meth:`Script.command`); it replies as :func:`stream_retry` returns."""
    keys_ = [keys.mailbox, keys.delayed_in(group)]
    return STREAM_RETRY.command(keys_, [group, delay_ms, *entry_ids])


STREAM_FAIL = load("stream_fail")
"""Failed attempts in one script: count each, then park the entry as STREAM_RETRY does."""


class StreamFailure(NamedTuple):
    """One failed attempt for :func:`stream_fail`: the entry, due again in ``delay_ms``,
    its failure count's ``field`` and the ``attempt`` that failed."""

    entry_id: str
    delay_ms: int
    field: str
    attempt: int


async def stream_fail(
    client: Redis, keys: Keys, *, group: str, failures: Sequence[StreamFailure]
) -> list[int | None]:
    """For each of ``failures``, raise the failure count of its ``field`` to its
    ``attempt`` (as ``record_failure``) and make the pending entry a retry of
    ``group`` due in ``delay_ms`` (as :func:`stream_retry`), all atomically; return
    the counts, in order. None (nothing done for it) for an entry no longer pending.

    Raises:
        CommandError: the script failed (nothing was done).
        TransportError: the client failed.
    """
    keys_ = [keys.mailbox, keys.delayed_in(group), keys.failures]
    args: list[Arg] = [group]
    for failure in failures:
        args += [failure.delay_ms, failure.entry_id, failure.field, failure.attempt]
    counts = await STREAM_FAIL(client, keys_, args)
    return [None if int(count) < 0 else int(count) for count in counts]


STREAM_TAKE = load("stream_take")
"""Read own history, deliver due retries, claim idle entries, read new ones."""


class StreamTaken(NamedTuple):
    """What STREAM_TAKE replied."""

    entries: list[list[Any]]
    """``[id, fields, attempt]`` of each entry delivered."""
    history: bytes
    """Where to read the consumer's own pending entries from next; empty when done."""
    claim_cursor: bytes
    """Where the next claim (``XAUTOCLAIM``) starts."""
    wait: int
    """Milliseconds until the next retry falls due; -1 when none waits."""
    has_failures: int
    """1 when the group may have failure counts."""


async def stream_take(
    client: Redis,
    keys: Keys,
    *,
    group: str,
    consumer: str,
    count: int,
    history: str,
    claim: bool,
    lease_ms: int,
    claim_cursor: str,
    read_new: bool,
    claim_count: int,
) -> StreamTaken:
    """Deliver up to ``count`` entries of ``group`` to ``consumer``: its own pending
    ones from ``history`` ('' to skip), due retries, entries idle for ``lease_ms``
    (when ``claim``: up to ``claim_count`` from ``claim_cursor``), then new ones
    (when ``read_new``).

    Raises:
        CommandError: the script failed (``NOGROUP`` when the group is gone).
        TransportError: the client failed.
    """
    reply = await STREAM_TAKE(
        client,
        [keys.mailbox, keys.failures, keys.delayed_in(group)],
        [
            group,
            consumer,
            count,
            history,
            flag(claim),
            lease_ms,
            claim_cursor,
            flag(read_new),
            claim_count,
        ],
    )
    return StreamTaken(*reply)


STREAM_RENEW = load("stream_renew")
"""Reset the idle time of the held entries this consumer still owns (its lease)."""


async def stream_renew(
    client: Redis, keys: Keys, *, group: str, consumer: str, entry_ids: Iterable[str]
) -> int:
    """Reset the idle time of those of ``entry_ids`` that ``consumer`` still owns in
    ``group``; return how many.

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    return int(await STREAM_RENEW(client, [keys.mailbox], [group, consumer, *entry_ids]))
