"""The data of in-memory mailboxes: what Redis would keep in its keys, as plain objects.

Nothing here awaits or reads a clock: callers pass ``now`` (from
``trio.current_time()``), so that every change happens between two checkpoints.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

import attrs
import trio

from transports._exceptions import ConfigurationError

from .._values import DeadLetter, Delivery, Failure

StreamId = tuple[int, int]
"""A stream entry id ``<ms>-<seq>`` as a pair of ints, ordered like Redis orders them."""

_T = TypeVar("_T")


def format_id(entry_id: StreamId) -> str:
    """Render an entry id the way Redis does: ``"<ms>-<seq>"``."""
    return f"{entry_id[0]}-{entry_id[1]}"


def parse_id(text: str) -> StreamId:
    """Parse ``"<ms>-<seq>"``.

    Raises:
        ConfigurationError: ``text`` is not a stream entry id.
    """
    ms, sep, seq = text.partition("-")
    if not (sep and ms.isdigit() and seq.isdigit()):
        raise ConfigurationError(f"{text!r} is not a stream entry id")
    return int(ms), int(seq)


def next_id(last: StreamId, now: float) -> StreamId:
    """The id of an entry added at ``now`` after ``last``: time-based, always increasing.

    As in Redis, ``0-0`` is never used.
    """
    ms = max(int(now * 1000), 0)
    if ms > last[0]:
        return (ms, 0)
    return (last[0], last[1] + 1)


def digest(payload: bytes) -> str:
    """The key of a list message's failure count: the SHA-1 of its payload, in hex.

    SHA-1 because a Redis Lua script can compute the same key (``redis.sha1hex``).
    """
    return hashlib.sha1(payload, usedforsecurity=False).hexdigest()


class Signal:
    """Wakes every task waiting for a change of one mailbox (no polling)."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        """Wake every task in :meth:`wait_until` now."""
        self._event.set()
        self._event = trio.Event()

    async def wait_until(self, deadline: float) -> None:
        """Wait for the next :meth:`notify`, or until ``deadline`` (trio time) passes."""
        with trio.move_on_at(deadline):
            await self._event.wait()


@attrs.define(eq=False)
class Members:
    """The consumers of one list, or of one stream group: who is open, who was seen when.

    Open consumers are alive by definition in one process, so they never need to
    heartbeat: their lease counts from the moment they close.
    """

    live: dict[str, object] = attrs.Factory(dict)
    seen_at: dict[str, float] = attrs.Factory(dict)

    def join(self, name: str, session: object) -> None:
        """Register the open consumer ``session`` under ``name``.

        Raises:
            ConfigurationError: another open consumer already has that name.
        """
        if name in self.live:
            raise ConfigurationError(f"a consumer named {name!r} is already open on this mailbox")
        self.live[name] = session

    def leave(self, name: str, session: object, now: float) -> None:
        """Unregister ``session``: from ``now`` on, its lease runs out."""
        if self.live.get(name) is session:
            del self.live[name]
            self.seen_at[name] = now

    def expires_at(self, name: str, lease: float) -> float:
        """When ``name``'s lease runs out: never while it is open."""
        if name in self.live:
            return math.inf
        return self.seen_at.get(name, -math.inf) + lease


@attrs.define(eq=False)
class DelayedQueue(Generic[_T]):
    """Items due at a given time, like a Redis sorted set scored by due time."""

    _heap: list[tuple[float, int, _T]] = attrs.Factory(list)
    _order: Iterator[int] = attrs.Factory(itertools.count)

    def push(self, due: float, item: _T) -> None:
        """Hold ``item`` until ``due``."""
        heapq.heappush(self._heap, (due, next(self._order), item))

    def next_due(self) -> float:
        """The earliest due time, or infinity when empty."""
        return self._heap[0][0] if self._heap else math.inf

    def pop_due(self, now: float) -> list[_T]:
        """Remove and return the items due at ``now``, earliest first."""
        due: list[_T] = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due


