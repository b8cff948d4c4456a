"""Partition leases of keyed actors (issue 16): ``Transport.lease_partitions`` on the
memory store, a Redis server and a Redis Cluster keep the same rules: an even spread
over the live owners, one holder per partition, handover only after a release or an
expiry, and ``keep`` holding what an owner still consumes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from transports import Transport
from transports.memory import MemoryTransport
from transports.redis import RedisTransport
from transports.testing import cluster_available

KINDS = ["memory", "redis"] + (["redis-cluster"] if cluster_available() else [])
TTL = 0.5


@pytest.fixture(params=KINDS)
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    if request.param == "memory":
        async with MemoryTransport() as memory:
            yield memory
        return
    url = (
        request.getfixturevalue("redis_url")
        if request.param == "redis"
        else request.getfixturevalue("redis_cluster").url
    )
    async with RedisTransport.from_url(url) as redis:
        yield redis


async def test_a_lone_owner_holds_every_partition(transport: Transport) -> None:
    leases = await transport.lease_partitions("acct", "a", 4, TTL)
    assert leases.held == leases.wanted == (0, 1, 2, 3)
    assert leases.owners == 1


async def test_a_new_owner_gets_its_share_once_the_holder_releases_it(
    transport: Transport,
) -> None:
    await transport.lease_partitions("acct", "a", 4, TTL)
    # b joins: its share (1, 3) is still held by a, so it gets nothing yet.
    b = await transport.lease_partitions("acct", "b", 4, TTL)
    assert (b.held, b.owners) == ((), 2)
    # a still consumes everything: its leases on 1 and 3 are renewed, not wanted.
    a = await transport.lease_partitions("acct", "a", 4, TTL, keep=[0, 1, 2, 3])
    assert (a.held, a.wanted) == ((0, 1, 2, 3), (0, 2))
    b = await transport.lease_partitions("acct", "b", 4, TTL)
    assert b.held == ()
    # a stopped consuming 1 and 3: leaving them out of keep releases them.
    a = await transport.lease_partitions("acct", "a", 4, TTL, keep=[0, 2])
    assert a.held == a.wanted == (0, 2)
    b = await transport.lease_partitions("acct", "b", 4, TTL)
    assert b.held == b.wanted == (1, 3)


async def test_a_dead_owners_share_moves_after_its_lease(transport: Transport) -> None:
    await transport.lease_partitions("acct", "a", 4, TTL)
    await transport.lease_partitions("acct", "b", 4, TTL)
    await transport.lease_partitions("acct", "a", 4, TTL, keep=[0, 2])
    b = await transport.lease_partitions("acct", "b", 4, TTL)
    assert b.held == (1, 3)
    # b dies (no more heartbeats): a gets everything, but only after b's leases expire.
    await trio.sleep(TTL / 2)
    a = await transport.lease_partitions("acct", "a", 4, TTL, keep=[0, 2])
    assert a.held == (0, 2)
    await trio.sleep(TTL)
    a = await transport.lease_partitions("acct", "a", 4, TTL, keep=[0, 2])
    assert a.held == a.wanted == (0, 1, 2, 3)
    assert a.owners == 1


async def test_leaving_hands_the_share_over_at_once(transport: Transport) -> None:
    await transport.lease_partitions("acct", "a", 4, TTL)
    await transport.lease_partitions("acct", "b", 4, TTL)
    a = await transport.lease_partitions("acct", "a", 4, TTL, leave=True)
    assert a.held == ()
    b = await transport.lease_partitions("acct", "b", 4, TTL)
    assert b.held == b.wanted == (0, 1, 2, 3)


async def test_groups_are_apart(transport: Transport) -> None:
    await transport.lease_partitions("acct", "a", 2, TTL)
    other = await transport.lease_partitions("orders", "b", 2, TTL)
    assert other.held == (0, 1)
