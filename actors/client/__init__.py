"""Clients for code outside trio: :class:`Client` (blocking) and :class:`AsyncClient`
(asyncio), on redis-py.

They ``tell``, ``tell_many`` and ``ask`` actors as a running system's own code does
(the same envelopes, typed messages and replies), without running a system: no node
name, no background task. ::

    from actors.client import Client

    with Client("redis://localhost:6379") as client:
        client.tell("list:jobs", Job(1))
        total = client.ask(Adder, Add(2, 3), timeout=5.0)  # a Sum
"""

from ._asyncio import AsyncClient as AsyncClient
from ._sync import Client as Client

__all__ = ["AsyncClient", "Client"]
