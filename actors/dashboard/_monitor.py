"""What the dashboard shows, read from the store once a second: the live nodes and the
mailboxes they read, with their counts and their throughput over recent minutes."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import trio

from transports import CommandError, MailboxSpec, MailboxStats, NodeInfo, Transport, TransportError

__all__ = ["BoxKey", "MailboxView", "Monitor", "Snapshot", "box_key"]

#: A mailbox as the dashboard lists it: its address, and its group (streams only).
BoxKey = tuple[str, str | None]
#: Seconds between two reads of the store, and the age of a snapshot worth reusing.
INTERVAL = 1.0
#: Seconds of throughput history kept, and the width of one of its buckets.
WINDOW = 300.0
BUCKET = 10.0


def box_key(spec: MailboxSpec) -> BoxKey:
    """How the dashboard names a mailbox: as ``status`` does."""
    return str(spec), spec.group_name if spec.kind == "stream" else None


@attrs.define
class MailboxView:
    """One mailbox: its spec, its counts (None when the store refused them: ``error``
    says why), the live nodes that read it, and how many messages they handled."""

    spec: MailboxSpec
    stats: MailboxStats | None = None
    error: str | None = None
    readers: list[str] = attrs.Factory(list)
    #: (wall time, messages handled since the dashboard started), oldest first.
    handled: deque[tuple[float, int]] = attrs.Factory(deque)

    @property
    def address(self) -> str:
        return str(self.spec)

    @property
    def group(self) -> str | None:
        return box_key(self.spec)[1]

    def rates(self, now: float) -> list[float | None]:
        """Messages handled per second in each :data:`BUCKET` of the last
        :data:`WINDOW` seconds, oldest first; None before the first sample."""
        buckets = int(WINDOW / BUCKET)
        rates: list[float | None] = []
        samples = list(self.handled)
        for i in range(buckets):
            start = now - WINDOW + i * BUCKET
            end = start + BUCKET
            before = [n for t, n in samples if t <= start]
            upto = [n for t, n in samples if t <= end]
            if not upto or not before:
                rates.append(None)
                continue
            rates.append((upto[-1] - before[-1]) / BUCKET)
        return rates

    def as_data(self, now: float) -> dict[str, Any]:
        """This view as JSON-able data."""
        stats = self.stats
        return {
            "mailbox": self.address,
            "kind": self.spec.kind,
            "group": self.group,
            "depth": stats.depth if stats else None,
            "pending": stats.pending if stats else None,
            "dead": stats.dead if stats else None,
            "readers": self.readers,
            "handled": self.handled[-1][1] if self.handled else 0,
            "rates": self.rates(now),
            "error": self.error,
        }


@attrs.frozen
class Snapshot:
    """The store as read at ``taken_at`` (wall time); ``error`` when it failed."""

    taken_at: float
    nodes: tuple[NodeInfo, ...] = ()
    mailboxes: tuple[MailboxView, ...] = ()
    error: str | None = None

    def mailbox(self, address: str) -> list[MailboxView]:
        """The views of the mailbox ``address`` (one per stream group)."""
        return [view for view in self.mailboxes if view.address == address]

    def as_data(self) -> dict[str, Any]:
        """The snapshot as JSON-able data (what ``/api/snapshot`` returns)."""
        now = self.taken_at
        return {
            "taken_at": now,
            "error": self.error,
            "nodes": [
                {
                    "node": node.node,
                    "host": node.info.get("host"),
                    "pid": node.info.get("pid"),
                    "uptime": _uptime(node, now),
                    "last_heartbeat": round(now - node.seen_at, 1),
                    "actors": sorted(node.info.get("actors", {})),
                    "tree": node.info.get("tree"),
                }
                for node in self.nodes
            ],
            "mailboxes": [view.as_data(now) for view in self.mailboxes],
        }


def _uptime(node: NodeInfo, now: float) -> float | None:
    started = node.info.get("started_at")
    return round(now - started, 1) if isinstance(started, int | float) else None


class Monitor:
    """Reads the store through ``transport`` (at most once per :data:`INTERVAL`) and
    keeps each mailbox's throughput, counted from the nodes' heartbeats.

    The mailboxes shown are those of the live nodes, and those seen since the
    dashboard started (their dead letters outlive their readers).
    """

    def __init__(self, transport: Transport, clock: Callable[[], float] = time.time) -> None:
        self.transport = transport
        self._clock = clock
        self._views: dict[BoxKey, MailboxView] = {}
        # Each node's last count of handled messages, by (instance, actor).
        self._counts: dict[tuple[str, str], int] = {}
        self._totals: dict[BoxKey, int] = {}
        self._last: Snapshot | None = None
        self._lock = trio.Lock()

    async def current(self) -> Snapshot:
        """The latest snapshot, read again when older than :data:`INTERVAL`.

        A store that fails gives a snapshot with ``error`` set and the last views.
        """
        async with self._lock:
            last = self._last
            if last is not None and self._clock() - last.taken_at < INTERVAL:
                return last
            try:
                self._last = await self._read()
            except TransportError as exc:
                self._last = Snapshot(
                    self._clock(),
                    mailboxes=tuple(self._views.values()),
                    error=f"the store failed: {exc}",
                )
            return self._last

    async def sample(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Read the store every :data:`INTERVAL` seconds, so that the throughput
        history covers the time nobody watched; runs until cancelled."""
        task_status.started()
        while True:
            await self.current()
            await trio.sleep(INTERVAL)

    def view(self, spec: MailboxSpec) -> MailboxView:
        """The view of ``spec`` (made, and shown from now on, if new)."""
        return self._views.setdefault(box_key(spec), MailboxView(spec))

    async def _read(self) -> Snapshot:
        nodes = tuple(await self.transport.nodes())
        now = self._clock()
        readers: dict[BoxKey, list[str]] = {}
        handled: dict[BoxKey, int] = {}
        errors: dict[BoxKey, str] = {}
        for node in nodes:
            counts = node.info.get("handled", {})
            for actor, about in node.info.get("actors", {}).items():
                spec = MailboxSpec.parse(about["mailbox"])
                if spec.kind == "stream":
                    spec = attrs.evolve(spec, group=about.get("group"))
                key = box_key(spec)
                self.view(spec)
                readers.setdefault(key, []).append(node.node)
                if about.get("error"):
                    errors.setdefault(key, f"{about['error']} (node {node.node})")
                count = counts.get(actor)
                if isinstance(count, int):
                    handled[key] = handled.get(key, 0) + self._delta(node, actor, count)
        for key, view in sorted(self._views.items(), key=lambda item: str(item[0])):
            view.readers = readers.get(key, [])
            view.error = errors.get(key)
            try:
                view.stats = await self.transport.mailbox_stats(view.spec)
            except CommandError as exc:
                if exc.code != "WRONGTYPE":
                    raise
                view.stats = None
                view.error = view.error or f"{view.spec}: {exc.__cause__ or exc}"
            total = self._totals[key] = self._totals.get(key, 0) + handled.get(key, 0)
            view.handled.append((now, total))
            while len(view.handled) > 2 and view.handled[1][0] < now - WINDOW - BUCKET:
                view.handled.popleft()
        views = tuple(view for _, view in sorted(self._views.items(), key=lambda i: str(i[0])))
        return Snapshot(now, nodes, views)

    def _delta(self, node: NodeInfo, actor: str, count: int) -> int:
        """Messages ``actor`` handled on ``node`` since the last look: none at the
        dashboard's first look (what ran before is not throughput now), all of them for
        a process seen later (it started since)."""
        key = (node.instance or node.node, actor)
        last = self._counts.get(key)
        self._counts[key] = count
        if last is None:
            return 0 if self._last is None else count
        return count - last if count >= last else count  # a restarted process counts anew
