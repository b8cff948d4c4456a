"""The Lua scripts of the mailboxes, and :class:`Script`, which runs one by its SHA1.

Each script's Lua lives in ``lua/<name>.lua`` beside this module; the functions
they share, in ``lua/prelude.lua``, come first in every script.

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

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.client import NEVER_DECODE

from transports._exceptions import CommandError

from ._client import DedicatedConnection, Redis

__all__ = ["Script"]


def _read(name: str) -> str:
    """The text of ``lua/<name>.lua`` (package data, so it works from a wheel or a zip)."""
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")


# A blank line before the prelude and before the body, as when the scripts were
# Python strings: the SHA1s stay those that servers may have cached.
_PRELUDE = "\n" + _read("prelude")


class Script:
    """A Lua script run with EVALSHA, sent in full (EVAL) only when the server lacks it.

    Replies are raw RESP values with bulk strings as ``bytes``.
    """

    __slots__ = ("sha", "source")

    def __init__(self, body: str) -> None:
        self.source = _PRELUDE + body
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    def command(
        self, keys: Sequence[str | bytes], args: Sequence[str | bytes | int | float]
    ) -> tuple[Any, ...]:
        """The ``EVALSHA`` command, to pipeline with others (a ``NOSCRIPT`` error reply
        means the server lacks the script: run it with :meth:`__call__` then)."""
        return (b"EVALSHA", self.sha, len(keys), *keys, *args)

    async def __call__(
        self,
        client: Redis | DedicatedConnection,
        keys: Sequence[str | bytes],
        args: Sequence[str | bytes | int | float],
    ) -> Any:
        """Run the script; EVAL (which caches it) after a NOSCRIPT reply.

        Raises:
            CommandError: the script failed (``.code`` is the error's first word,
                such as ``"NOGROUP"`` or ``"WRONGTYPE"``).
            TransportError: any other failure of the client.
        """
        try:
            return await client.execute_command(
                b"EVALSHA", self.sha, len(keys), *keys, *args, **{NEVER_DECODE: True}
            )
        except CommandError as exc:
            if exc.code != "NOSCRIPT":
                raise
        return await client.execute_command(
            b"EVAL", self.source, len(keys), *keys, *args, **{NEVER_DECODE: True}
        )


def _load(name: str) -> Script:
    """The script of ``lua/<name>.lua``."""
    return Script("\n" + _read(name))


LIST_TAKE = _load("list_take")
"""Ack the last batch, move due retries back, take over dead consumers, and move up
to ``count`` messages.

The ack's form ``all`` (the consumer acks everything its processing list holds)
costs O(1): no payloads travel. It applies only while the consumer's epoch in
``{name}:epochs`` is the one it registered (at open and at every resync), which
a takeover of its processing list removes, and the list has the expected length;
otherwise the script stops there, and says the ack was refused (0): the consumer
acks payload by payload, then resyncs.
"""

LIST_HEARTBEAT = _load("list_heartbeat")
"""Mark the consumer ``ARGV[1]`` alive now in ``{name}:consumers``."""

LIST_CLOSE = _load("list_close")
"""Count the attempts of the messages still held as failed, hand what was never handed
out back to the list, mark the name closed, and drop its epoch; return how many went
back."""

RECORD_FAILURE = _load("record_failure")
"""Failures of one message := max(failures, attempt); return it."""

DEAD_LETTER = _load("dead_letter")
"""Append to ``{name}:dead`` (keeping the newest ``dead_maxlen``), ack, and forget the
failure count, atomically; return the dead letter's id, or 0 (and nothing done) when an
at-least-once list consumer no longer holds the message."""

LIST_RETRY = _load("list_retry")
"""Ack a list message and schedule it in ``{name}:delayed``; 0 (and nothing done) when
an at-least-once consumer no longer holds it."""

LIST_ACK = _load("list_ack")
"""Remove acked messages from the processing list and forget their failure counts:
by count (form ``all``, see LIST_TAKE; 0 when refused) or payload by payload."""

LIST_RELEASE = _load("list_release")
"""Move held messages back to the head of the list, in order."""

STREAM_RETRY = _load("stream_retry")
"""Hand pending entries to the pseudo-consumer ``{delayed}`` until they fall due."""

STREAM_TAKE = _load("stream_take")
"""Read own history, deliver due retries, claim idle entries, read new ones."""

STREAM_RENEW = _load("stream_renew")
"""Reset the idle time of the held entries this consumer still owns (its lease)."""

REPLAY = _load("replay")
"""Send dead letters back to their mailbox and delete them from ``{name}:dead``; return
how many, and the ids not found, kept as no subscriber received them, kept as empty. A
stream entry kept whole (its ``entry:`` fields) is written back with the same fields."""

STATS = _load("stats")
"""Depth, pending and dead-letter counts of a mailbox."""

ANNOUNCE = _load("announce")
"""Record (or remove) a node's heartbeat, expiring ``ttl`` ms from now, unless another
instance's record of it is live (and not the very record it may replace): then change
nothing and return that record ('' when done)."""

NODES = _load("nodes")
"""Prune expired nodes and return the live ones with what they announced."""
