"""Death watch: an actor monitors another (on this node, or on another by its node
name) and gets a :class:`Down` message in its mailbox when that one stops for good.

On this node the supervision tree tells the watch when a child comes up and when it
goes down for good (``_children.ChildWatch``): a restart is not a death. Another
node's instances are known from what it announces with each heartbeat (``alive``:
the names up; ``down``: why recent ones went down), looked at every
:data:`~actors._node.HEARTBEAT` seconds while monitors of other nodes are held; a
node whose record expired (3 heartbeats) or was withdrawn is down.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter
from typing import Any, ClassVar

import attrs
import trio

from transports import MailboxSpec, Transport, TransportError

from . import _node
from ._actor import ActorRun
from ._retry import waits_out
from ._tree import ChildRecord

__all__ = ["Down", "Watch"]

logger = logging.getLogger("actors.watch")

#: Seconds before a Down whose send failed for an outage is tried again.
_SEND_RETRY = 1.0


@attrs.frozen
class Down:
    """Sent to a watcher's mailbox when what it monitors stops for good (handle it with
    a handler that takes ``Down``).

    ``who`` is the name monitored (an instance such as ``"ledger-0"``, an actor name
    such as ``"ledger"``, or a supervisor's name) and ``node`` its node; ``ref`` is what
    ``monitor`` returned. ``reason``: ``"normal"`` (it stopped without error: its
    supervisor stopped it, ``stop_child``), ``"noproc"`` (it was not running when
    monitored), ``"noconnection"`` (its node stopped heartbeating: it died, lost the
    store, or stopped), or the ``repr`` of the exception it crashed with and was not
    restarted after (a ``stop`` directive, its supervisor gave up).
    """

    __message_type__: ClassVar[str] = "actors.Down"

    who: str
    reason: str
    node: str = ""
    ref: str = ""


@attrs.define(eq=False)
class _Monitor:
    ref: str
    target: str
    node: str
    owner: str  # the watcher instance's tree path: its monitors end with it
    mailbox: MailboxSpec


def _names(child: ChildRecord) -> tuple[str, ...]:
    """What a child can be monitored as: its name, and an actor instance's actor name."""
    run = child.spec.run
    if isinstance(run, ActorRun) and run.actor.name != child.spec.name:
        return (child.spec.name, run.actor.name)
    return (child.spec.name,)


def _reason(child: ChildRecord) -> str:
    return "normal" if child.error is None else repr(child.error)


class Watch:
    """The death watch of one run of a system on ``node``: monitors, who is up here,
    and the sends of Down messages (through ``tell``)."""

    def __init__(self, transport: Transport, node: str, tell: Any) -> None:
        self.transport = transport
        self.node = node
        self._tell = tell
        self._alive: Counter[str] = Counter()
        #: Why names went down recently (trio time, reason): announced to other nodes.
        self._recent: dict[str, tuple[float, str]] = {}
        self._local: dict[str, dict[str, _Monitor]] = {}  # by target, by ref
        self._remote: dict[str, _Monitor] = {}  # by ref
        self._send, self._downs = trio.open_memory_channel[tuple[_Monitor, str]](math.inf)
        self._remote_added = trio.Event()
        #: Set when the system stops: what stops with it sends no Down (its watchers on
        #: this node stop too; those elsewhere see the node go).
        self.stopping = False

    # -- the tree's side (ChildWatch) ----------------------------------------------------

    def up(self, child: ChildRecord) -> None:
        """``child`` came up: it can be monitored by its names."""
        for name in _names(child):
            self._alive[name] += 1
            self._recent.pop(name, None)

    def down(self, child: ChildRecord) -> None:
        """``child`` went down for good: monitors of a name with nothing left up fire."""
        reason = _reason(child)
        for name in _names(child):
            self._alive[name] -= 1
            if self._alive[name] > 0:
                continue
            del self._alive[name]
            self._recent[name] = (trio.current_time(), reason)
            for monitor in self._local.pop(name, {}).values():
                self._fire(monitor, reason)

    def announced(self) -> dict[str, Any]:
        """What this node tells the others with its heartbeat."""
        horizon = trio.current_time() - 3 * _node.HEARTBEAT
        for name in [n for n, (at, _) in self._recent.items() if at < horizon]:
            del self._recent[name]
        return {
            "alive": sorted(self._alive),
            "down": {name: reason for name, (_, reason) in self._recent.items()},
        }

    # -- the watchers' side ----------------------------------------------------------------

    async def monitor(
        self, target: str, node: str | None, *, owner: str, mailbox: MailboxSpec
    ) -> str:
        """Monitor ``target`` on ``node`` (None: this one) for the watcher ``owner``,
        whose Down goes to ``mailbox``; returns the monitor's ref. A target not
        running (on a node not alive) gets its Down at once (``noproc``,
        ``noconnection``).

        Raises:
            TransportError: looking at another node failed.
        """
        node = node or self.node
        monitor = _Monitor(uuid.uuid4().hex, target, node, owner, mailbox)
        if node == self.node:
            if self._alive[target] > 0:
                self._local.setdefault(target, {})[monitor.ref] = monitor
            else:
                self._fire(monitor, "noproc")
            return monitor.ref
        self._remote[monitor.ref] = monitor
        await self._look({monitor.ref: monitor})
        self._remote_added.set()
        return monitor.ref

    def demonitor(self, ref: str) -> None:
        """Drop the monitor ``ref`` (a Down already on its way may still arrive)."""
        if self._remote.pop(ref, None) is not None:
            return
        for monitors in self._local.values():
            if monitors.pop(ref, None) is not None:
                return

    def drop_owner(self, owner: str) -> None:
        """The watcher incarnation ``owner`` ended: its monitors end with it."""
        for ref in [r for r, m in self._remote.items() if m.owner == owner]:
            del self._remote[ref]
        for monitors in self._local.values():
            for ref in [r for r, m in monitors.items() if m.owner == owner]:
                del monitors[ref]

    def _fire(self, monitor: _Monitor, reason: str) -> None:
        if self.stopping:
            return
        self._send.send_nowait((monitor, reason))

    async def _look(self, monitors: dict[str, _Monitor]) -> None:
        """Fire those of ``monitors`` (of other nodes) whose target is down."""
        nodes = {info.node: info.info for info in await self.transport.nodes()}
        for monitor in list(monitors.values()):
            info = nodes.get(monitor.node)
            if info is None:
                reason = "noconnection"
            elif monitor.target in info.get("alive", ()):
                continue
            else:
                reason = str(info.get("down", {}).get(monitor.target, "noproc"))
            if self._remote.pop(monitor.ref, None) is not None:
                self._fire(monitor, reason)

    # -- its tasks -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send the Down messages, and look at other nodes every heartbeat while
        monitors of them are held. Runs until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._send_downs)
            task_status.started()
            while True:
                if not self._remote:
                    self._remote_added = trio.Event()
                    await self._remote_added.wait()
                await trio.sleep(_node.HEARTBEAT)
                try:
                    await self._look(self._remote)
                except TransportError as exc:
                    if not waits_out(exc):
                        raise
                    logger.debug("death watch: cannot look at the nodes: %s", exc)

    async def _send_downs(self) -> None:
        # At most once: a Down is sent once its death is seen; an outage is waited out,
        # but a node that dies before sending it loses it (its monitors die with it).
        async for monitor, reason in self._downs:
            down = Down(monitor.target, reason, monitor.node, monitor.ref)
            while True:
                try:
                    await self._tell(monitor.mailbox, down)
                    break
                except TransportError as exc:
                    if not waits_out(exc):
                        logger.error("death watch: cannot send %r: %s", down, exc)
                        break
                    await trio.sleep(_SEND_RETRY)