@attrs.define(eq=False)
class Held:
    """A list message in a consumer's processing list.

    ``session`` is the open consumer it was last delivered to, as ``delivery``; a
    message held by a session that is gone is redelivered to the next consumer of
    the same name.
    """

    payload: bytes
    key: str
    attempt: int
    session: object
    delivery: Delivery | None = None


@attrs.define(eq=False)
class ListBox:
    """A list mailbox: the queue, the processing list of each consumer, failure counts."""

    signal: Signal = attrs.Factory(Signal)
    queue: deque[bytes] = attrs.Factory(deque)
    processing: dict[str, list[Held]] = attrs.Factory(dict)
    members: Members = attrs.Factory(Members)
    failures: dict[str, int] = attrs.Factory(dict)
    delayed: DelayedQueue[bytes] = attrs.Factory(DelayedQueue)


@attrs.define(eq=False)
class Pending:
    """An entry of a group's pending entries list (PEL).

    ``since`` is its last delivery, or the last lease renewal of its owner;
    another consumer may claim it once ``since + lease`` has passed and the owner
    is not open.
    """

    owner: str
    session: object
    attempt: int
    since: float


@attrs.define(eq=False)
class Group:
    """A consumer group of a stream: read position, pending entries, failure counts.

    ``last_delivered`` starts at ``0-0``: a group reads the entries sent before it
    existed (``XGROUP CREATE ... 0 MKSTREAM``), so nothing sent before the first
    consumer opened is lost. ``ready`` holds retried entries that are due.
    """

    last_delivered: StreamId = (0, 0)
    pending: dict[StreamId, Pending] = attrs.Factory(dict)
    members: Members = attrs.Factory(Members)
    failures: dict[StreamId, int] = attrs.Factory(dict)
    delayed: DelayedQueue[StreamId] = attrs.Factory(DelayedQueue)
    ready: deque[StreamId] = attrs.Factory(deque)


@attrs.define(eq=False)
class StreamBox:
    """A stream mailbox: entries in id order and the consumer groups reading them."""

    signal: Signal = attrs.Factory(Signal)
    ids: list[StreamId] = attrs.Factory(list)
    payloads: dict[StreamId, bytes] = attrs.Factory(dict)
    last_id: StreamId = (0, 0)
    groups: dict[str, Group] = attrs.Factory(dict)

    def add(self, payload: bytes, now: float, maxlen: int | None) -> StreamId:
        """Append an entry (``XADD``), trimming to ``maxlen`` entries exactly."""
        self.last_id = next_id(self.last_id, now)
        self.ids.append(self.last_id)
        self.payloads[self.last_id] = payload
        if maxlen is not None and len(self.ids) > maxlen:
            for gone in self.ids[:-maxlen]:
                del self.payloads[gone]
            del self.ids[:-maxlen]
        return self.last_id

    def after(self, entry_id: StreamId, count: int) -> list[StreamId]:
        """Up to ``count`` ids of entries newer than ``entry_id``, oldest first."""
        start = bisect_right(self.ids, entry_id)
        return self.ids[start : start + count]


@attrs.define(eq=False)
class DeadBox:
    """A dead-letter stream (``<mailbox>:dead``)."""

    letters: dict[str, DeadLetter] = attrs.Factory(dict)
    last_id: StreamId = (0, 0)

    def add(
        self, payload: bytes, failure: Failure, attempts: int, now: float, maxlen: int | None
    ) -> DeadLetter:
        """Append a dead letter, keeping the newest ``maxlen`` (all for None); ``now``
        (trio time) orders ids, ``dead_at`` is wall time."""
        self.last_id = next_id(self.last_id, now)
        letter = DeadLetter(format_id(self.last_id), payload, failure, attempts, time.time())
        letters = self.letters
        letters[letter.id] = letter
        if maxlen is not None:
            while len(letters) > maxlen:
                del letters[next(iter(letters))]
        return letter


@attrs.define(eq=False)
class Subscriber:
    """An open pub/sub consumer: its channel or glob pattern, and what it has not fetched."""

    channel: str
    pattern: bool
    signal: Signal = attrs.Factory(Signal)
    queue: deque[Delivery] = attrs.Factory(deque)
