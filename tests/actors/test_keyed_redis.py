"""Keyed actors on a real Redis server and a Redis Cluster (issue 16 item 1): state
per key, asks, and per-key order with one activation at a time while a second
system joins and the first leaves."""

from __future__ import annotations

from collections import Counter

import pytest
import trio

from actors import ActorSystem
from transports.redis.keys import partition_keys
from transports.testing import cluster_available

from .test_keyed import Account, Deposit, GetBalance, Step, _reset  # noqa: F401

KINDS = ["redis"] + (["redis-cluster"] if cluster_available() else [])


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return str(request.getfixturevalue("redis_cluster").url)


def new_system(url: str, node: str) -> ActorSystem:
    system = ActorSystem(url, node=node)
    system.actor(Account, instances=2)
    return system


async def test_state_per_key_and_asks(url: str) -> None:
    system = new_system(url, "solo")
    async with system:
        assert await system.ask(Account, Deposit(10), key="alice") == 10
        assert await system.ask(Account, Deposit(5), key="alice") == 15
        assert await system.ask(Account, GetBalance(), key="bob") == 0
        lengths = [
            await system.redis.execute_command("LLEN", Account.partition_mailbox(n).name)
            for n in range(Account.partitions)
        ]
    assert lengths == [0] * Account.partitions
    assert sorted(Account.started) == sorted(Account.stopped) == ["alice", "bob"]


async def test_order_and_single_activation_while_owners_come_and_go(url: str) -> None:
    Account.pause = 0.002
    keys = [f"k{i}" for i in range(16)]
    sent: Counter[str] = Counter()

    async def send(system: ActorSystem, rounds: int) -> None:
        for _ in range(rounds):
            for key in keys:
                sent[key] += 1
                await system.tell(Account, Step(key, sent[key]))
            await trio.sleep(0.1)

    one, two = new_system(url, "one"), new_system(url, "two")
    async with two:
        async with one:
            await send(one, 10)  # two joins while one holds every partition
        await send(two, 10)  # one left: two takes everything
        with trio.fail_after(20):
            while any(len(Account.handled[k]) < sent[k] for k in keys):
                await trio.sleep(0.05)
    for key in keys:
        assert Account.handled[key] == list(range(1, sent[key] + 1)), key
    assert Account.overlaps == []
    assert len(Account.systems) == 2


async def test_the_partitions_spread_evenly_over_the_owners(url: str) -> None:
    _, leases_key = partition_keys("account")
    one, two = new_system(url, "one"), new_system(url, "two")
    async with one, two:
        with trio.fail_after(10):
            while True:
                leases = await one.redis.execute_command("HGETALL", leases_key)
                holders = Counter(v.decode().split(" ", 1)[1] for v in leases.values())
                if len(leases) == 8 and sorted(holders.values()) == [2, 2, 2, 2]:
                    break
                await trio.sleep(0.1)
    assert sorted(holders) == ["one/account-0", "one/account-1", "two/account-0", "two/account-1"]
