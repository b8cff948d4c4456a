"""What the parts of a cluster client (pipeline, dedicated connection, subscriber)
rely on: a node, and the routing :class:`RedisCluster` implements.

Its own module so that the parts and :class:`RedisCluster`, which makes them, do
not import each other.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from transports._backoff import Backoff

from ._client import Redis

__all__ = ["ClusterBase", "ClusterNode", "Sender"]


class ClusterNode:
    """One node of the cluster: its address, a client to it, and whether it is a primary."""

    __slots__ = ("client", "host", "name", "port", "primary")

    def __init__(self, host: str, port: int, client: Redis) -> None:
        self.host = host
        self.port = port
        self.name = f"{host}:{port}"
        self.client = client
        self.primary = False

    def __repr__(self) -> str:
        return f"<ClusterNode {self.name} {'primary' if self.primary else 'replica'}>"


Sender = Callable[[ClusterNode, bool], Awaitable[Any]]
"""Sends a command to a node (after ASKING when the flag is set); returns the raw reply."""


class ClusterBase(Redis, metaclass=abc.ABCMeta):
    """The routing of a cluster client; :class:`RedisCluster` is the implementation."""

    _stale: bool  # the slot map must be loaded again before the next command
    _backoff: Backoff
    _retry_window: float

    @abc.abstractmethod
    async def _pick(self, target: int) -> ClusterNode:
        """The node for a slot, or any primary for ``ANY_NODE``."""

    @abc.abstractmethod
    async def route(self, args: Sequence[Any]) -> int:
        """The slot ``args`` goes to, or ``ANY_NODE`` (-1) / ``ALL_PRIMARIES`` (-2)."""

    @abc.abstractmethod
    async def request(self, target: int, send: Sender, *, pinned: ClusterNode | None = None) -> Any:
        """Send with ``send`` to the node for ``target``, following the cluster's answers."""
