"""The Lua scripts of list mailboxes, each with the one typed function that names its keys
and arguments (see ``transports/redis/scripts.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ..client import Redis
from ..keys import Keys
from ..scripts import Arg, flag, load

__all__ = [
    "ListAck",
    "ListTaken",
    "list_ack",
    "list_ack_command",
    "list_close",
    "list_fail",
    "list_heartbeat",
    "list_release",
    "list_release_command",
    "list_retry",
    "list_take",
]


class ListAck(NamedTuple):
    """An ack that LIST_TAKE or LIST_ACK makes first (``ack_batch`` in lua/prelude.lua).

    ``form``: ``""`` (nothing to ack), ``"all"`` (everything the processing list
    holds, by count: only while ``epoch`` is the consumer's and the list holds
    ``size`` messages) or ``"each"`` (``payloads``, one by one). ``ack_id``: an ack
    made already under this id is skipped (a retry after a lost reply). ``fields``:
    the failure counts to forget.
    """

    epoch: str
    form: str = ""
    ack_id: str = ""
    fields: Sequence[str] = ()
    size: int = 0
    payloads: Sequence[bytes] = ()


def _ack_args(ack: ListAck) -> list[Arg]:
    """``ack_batch``'s arguments: epoch, form, id, nf, na, nf fields, then (form
    ``each``) na payloads."""
    size = len(ack.payloads) if ack.form == "each" else ack.size
    head: list[Arg] = [ack.epoch, ack.form, ack.ack_id, len(ack.fields), size]
    if ack.form == "each":
        return [*head, *ack.fields, *ack.payloads]
    return [*head, *ack.fields]


LIST_TAKE = load("list_take")
"""Ack the last batch, move due retries back, take over dead consumers, and move up
to ``count`` messages.

The ack's form ``all`` (the consumer acks everything its processing list holds)
costs O(1): no payloads travel. It applies only while the consumer's epoch in
``{name}:epochs`` is the one it registered (at open and at every resync), which
a takeover of its processing list removes, and the list has the expected length;
otherwise the script stops there, and says the ack was refused (0): the consumer
acks payload by payload, then resyncs.
"""


class ListTaken(NamedTuple):
    """What LIST_TAKE replied."""

    items: list[bytes]
    """The messages taken (moved to the processing list when durable)."""
    left: list[bytes]
    """The processing list as it was (when ``leftovers`` asked for it), else empty."""
    counts: list[int]
    """Failure counts of ``left``, ``items``, then ``lookup``; empty when none exist."""
    wait: int
    """Milliseconds until the next retry falls due; -1 when none waits."""
    acked: int
    """1 acked, 0 refused (then nothing else was done), -1 nothing to ack."""
    epoch: bytes
    """The epoch registered now (when ``leftovers`` asked for it), else empty."""


async def list_take(
    client: Redis,
    keys: Keys,
    *,
    consumer: str,
    count: int,
    durable: bool,
    lease_ms: int,
    maintain: bool,
    leftovers: str,
    ack: ListAck,
    lookup: Sequence[bytes],
) -> ListTaken:
    """Run LIST_TAKE for ``consumer``: make ``ack``, and take up to ``count`` messages.

    ``maintain``: mark ``consumer`` alive and take over consumers silent for longer
    than ``lease_ms``. ``leftovers``: ``"0"`` none, ``"1"`` resync (return the
    processing list and register a new epoch), ``"2"`` the same at open (counting
    what it held as failed unless it closed cleanly). ``lookup``: payloads whose
    failure counts to return too.

    Raises:
        CommandError: the script failed (``WRONGTYPE`` names the key).
        TransportError: the client failed.
    """
    reply = await LIST_TAKE(
        client,
        [
            keys.mailbox,
            keys.processing(consumer),
            keys.failures,
            keys.delayed,
            keys.consumers,
            keys.closed,
            keys.epochs,
        ],
        [
            count,
            flag(durable),
            lease_ms,
            flag(maintain),
            leftovers,
            consumer,
            keys.processing(""),
            *_ack_args(ack),
            *lookup,
        ],
    )
    return ListTaken(*reply)


LIST_HEARTBEAT = load("list_heartbeat")
"""Mark the consumer ``ARGV[1]`` alive now in ``{name}:consumers``."""


async def list_heartbeat(client: Redis, keys: Keys, *, consumer: str) -> None:
    """Mark ``consumer`` alive now (server clock) in ``{name}:consumers``.

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    await LIST_HEARTBEAT(client, [keys.consumers], [consumer])


LIST_CLOSE = load("list_close")
"""Count the attempts of the messages still held as failed, hand what was never handed
out back to the list, mark the name closed, and drop its epoch; return how many went
back."""


