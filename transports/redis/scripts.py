"""The Lua scripts of the mailboxes, :class:`Script`, which runs one by its SHA1, and
one typed function per script, which names its keys and arguments.

Each script's Lua lives in ``lua/<name>.lua`` beside this module; the functions
they share, in ``lua/prelude.lua``, come first in every script. The wrapper
functions (here for the scripts of every kind and of the transport, in
``list/scripts.py`` and ``stream/scripts.py`` for the others) are the only code
that knows a script's ``KEYS`` and ``ARGV`` order (tests/transports/redis/test_scripts.py checks
that each passes every index its script reads); the keys come from
:mod:`transports.redis.keys`.

Every multi-step change of a mailbox runs as one script, so it is atomic and
costs one round trip. Scripts read the time with ``TIME`` (the server's clock),
so consumers on hosts with skewed clocks agree on leases and due times. Keys
they touch that are not in ``KEYS`` share the mailbox's hash tag (``{name}``),
so a mailbox still lives on one cluster slot.

A list retry waits in ``{name}:delayed`` as the member ``<token>:<payload>`` (the
random token keeps equal payloads apart). A stream retry stays pending in its
group, owned by the pseudo-consumer ``{delayed}`` (braces: no real consumer can
have that name), with its entry id in ``{name}:delayed:<group>``.

Redis does not roll a script back: one that removed a message and then failed to
write it elsewhere would lose it. So every script first checks the types of the
keys it touches (``wrong_type``) and, if one holds another type (a client wrote
it), changes nothing and replies ``WRONGTYPE key '<key>' holds a <type>, not a
<type>``: a failed move leaves the message where it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any, NamedTuple

from .._values import Failure
from .client import DedicatedConnection, LuaScript, Redis
from .keys import (
    NODES as _NODES,
    NODES_EXPIRY as _NODES_EXPIRY,
    Keys,
)

__all__ = [
    "Arg",
    "Attempt",
    "Letter",
    "Replayed",
    "Script",
    "announce",
    "dead_letter",
    "fail",
    "flag",
    "live_nodes",
    "load",
    "record_failure",
    "replay",
    "stats",
]

Arg = str | bytes | int | float
"""What a script's argument may be (sent as a bulk string)."""


def _read(name: str) -> str:
    """The text of ``lua/<name>.lua`` (package data, so it works from a wheel or a zip)."""
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")


# A blank line before the prelude and before the body, as when the scripts were
# Python strings: the SHA1s stay those that servers may have cached.
_PRELUDE = "\n" + _read("prelude")


class Script(LuaScript):
    """A Lua script of the mailboxes (the prelude, then ``body``), run with EVALSHA; the
    client sends it in full (EVAL) only when the server lacks it.

    Replies are raw RESP values with bulk strings as ``bytes``.
    """

    __slots__ = ("name",)

    def __init__(self, body: str, name: str = "") -> None:
        super().__init__(_PRELUDE + body)
        self.name = name

    async def __call__(
        self,
        client: Redis | DedicatedConnection,
        keys: Sequence[str | bytes],
        args: Sequence[Arg],
    ) -> Any:
        """Run the script (see :meth:`Redis.run_script`).

        Raises:
            CommandError: the script failed (``.code`` is the error's first word,
                such as ``"NOGROUP"`` or ``"WRONGTYPE"``).
            TransportError: any other failure of the client.
        """
        return await client.run_script(self, keys, args)


def load(name: str) -> Script:
    """The script of ``lua/<name>.lua``."""
    return Script("\n" + _read(name), name)


def flag(value: bool) -> str:
    """A boolean argument of a script: ``"1"`` or ``"0"``."""
    return "1" if value else "0"


# -- failures and dead letters, of every kind -------------------------------------------

RECORD_FAILURE = load("record_failure")
"""Failures of one message := max(failures, attempt); return it."""


