"""A node's name in the store: claimed before any actor consumes, kept by heartbeats.

Consumer names derive from the node name, so two live processes under one name would
read each other's pending messages, hand them back as their own when they stop, and
withdraw each other's heartbeat. A name is therefore held by one process at a time
(its *instance* token): a process that finds its name held by another live one does
not start, and one whose name was taken while its own heartbeat lapsed stops.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

import attrs
import trio

from transports import ConfigurationError, NodeInfo, Transport, TransportError

from ._retry import waits_out

__all__ = ["HEARTBEAT", "NodeName", "process_instance"]

logger = logging.getLogger("actors.system")

#: Seconds between node heartbeats; a node's record lives for three of them.
HEARTBEAT = 5.0
#: Seconds before a failed heartbeat is tried again.
_HEARTBEAT_RETRY = 1.0
#: Seconds between two looks at a name another process holds.
_CLAIM_POLL = 0.5
#: How late past a heartbeat a holder of our name may be before it counts as gone.
_CLAIM_GRACE = 2.0

_instances: dict[int, str] = {}


def process_instance() -> str:
    """A token naming this process among all others while it runs (a fork gets its own).

    Systems of one process share it: they may share a node name, as a test that runs
    a system twice does.
    """
    pid = os.getpid()
    return _instances.setdefault(pid, f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:12]}")


def _holder(holder: NodeInfo) -> str:
    """Who holds a node name, for an error message."""
    info = holder.info
    if "pid" in info and "host" in info:
        return f"pid {info['pid']} on {info['host']}"
    return f"instance {holder.instance!r}"


@attrs.define
class NodeName:
    """The name ``node`` of this process (``instance``) in ``transport``'s node registry,
    announced with what ``info`` returns."""

    transport: Transport
    node: str
    instance: str
    info: Callable[[], Mapping[str, Any]]
    #: Another process took the name: this one's consumers must give it up.
    lost: bool = attrs.field(default=False, init=False)

    async def _announce(self, replacing: NodeInfo | None = None) -> NodeInfo | None:
        return await self.transport.announce(
            self.node, self.info(), 3 * HEARTBEAT, instance=self.instance, replacing=replacing
        )

    async def claim(self, stop: trio.Event) -> bool:
        """Record the name as this process's, before any actor consumes under it;
        False if ``stop`` is set while it waits for the name.

        A record of another process under the name is watched for a heartbeat
        (:data:`HEARTBEAT` plus a grace of :data:`_CLAIM_GRACE`: 7 s). Refreshed, it
        is a process that runs. Withdrawn, expired, or silent all along, the name is
        this process's: the other was killed (as a crashed container restarted under
        its old hostname and pid is), or it lost the store and stops when it finds
        its name taken. The record is replaced only if it is still the one watched.

        Raises:
            ConfigurationError: another live process holds the name.
            TransportError: the store failed at the first try, or refused a later one
                (see ``_retry.waits_out``).
        """
        first = await self._announce()
        if first is None:
            return True
        logger.warning(
            "node name %r is held by %s: waiting up to %.0f s for its heartbeat",
            self.node,
            _holder(first),
            HEARTBEAT + _CLAIM_GRACE,
        )
        with trio.move_on_after(HEARTBEAT + _CLAIM_GRACE):
            while True:
                with trio.move_on_after(_CLAIM_POLL):
                    await stop.wait()
                if stop.is_set():
                    return False
                try:
                    holder = await self._announce()
                except TransportError as exc:
                    if not waits_out(exc):
                        raise
                    logger.debug("node name claim: %s", exc)
                    continue  # the store is back soon, or the last try fails
                if holder is None:
                    return True  # withdrawn, or expired
                if holder != first:
                    raise self._in_use(holder)  # refreshed: it runs
        # Silent for longer than a heartbeat: gone.
        holder = await self._announce(replacing=first)
        if holder is not None:
            raise self._in_use(holder)
        logger.warning("node name %r taken over from %s", self.node, _holder(first))
        return True

    def _in_use(self, holder: NodeInfo) -> ConfigurationError:
        return ConfigurationError(
            f"node name {self.node!r} is in use by another live process ({_holder(holder)}):"
            " give each process its own (ActorSystem(node=...)); consumer names derive from it"
        )

    async def refresh(self) -> None:
        """Announce now rather than at the next heartbeat (the info changed: the
        supervision tree started). A failure, or another holder, is left to the
        heartbeats of :meth:`keep`, which retry or stop."""
        with suppress(TransportError):
            await self._announce()

    async def keep(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Announce the name every :data:`HEARTBEAT` seconds; withdraw it on the way out.
        Started at once (the name was claimed before).

        A heartbeat that fails for an outage is tried again after
        :data:`_HEARTBEAT_RETRY`.

        Raises:
            TransportError: the store refused a heartbeat (see ``_retry.waits_out``).
            ConfigurationError: another process took the name, since this one had not
                heartbeated for 7 s (its heartbeats failed, or its loop was blocked);
                :attr:`lost` is set first.
        """
        failing = False
        task_status.started()
        try:
            while True:
                await trio.sleep(_HEARTBEAT_RETRY if failing else HEARTBEAT)
                try:
                    holder = await self._announce()
                except TransportError as exc:
                    if not waits_out(exc):
                        raise
                    if not failing:
                        logger.warning("heartbeat of node %r failed: %s", self.node, exc)
                    failing = True
                    continue
                if failing:
                    logger.info("heartbeat of node %r restored", self.node)
                    failing = False
                if holder is not None:
                    self.lost = True
                    raise ConfigurationError(
                        f"node name {self.node!r} was taken by another process"
                        f" ({_holder(holder)}) while this one's heartbeat lapsed: stopping,"
                        " since both would consume under the same names"
                    )
        finally:
            # Only our own record goes; on failure it simply expires.
            with trio.CancelScope(shield=True), trio.move_on_after(1.0), suppress(TransportError):
                await self.transport.announce(self.node, None, 0, instance=self.instance)
