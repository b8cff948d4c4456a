"""The node registry: which processes run, and one live process per node name."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from transports import NodeInfo, Transport

from ._support import fresh_name


async def _listed(transport: Transport, *names: str) -> list[NodeInfo]:
    """The live nodes among ``names`` (a shared store may list other tests' nodes)."""
    return [node for node in await transport.nodes() if node.node in names]


async def test_announced_nodes_are_listed_until_they_expire(
    transport: Transport, clock: MockClock | None, lease: float
) -> None:
    a, b = fresh_name("a-node"), fresh_name("b-node")
    assert await transport.announce(b, {"actors": ["ledger"]}, lease / 2, instance="p1") is None
    assert await transport.announce(a, {"actors": []}, 20 * lease, instance="p2") is None
    listed = await _listed(transport, a, b)
    assert [(n.node, dict(n.info), n.instance) for n in listed] == [
        (a, {"actors": []}, "p2"),
        (b, {"actors": ["ledger"]}, "p1"),
    ]
    await trio.sleep(lease)
    assert [n.node for n in await _listed(transport, a, b)] == [a]
    assert await transport.announce(a, None, 0, instance="p2") is None
    assert await _listed(transport, a, b) == []


async def test_a_node_name_is_held_by_one_live_instance(
    transport: Transport, clock: MockClock | None, lease: float
) -> None:
    name = fresh_name("node")
    assert await transport.announce(name, {"pid": 1}, 20 * lease, instance="p1") is None
    # Another instance can neither take the name nor withdraw it: it learns who holds it.
    for info in ({"pid": 2}, None):
        holder = await transport.announce(name, info, 20 * lease, instance="p2")
        assert holder is not None
        assert (holder.node, dict(holder.info), holder.instance) == (name, {"pid": 1}, "p1")
    [listed] = await _listed(transport, name)
    assert (dict(listed.info), listed.instance) == ({"pid": 1}, "p1")
    # Its holder refreshes it and withdraws it; then it is free.
    assert await transport.announce(name, {"pid": 1, "n": 2}, 20 * lease, instance="p1") is None
    assert dict((await _listed(transport, name))[0].info) == {"pid": 1, "n": 2}
    assert await transport.announce(name, None, 0, instance="p1") is None
    assert await transport.announce(name, {"pid": 2}, 20 * lease, instance="p2") is None
    assert [n.instance for n in await _listed(transport, name)] == ["p2"]
    await transport.announce(name, None, 0, instance="p2")


async def test_a_name_whose_record_expired_is_free_for_another_instance(
    transport: Transport, clock: MockClock | None, lease: float
) -> None:
    name = fresh_name("node")
    assert await transport.announce(name, {"pid": 1}, lease / 2, instance="p1") is None
    await trio.sleep(lease)  # p1 was killed: no heartbeat, no withdrawal
    assert await transport.announce(name, {"pid": 2}, 20 * lease, instance="p2") is None
    [listed] = await _listed(transport, name)
    assert (dict(listed.info), listed.instance) == ({"pid": 2}, "p2")
    # The old holder, back, finds its name taken.
    holder = await transport.announce(name, {"pid": 1}, 20 * lease, instance="p1")
    assert holder is not None and holder.instance == "p2"
    await transport.announce(name, None, 0, instance="p2")


async def test_a_record_seen_to_miss_its_heartbeats_may_be_replaced_as_seen_only(
    transport: Transport, clock: MockClock | None, lease: float
) -> None:
    name = fresh_name("node")
    assert await transport.announce(name, {"pid": 1}, 20 * lease, instance="p1") is None
    seen = await transport.announce(name, {"pid": 2}, 20 * lease, instance="p2")
    assert seen is not None
    await trio.sleep(lease / 10)  # the record's heartbeat time moves on
    assert await transport.announce(name, {"pid": 1}, 20 * lease, instance="p1") is None
    # p1 heartbeated since p2 looked: p2's view is stale, and p1 keeps its name.
    refreshed = await transport.announce(
        name, {"pid": 2}, 20 * lease, instance="p2", replacing=seen
    )
    assert refreshed is not None and refreshed.instance == "p1" and refreshed != seen
    # p1 is silent from now on: the record as p2 saw it last may be replaced.
    assert (
        await transport.announce(name, {}, 20 * lease, instance="p2", replacing=refreshed) is None
    )
    # And only by replacing exactly that record.
    assert await transport.announce(name, {}, 20 * lease, instance="p3", replacing=refreshed)
    assert [n.instance for n in await _listed(transport, name)] == ["p2"]
    await transport.announce(name, None, 0, instance="p2")
