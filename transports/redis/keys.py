"""The Redis key schema: every key the transport and its scripts use, named once.

Keys of a mailbox called ``name`` (all but the first share the hash tag ``{name}``,
so a mailbox lives on one cluster slot):

==============================  ==========================================================
``name``                        the mailbox: a list, a stream or a channel. Any client
                                can ``RPUSH name '{"id":1}'`` or ``XADD name * id 1``.
``{name}:dead``                 dead letters (stream: payload, reason, actor, error_type,
                                error, traceback, attempts, dead_at; for a stream entry
                                written with fields of its own, each of them too, as
                                ``entry:<field>``, which replay writes back)
``{name}:failures``             hash: failed attempts per message (list: :func:`digest`
                                of the payload; stream: :func:`stream_field`)
``{name}:delayed``              zset: list retries, scored by due time (ms, server clock)
``{name}:delayed:<group>``      zset: stream retries of a group, by due time (likewise)
``{name}:scheduled``             zset: messages sent with a delay (``send(..., delay=)``),
                                as ``<token>:<payload>`` scored by due time (ms, server
                                clock), moved into the mailbox once due
``{name}:processing:<consumer>`` list: what a list consumer holds until it acks
``{name}:consumers``            zset: list consumer -> last heartbeat (ms, server clock)
``{name}:closed``               set: list consumers that closed after counting their
                                unacked messages as failed
``{name}:epochs``               hash: list consumer -> the epoch it registered (at open
                                and at each resync; a takeover drops it), ``<consumer>
                                ack`` -> the id of its last ack made, and ``{next}``
==============================  ==========================================================

Scheduled messages: :data:`SCHEDULED` (zset: a mailbox with scheduled messages, as
:func:`scheduled_record`, -> the earliest due time, ms) and :data:`SCHEDULED_MARKS` (hash:
the same record -> a count raised by every delayed send to it), which every transport that
runs a consumer reads to find the mailboxes with messages due (see ``scheduler.py``).

The node registry: :data:`NODES` (hash: node -> JSON of its info, ``seen_at`` and
``instance``) and :data:`NODES_EXPIRY` (zset: node -> expiry, ms, server clock).

Scripts get their keys in ``KEYS`` from the wrappers in ``scripts.py``,
``list/scripts.py`` and ``stream/scripts.py``, which take them from here. The one
exception is the processing lists of other consumers (a takeover, the stats), which a
script cannot know in advance: it gets their prefix, ``Keys.processing("")``, as an argument.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "NODES",
    "NODES_EXPIRY",
    "SCHEDULED",
    "SCHEDULED_MARKS",
    "Keys",
    "digest",
    "parse_scheduled_record",
    "scheduled_record",
    "stream_field",
]

NODES = "{actors:nodes}"
"""The node registry: node -> JSON of its info, ``seen_at`` and ``instance``."""

NODES_EXPIRY = "{actors:nodes}:expiry"
"""The node registry's expiry times: node -> when its record expires (ms, server clock)."""

SCHEDULED = "{actors:scheduled}"
"""Mailboxes with scheduled messages: record (:func:`scheduled_record`) -> earliest due (ms)."""

SCHEDULED_MARKS = "{actors:scheduled}:marks"
"""Record -> a count each delayed send raises, so that a promoter clearing a mailbox's entry
of :data:`SCHEDULED` can tell that a send came in meanwhile (it then leaves the entry)."""


def scheduled_record(kind: str, name: str, maxlen: int | None, expire_ms: int | None) -> str:
    """The member of :data:`SCHEDULED` for a mailbox: ``<kind> <maxlen|-> <expire ms|-> <name>``
    (mailbox names have no spaces), all a promoter needs to append to it."""
    size = "-" if maxlen is None else maxlen
    expire = "-" if expire_ms is None else expire_ms
    return f"{kind} {size} {expire} {name}"


def parse_scheduled_record(record: str) -> tuple[str, str, int | None, int | None]:
    """``kind, name, maxlen, expire_ms`` of a :func:`scheduled_record`.

    Raises:
        ValueError: ``record`` is not one.
    """
    kind, maxlen, expire, name = record.split(" ", 3)
    if kind not in ("list", "stream") or not name:
        raise ValueError(f"not a scheduled record: {record!r}")
    return (
        kind,
        name,
        None if maxlen == "-" else int(maxlen),
        None if expire == "-" else int(expire),
    )


def digest(payload: bytes) -> str:
    """The failure-count key of a list message: the SHA-1 of its payload, in hex.

    A Lua script computes the same with ``redis.sha1hex``.
    """
    return hashlib.sha1(payload, usedforsecurity=False).hexdigest()


def stream_field(group: str, entry_id: str) -> str:
    """The field of a stream entry in ``{name}:failures``: ``<group>:<entry id>``.

    The stream scripts build the same (``group .. ':' .. id``).
    """
    return f"{group}:{entry_id}"


class Keys:
    """The keys of one mailbox: the mailbox itself is the bare name, the rest share ``{name}``."""

    __slots__ = (
        "closed",
        "consumers",
        "dead",
        "delayed",
        "epochs",
        "failures",
        "mailbox",
        "scheduled",
        "tag",
    )

    def __init__(self, name: str) -> None:
        self.mailbox = name
        self.tag = f"{{{name}}}"
        self.dead = f"{self.tag}:dead"
        self.failures = f"{self.tag}:failures"
        self.delayed = f"{self.tag}:delayed"
        self.consumers = f"{self.tag}:consumers"
        self.closed = f"{self.tag}:closed"
        self.epochs = f"{self.tag}:epochs"
        self.scheduled = f"{self.tag}:scheduled"

    def delayed_in(self, group: str) -> str:
        """The retries of a stream group, scored by due time."""
        return f"{self.tag}:delayed:{group}"

    def processing(self, consumer: str) -> str:
        """The processing list of ``consumer`` (list mailboxes)."""
        return f"{self.tag}:processing:{consumer}"