async def record_failure(client: Redis, keys: Keys, *, field: str, attempt: int) -> int:
    """Raise the failure count of ``field`` in ``{name}:failures`` to ``attempt`` (if
    below); return the count.

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    return int(await RECORD_FAILURE(client, [keys.failures], [field, attempt]))


DEAD_LETTER = load("dead_letter")
"""Append messages to ``{name}:dead`` (keeping the newest ``dead_maxlen``), ack them, and
forget their failure counts, atomically; reply each one's dead letter id, or 0 (and
nothing done for it) when an at-least-once list consumer no longer holds it."""


class Letter(NamedTuple):
    """One message for :func:`dead_letter`: its ``payload``, ``failure``, failure count's
    ``field`` ('' when none is kept), the ``attempt`` that failed last, and its stream
    ``entry_id`` ('' for a list)."""

    payload: bytes
    failure: Failure
    field: str
    attempt: int
    entry_id: str = ""


async def dead_letter(
    client: Redis,
    keys: Keys,
    *,
    kind: str,
    consumer: str,
    group: str,
    maxlen: int | None,
    held: bool,
    letters: Sequence[Letter],
) -> list[str | None]:
    """Dead-letter ``letters``, messages of a mailbox of ``kind`` (see DEAD_LETTER), in
    one script; return their dead letter ids, in order.

    ``group``: the stream group to ack them in ('' otherwise); ``maxlen``: how many
    dead letters to keep (None: all); ``held``: ``consumer``'s processing list holds
    them (an at-least-once list), which they leave, else the mailbox does. An id is
    None when ``held`` and that message is no longer there (nothing done for it).

    Raises:
        CommandError: the script failed (nothing was done).
        TransportError: the client failed.
    """
    source = keys.processing(consumer) if held else keys.mailbox
    args: list[Arg] = [kind, group, "" if maxlen is None else maxlen, flag(held)]
    for letter in letters:
        failure = letter.failure
        args += [
            letter.field,
            letter.attempt,
            letter.payload,
            failure.reason,
            failure.actor,
            failure.error_type,
            failure.error,
            failure.traceback,
            letter.entry_id,
        ]
    replies = await DEAD_LETTER(client, [keys.dead, keys.failures, source], args)
    return [reply.decode() if isinstance(reply, bytes) else None for reply in replies]


FAIL = load("fail")
"""Failed attempts in one script: count each, then dead-letter it (at max deliveries),
schedule it again, keep it held or drop it (pub/sub); reply each one's verdict, count
and dead letter id."""


class Attempt(NamedTuple):
    """One failed attempt for :func:`fail`: its message's ``payload``, ``failure``,
    failure count's ``field`` ('' when none is kept), the ``attempt`` that failed, its
    stream ``entry_id`` ('' otherwise), ``delay_ms`` (None: keep it held), its
    ``max_deliveries`` and a random ``token`` (a list retry's, keeping equal payloads
    apart)."""

    payload: bytes
    failure: Failure
    field: str
    attempt: int
    entry_id: str
    delay_ms: int | None
    max_deliveries: int
    token: str


async def fail(
    client: Redis,
    keys: Keys,
    *,
    kind: str,
    consumer: str,
    group: str,
    maxlen: int | None,
    held: bool,
    attempts: Sequence[Attempt],
) -> list[tuple[str, int, str | None]]:
    """Count and decide the fates of ``attempts`` at messages of a mailbox of ``kind``
    (see FAIL), in one script; return each one's verdict (``retried``, ``held``,
    ``dead``, ``dropped``, ``taken_over``), count and dead letter id, in order.

    ``group``: the stream group ('' otherwise); ``maxlen``: how many dead letters to
    keep (None: all); ``held``: ``consumer``'s processing list holds them (an
    at-least-once list), which they leave, and which tells if they are still ours.

    Raises:
        CommandError: the script failed (nothing was done).
        TransportError: the client failed.
    """
    source = keys.processing(consumer) if held else keys.mailbox
    delayed = keys.delayed_in(group) if kind == "stream" else keys.delayed
    args: list[Arg] = [kind, group, "" if maxlen is None else maxlen, flag(held)]
    for one in attempts:
        failure = one.failure
        args += [
            one.field,
            one.attempt,
            one.payload,
            one.entry_id,
            "" if one.delay_ms is None else one.delay_ms,
            one.max_deliveries,
            one.token,
            failure.reason,
            failure.actor,
            failure.error_type,
            failure.error,
            failure.traceback,
        ]
    replies = await FAIL(client, [keys.dead, keys.failures, source, delayed], args)
    return [
        (bytes(verdict).decode(), int(count), dead_id.decode() if dead_id else None)
        for verdict, count, dead_id in replies
    ]


# -- the transport: replay, stats, nodes ------------------------------------------------

REPLAY = load("replay")
"""Send dead letters back to their mailbox and delete them from ``{name}:dead``; return
how many, and the ids not found, kept as no subscriber received them, kept as empty. A
stream entry kept whole (its ``entry:`` fields) is written back with the same fields."""


class Replayed(NamedTuple):
    """What REPLAY replied."""

    replayed: int
    """How many letters went back."""
    missing: list[str]
    """Ids not found."""
    unheard: list[str]
    """Ids kept: no subscriber received them (pub/sub)."""
    empty: list[str]
    """Ids kept: they hold no payload."""


async def replay(
    client: Redis, keys: Keys, *, kind: str, maxlen: int | None, letter_ids: Sequence[str | bytes]
) -> Replayed:
    """Send the dead letters ``letter_ids`` back to the mailbox (of ``kind``; a
    stream trimmed to about ``maxlen``) and delete them.

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    count, *lists = await REPLAY(
        client,
        [keys.dead, keys.mailbox, keys.failures],
        [kind, "" if maxlen is None else maxlen, *letter_ids],
    )
    missing, unheard, empty = ([raw.decode() for raw in part] for part in lists)
    return Replayed(int(count), missing, unheard, empty)


