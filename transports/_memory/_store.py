"""MemoryStore: the in-process stand-in for one Redis server."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, TypeVar

import trio

from transports._exceptions import CommandError, ConfigurationError

from .._values import Delivery, MailboxSpec, MailboxStats, NodeInfo
from ._state import DeadBox, DelayedQueue, ListBox, StreamBox, Subscriber

__all__ = ["MemoryStore"]

_Box = TypeVar("_Box", ListBox, StreamBox, DeadBox)

_KIND_OF = {ListBox: "a list", StreamBox: "a stream", DeadBox: "a dead-letter stream"}


class MemoryStore:
    """Mailboxes kept in this process's memory: what one Redis server is to its clients.

    Every :class:`~transports.memory.MemoryTransport` made on the same store sees
    the same mailboxes, as several processes connected to one Redis would. Lists,
    streams and dead-letter streams share one key space (a list and a stream of the
    same name collide, as in Redis); pub/sub channels have their own.

    Nothing is ever persisted, and nothing is removed unless Redis would remove it:
    acked stream entries stay until ``maxlen`` trims them.
    """

    def __init__(self) -> None:
        self._keys: dict[str, ListBox | StreamBox | DeadBox] = {}
        self._subscribers: dict[Subscriber, None] = {}
        self._published = itertools.count(1)
        # node -> (info, seen_at (Unix time), expires (trio clock), holding instance)
        self._nodes: dict[str, tuple[Mapping[str, Any], float, float, str]] = {}
        # mailbox name -> messages sent with a delay ({name}:scheduled), due in trio time
        self._scheduled: dict[str, DelayedQueue[tuple[MailboxSpec, bytes]]] = {}

    def __repr__(self) -> str:
        return f"<MemoryStore keys={len(self._keys)} subscribers={len(self._subscribers)}>"

    def _key(self, name: str, box_type: type[_Box]) -> _Box:
        box = self._keys.get(name)
        if box is None:
            box = self._keys[name] = box_type()
        if not isinstance(box, box_type):
            raise CommandError(
                f"WRONGTYPE key {name!r} holds {_KIND_OF[type(box)]}, not {_KIND_OF[box_type]}",
                code="WRONGTYPE",
            )
        return box

    def _list(self, name: str) -> ListBox:
        """The list called ``name``, created empty if new.

        Raises:
            CommandError: ``name`` holds something else (``code="WRONGTYPE"``).
        """
        return self._key(name, ListBox)

    def _stream(self, name: str) -> StreamBox:
        """The stream called ``name``, created empty if new.

        Raises:
            CommandError: ``name`` holds something else (``code="WRONGTYPE"``).
        """
        return self._key(name, StreamBox)

    def _dead(self, mailbox: str) -> DeadBox:
        """The dead-letter stream of ``mailbox``, created empty if new.

        Raises:
            CommandError: ``<mailbox>:dead`` holds something else (``code="WRONGTYPE"``).
        """
        return self._key(f"{mailbox}:dead", DeadBox)

    def _stats(self, spec: MailboxSpec) -> MailboxStats:
        """Depth, pending and dead counts of ``spec``'s mailbox (``LLEN``, ``XINFO GROUPS``)."""
        box = self._keys.get(spec.name)
        dead_box = self._keys.get(f"{spec.name}:dead")
        dead = len(dead_box.letters) if isinstance(dead_box, DeadBox) else 0
        if isinstance(box, ListBox):
            pending = sum(len(items) for items in box.processing.values())
            return MailboxStats(len(box.queue), pending, dead)
        if isinstance(box, StreamBox):
            group = box.groups.get(spec.group_name)
            if group is None:
                return MailboxStats(len(box.ids), 0, dead)
            lag = len(box.after(group.last_delivered, len(box.ids))) + len(group.ready)
            return MailboxStats(lag, len(group.pending), dead)
        return MailboxStats(0, 0, dead)

    def _announce(
        self,
        node: str,
        info: Mapping[str, Any] | None,
        ttl: float,
        instance: str,
        replacing: NodeInfo | None,
    ) -> NodeInfo | None:
        held = self._nodes.get(node)
        if held is not None and held[2] > trio.current_time() and held[3] != instance:
            holder = NodeInfo(node, held[0], held[1], held[3])
            if holder != replacing:
                return holder
        if info is None:
            self._nodes.pop(node, None)
        else:
            self._nodes[node] = (dict(info), time.time(), trio.current_time() + ttl, instance)
        return None

    def _live_nodes(self) -> list[NodeInfo]:
        now = trio.current_time()
        return [
            NodeInfo(node, info, seen_at, instance)
            for node, (info, seen_at, expires, instance) in sorted(self._nodes.items())
            if expires > now
        ]

    def _append(self, spec: MailboxSpec, payloads: Sequence[bytes], now: float) -> None:
        """Append ``payloads`` to the mailbox ``spec`` at ``now`` (``send``).

        Raises:
            ConfigurationError: ``spec`` is a pub/sub pattern.
            CommandError: the name holds another kind of mailbox.
        """
        if spec.kind == "pubsub":
            if spec.pattern:
                raise ConfigurationError(f"cannot publish to pattern {spec.name!r}: use a channel")
            self._publish(spec.name, payloads)
        elif spec.kind == "list":
            box = self._list(spec.name)
            box.queue.extend(payloads)
            box.signal.notify()
        else:
            stream = self._stream(spec.name)
            for payload in payloads:
                stream.add(payload, now, spec.maxlen)
            stream.signal.notify()

    def _schedule(self, spec: MailboxSpec, payloads: Sequence[bytes], due: float) -> None:
        """Hold ``payloads`` for ``spec`` until ``due`` (trio time), and wake the mailbox's
        waiting consumers so that they wait until then at most.

        Raises:
            ConfigurationError: ``spec`` is pub/sub (nothing holds a publish).
            CommandError: the name holds another kind of mailbox.
        """
        if spec.kind == "pubsub":
            raise ConfigurationError(f"{spec}: pub/sub cannot hold a message for later")
        box = self._list(spec.name) if spec.kind == "list" else self._stream(spec.name)
        queue = self._scheduled.setdefault(spec.name, DelayedQueue())
        for payload in payloads:
            queue.push(due, (spec, payload))
        box.signal.notify()

    def _promote(self, name: str, now: float) -> float:
        """Append the messages of mailbox ``name`` held until ``now`` or before, in due
        order; return when the next one falls due (infinity: none)."""
        queue = self._scheduled.get(name)
        if queue is None:
            return math.inf
        for spec, payload in queue.pop_due(now):
            self._append(spec, [payload], now)
        due = queue.next_due()
        if due == math.inf:
            del self._scheduled[name]
        return due

    def _subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers[subscriber] = None

    def _unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.pop(subscriber, None)
        subscriber.queue.clear()

    def _publish(self, channel: str, payloads: Sequence[bytes]) -> int:
        """Give every payload to every subscriber of ``channel`` open now (``PUBLISH``);
        return how many subscribers received them."""
        ids = [str(next(self._published)) for _ in payloads]
        deliveries = [
            Delivery(id_, payload, channel=channel, token=id_)
            for id_, payload in zip(ids, payloads, strict=True)
        ]
        receivers = 0
        for subscriber in self._subscribers:
            if (
                fnmatchcase(channel, subscriber.channel)
                if subscriber.pattern
                else channel == subscriber.channel
            ):
                subscriber.queue.extend(deliveries)
                subscriber.signal.notify()
                receivers += 1
        return receivers