async def list_close(
    client: Redis, keys: Keys, *, consumer: str, held: Iterable[tuple[bytes, int]]
) -> int:
    """Close ``consumer``, which still holds ``held`` (payload, attempt pairs): see
    LIST_CLOSE. Returns how many messages went back to the list.

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    args: list[Arg] = [consumer]
    for payload, attempt in held:
        args += [payload, attempt]
    keys_ = [keys.failures, keys.closed, keys.epochs, keys.processing(consumer), keys.mailbox]
    return int(await LIST_CLOSE(client, keys_, args))


LIST_RETRY = load("list_retry")
"""Ack a list message and schedule it in ``{name}:delayed``; 0 (and nothing done) when
an at-least-once consumer no longer holds it."""


async def list_retry(
    client: Redis,
    keys: Keys,
    *,
    consumer: str,
    token: str,
    delay_ms: int,
    payload: bytes,
    held: bool,
) -> bool:
    """Remove ``payload`` from ``consumer``'s processing list and schedule it in
    ``delay_ms`` as ``<token>:<payload>``. False (nothing done) when ``held`` (an
    at-least-once consumer) and the message is no longer in its processing list.

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    keys_ = [keys.delayed, keys.processing(consumer)]
    return bool(await LIST_RETRY(client, keys_, [token, delay_ms, payload, flag(held)]))


LIST_FAIL = load("list_fail")
"""Failed attempts in one script: count each, then schedule it as LIST_RETRY does."""


class ListFailure(NamedTuple):
    """One failed attempt for :func:`list_fail`: the message, due again in ``delay_ms``
    (as ``<token>:<payload>``), its failure count's ``field`` and the ``attempt`` that
    failed."""

    payload: bytes
    token: str
    delay_ms: int
    field: str
    attempt: int


async def list_fail(
    client: Redis, keys: Keys, *, consumer: str, held: bool, failures: Sequence[ListFailure]
) -> list[int | None]:
    """For each of ``failures``, raise the failure count of its ``field`` to its
    ``attempt`` (as ``record_failure``) and schedule the payload again (as
    :func:`list_retry`), all atomically; return the counts, in order. None (nothing
    done for it) when ``held`` and the message is no longer in ``consumer``'s
    processing list.

    Raises:
        CommandError: the script failed (nothing was done).
        TransportError: the client failed.
    """
    keys_ = [keys.delayed, keys.processing(consumer), keys.failures]
    args: list[Arg] = [flag(held)]
    for failure in failures:
        args += [failure.token, failure.delay_ms, failure.payload, failure.field, failure.attempt]
    counts = await LIST_FAIL(client, keys_, args)
    return [None if int(count) < 0 else int(count) for count in counts]


LIST_ACK = load("list_ack")
"""Remove acked messages from the processing list and forget their failure counts:
by count (form ``all``, see LIST_TAKE; 0 when refused) or payload by payload."""


def list_ack_command(keys: Keys, *, consumer: str, ack: ListAck) -> tuple[Any, ...]:
    """LIST_ACK's ``EVALSHA`` command, to pipeline with others (see
    :meth:`Script.command`); it replies as :func:`list_ack` returns."""
    keys_ = [keys.processing(consumer), keys.failures, keys.epochs]
    return LIST_ACK.command(keys_, [consumer, *_ack_args(ack)])


async def list_ack(client: Redis, keys: Keys, *, consumer: str, ack: ListAck) -> int:
    """Make ``ack`` of ``consumer``: 1 acked, 0 refused (form ``all`` only), -1 nothing
    to ack.

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    keys_ = [keys.processing(consumer), keys.failures, keys.epochs]
    return int(await LIST_ACK(client, keys_, [consumer, *_ack_args(ack)]))


LIST_RELEASE = load("list_release")
"""Move held messages back to the head of the list, in order."""


async def list_release(
    client: Redis, keys: Keys, *, consumer: str, payloads: Sequence[bytes]
) -> int:
    """Move ``payloads`` (oldest first) from ``consumer``'s processing list back to
    the head of the list, in order; return how many were there.

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    keys_ = [keys.processing(consumer), keys.mailbox]
    return int(await LIST_RELEASE(client, keys_, payloads))


def list_release_command(
    keys: Keys, *, consumer: str, payloads: Sequence[bytes]
) -> tuple[Any, ...]:
    """LIST_RELEASE's ``EVALSHA`` command, to pipeline with others (see
    :meth:`Script.command`); it replies as :func:`list_release` returns."""
    return LIST_RELEASE.command([keys.processing(consumer), keys.mailbox], payloads)