STATS = load("stats")
"""Depth, pending and dead-letter counts of a mailbox."""


async def stats(client: Redis, keys: Keys, *, kind: str, group: str) -> tuple[int, int, int]:
    """Depth, pending and dead-letter counts of the mailbox (of ``kind``; of
    ``group`` for a stream).

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    third = keys.consumers if kind == "list" else keys.delayed_in(group)
    depth, pending, dead = await STATS(
        client, [keys.mailbox, keys.dead, third], [kind, group, keys.processing("")]
    )
    return int(depth), int(pending), int(dead)


ANNOUNCE = load("announce")
"""Record (or remove) a node's heartbeat, expiring ``ttl`` ms from now, unless another
instance's record of it is live (and not the very record it may replace): then change
nothing and return that record ('' when done)."""


async def announce(
    client: Redis,
    *,
    node: str,
    value: str,
    ttl_ms: int,
    instance: str,
    replacing: tuple[str, float] | None,
) -> bytes:
    """Record ``node``'s ``value`` ('' removes it) for ``ttl_ms``, held by ``instance``,
    in the node registry; ``replacing``: the instance and ``seen_at`` of a record it
    may replace. Returns '' when done, else the live record that holds the name.

    Raises:
        AuthenticationError: the user may not write the registry.
        CommandError: the script failed.
        TransportError: the client failed.
    """
    mine: list[Arg] = ["0", "", "0"]
    if replacing is not None:
        mine = ["1", replacing[0], repr(replacing[1])]
    reply = await ANNOUNCE(client, [_NODES, _NODES_EXPIRY], [node, value, ttl_ms, instance, *mine])
    return bytes(reply)


NODES = load("nodes")
"""Prune expired nodes and return the live ones with what they announced."""


async def live_nodes(client: Redis) -> list[bytes]:
    """Prune expired nodes from the registry; return node, record pairs of the live ones.

    Raises:
        CommandError: the script failed.
        TransportError: the client failed.
    """
    return list(await NODES(client, [_NODES, _NODES_EXPIRY], []))
