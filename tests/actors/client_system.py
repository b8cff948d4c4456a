"""The system `tests/actors/test_clients.py` runs with `python -m actors run` and talks to
from outside trio (its classes are imported by the tests for targets and types)."""

from __future__ import annotations

import attrs

from actors import Actor, ActorSystem, KeyedActor, Reject, list_mailbox, stream_mailbox


@attrs.define
class Add:
    a: int
    b: int


@attrs.define
class Sum:
    total: int


class Adder(Actor):
    mailbox = list_mailbox("client.adder")
    max_deliveries = 1

    async def receive(self, msg: Add) -> Sum:
        if msg.b < 0:
            raise Reject("negative")
        return Sum(msg.a + msg.b)


class Journal(Actor):
    """Records what it gets (body, headers) in the list `client.journal`."""

    mailbox = stream_mailbox("client.events")

    async def receive(self, msg: Sum) -> None:
        headers = dict(self.context.message.headers)
        await self.context.redis.rpush("client.journal", f"{msg.total} {headers}")


class Tally(KeyedActor):
    """A running total per key (a keyed actor: the clients route by key)."""

    name = "client.tally"
    partitions = 4

    def __init__(self) -> None:
        self.total = 0

    @classmethod
    def key_of(cls, msg: Add) -> str:
        return f"k{msg.a}"

    async def receive(self, msg: Add) -> Sum:
        self.total += msg.b
        return Sum(self.total)


system = ActorSystem()
system.actor(Adder)
system.actor(Journal)
system.actor(Tally, instances=2)
