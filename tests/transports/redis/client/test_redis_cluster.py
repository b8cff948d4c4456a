"""The Redis Cluster client and RedisTransport on a local 3-master, 3-replica cluster.

What every transport promises runs in ``tests/conformance`` (``[redis-cluster]``);
here is what only a cluster has: routing by slot, redirections, pipelines split by
node, per-node scripts, sharded pub/sub, URLs. Failover is in
``test_redis_cluster_failover.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis
import trio
from redis.crc import key_slot

from actors import ActorSystem, list_mailbox, stream_mailbox
from transports import MailboxSpec
from transports._exceptions import CommandError, ConfigurationError
from transports.redis import RedisCluster, RedisTransport, cluster_from_url
from transports.redis.client._cluster_routes import ALL_PRIMARIES, ANY_NODE, route
from transports.redis.client._multi_url import parse_cluster_url, parse_sentinel_url
from transports.redis.keys import Keys
from transports.redis.scripts import Script
from transports.testing import LocalCluster

pytestmark = pytest.mark.slow


@pytest.fixture
async def cluster(redis_cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    async with cluster_from_url(redis_cluster.url) as client:
        yield client


def _sync(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, protocol=2, socket_timeout=5)


# -- keys and routes (no server) -------------------------------------------------------


@pytest.mark.parametrize("name", ["jobs", "ledger", "a.b-c:d", "user:42", "x"])
def test_every_key_of_a_mailbox_is_in_the_slot_of_its_name(name: str) -> None:
    keys = Keys(name)
    slot = key_slot(name.encode())
    assert key_slot(f"{{{name}}}".encode()) == slot
    others = [keys.dead, keys.failures, keys.delayed, keys.consumers, keys.closed]
    others += [keys.delayed_in("group"), keys.processing("node/worker-0")]
    assert {key_slot(key.encode()) for key in others} == {slot}


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("RPUSH", "jobs", "x"), "jobs"),
        (("BLMOVE", "jobs", "{jobs}:p", "LEFT", "RIGHT", 1), "jobs"),
        (("XREADGROUP", "GROUP", "g", "c", "COUNT", 5, "STREAMS", "orders", ">"), "orders"),
        (("XGROUP CREATE", "orders", "g", "0"), "orders"),
        (("XINFO", "STREAM", "orders"), "orders"),
        (("EVALSHA", "abc", 2, "{jobs}:a", "jobs", "arg"), "{jobs}:a"),
        (("BLMPOP", 1, 2, "jobs", "other", "LEFT"), "jobs"),
        ((b"SPUBLISH", b"news", b"hi"), "news"),
    ],
)
def test_commands_route_by_their_first_key(args: tuple[object, ...], key: str) -> None:
    assert route(args) == key_slot(key.encode())


def test_keyless_commands_go_to_any_node_or_every_primary() -> None:
    assert route(("PING",)) == ANY_NODE
    assert route(("PUBLISH", "news", "x")) == ANY_NODE
    assert route(("EVAL", "return 1", 0)) == ANY_NODE
    assert route(("SCRIPT LOAD", "return 1")) == ALL_PRIMARIES
    assert route(("FLUSHALL",)) == ALL_PRIMARIES


def test_cluster_and_sentinel_urls() -> None:
    seeds, options = parse_cluster_url(
        "redis+cluster://u:s3cret@h1:7000,h2,[::1]:7002?read_timeout=2"
    )
    assert seeds == [("h1", 7000), ("h2", 6379), ("::1", 7002)]
    assert options == {"username": "u", "password": "s3cret", "read_timeout": 2.0}
    assert parse_cluster_url("rediss+cluster://h1:7000/0")[1] == {"tls": True}
    with pytest.raises(ConfigurationError, match="only db 0"):
        parse_cluster_url("redis+cluster://h1:7000/3")
    with pytest.raises(ConfigurationError) as info:
        parse_cluster_url("redis+cluster://u:s3cret@h1:x")
    assert "s3cret" not in str(info.value)

    sentinels, service, options, sentinel = parse_sentinel_url(
        "redis+sentinel://:pw@s1,s2:26380/mymaster/2?sentinel_password=sp&read_timeout=3"
    )
    assert sentinels == [("s1", 26379), ("s2", 26380)]
    assert service == "mymaster"
    assert options == {"password": "pw", "db": 2, "read_timeout": 3.0}
    assert sentinel == {"password": "sp"}
    with pytest.raises(ConfigurationError, match="/service"):
        parse_sentinel_url("redis+sentinel://s1:26379")


# -- the client on a live cluster ----------------------------------------------------------


async def test_commands_reach_the_node_of_their_slot(
    cluster: RedisCluster, redis_cluster: LocalCluster
) -> None:
    names = [f"route-{index}" for index in range(30)]
    for name in names:
        await cluster.set(name, name)
    for name in names:
        assert await cluster.get(name) == name.encode()
        node = await cluster.node_for_key(name)
        assert node.port == redis_cluster.master_of(name).port
    assert len({(await cluster.node_for_key(name)).name for name in names}) == 3
    assert await cluster.ping() is True


async def test_a_stale_slot_map_is_fixed_by_moved(cluster: RedisCluster) -> None:
    await cluster.set("moved-key", "v")
    slot = key_slot(b"moved-key")
    right = await cluster.node_for_key("moved-key")
    wrong = next(node for node in cluster.primaries if node is not right)
    cluster._slots[slot] = wrong  # as if the slot had moved since the last refresh
    assert await cluster.get("moved-key") == b"v"
    assert await cluster.node_for_key("moved-key") is right


async def test_ask_redirections_are_followed_during_a_slot_migration(
    cluster: RedisCluster, redis_cluster: LocalCluster
) -> None:
    key = "{ask-migration}k"
    slot = key_slot(key.encode())
    source = redis_cluster.master_of(key)
    target = next(server for server in redis_cluster.masters() if server is not source)
    source_client, target_client = _sync(source.port), _sync(target.port)
    try:
        source_id = source_client.execute_command("CLUSTER", "MYID").decode()
        target_id = target_client.execute_command("CLUSTER", "MYID").decode()
        target_client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source_client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        # The key is not on the source: it answers ASK, the client asks the target.
        await cluster.set(key, "moved along")
        assert await cluster.get(key) == b"moved along"
        assert source_client.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        for client in (target_client, source_client):
            client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        # Now the slot is the target's: MOVED, then a refreshed map.
        assert await cluster.get(key) == b"moved along"
        with trio.fail_after(10):
            while (await cluster.node_for_key(key)).port != target.port:
                await cluster.refresh()
                await trio.sleep(0.1)
    finally:
        source_client.close()
        target_client.close()


async def test_pipelines_are_split_by_node_and_keep_their_order(cluster: RedisCluster) -> None:
    names = [f"pipe-{index}" for index in range(20)]
    async with cluster.pipeline(transaction=False) as pipe:
        for index, name in enumerate(names):
            pipe.set(name, index).incr(name)
        results = await pipe.execute()
    assert results[0::2] == [True] * 20
    assert results[1::2] == [index + 1 for index in range(20)]
    async with cluster.pipeline(transaction=True) as pipe:
        pipe.incr("{account}:a").incr("{account}:b").incr("{account}:a")
        assert await pipe.execute() == [1, 1, 2]
    async with cluster.pipeline(transaction=True) as pipe:
        pipe.incr("pipe-0").incr("pipe-1").incr("pipe-2").incr("pipe-3")
        with pytest.raises(ConfigurationError, match="one slot"):
            await pipe.execute()


async def test_a_batch_runs_on_every_node_and_follows_redirections(cluster: RedisCluster) -> None:
    assert cluster.features.sharded_pubsub
    assert not cluster.features.ordered_batches
    names = [f"batch-{index}" for index in range(12)]
    assert len({(await cluster.node_for_key(name)).name for name in names}) == 3
    await cluster.set("batch-str", "v")
    right = await cluster.node_for_key(names[0])
    wrong = next(node for node in cluster.primaries if node is not right)
    cluster._slots[key_slot(names[0].encode())] = wrong  # a stale map: MOVED
    incrs = [(b"INCR", name) for name in names]
    replies = await cluster.batch([*incrs, (b"LPUSH", "batch-str", "x"), *incrs])
    assert replies[:12] == [1] * 12
    assert isinstance(replies[12], CommandError)
    assert replies[12].code == "WRONGTYPE"
    assert replies[13:] == [2] * 12
    assert await cluster.node_for_key(names[0]) is right


async def test_scripts_are_loaded_on_the_node_that_runs_them(cluster: RedisCluster) -> None:
    script = Script("return redis.call('INCR', KEYS[1])")
    names = [f"script-{index}" for index in range(12)]
    assert len({(await cluster.node_for_key(name)).name for name in names}) == 3
    await cluster.script_flush()
    for name in names:
        assert await script(cluster, [name], []) == 1  # NOSCRIPT, then EVAL, per node
        assert await script(cluster, [name], []) == 2  # EVALSHA now


async def test_a_dedicated_connection_binds_to_the_node_of_its_key(cluster: RedisCluster) -> None:
    async with cluster.dedicated(key="jobs", read_timeout=None) as conn:
        assert conn.node is await cluster.node_for_key("jobs")  # type: ignore[attr-defined]
        assert await conn.execute_command("PING") is True
        await cluster.rpush("jobs", "one")
        assert await conn.blmove("jobs", "{jobs}:held", 1, "LEFT", "RIGHT") == b"one"
        assert await conn.get("elsewhere") is None  # moves to that key's node
    with pytest.raises(ConfigurationError):
        _ = cluster.pool


async def test_a_blocking_connection_follows_its_commands_to_their_node(
    cluster: RedisCluster,
) -> None:
    names = [f"blocking-{index}" for index in range(12)]
    nodes = {(await cluster.node_for_key(name)).name: name for name in names}
    here, there = list(nodes.values())[:2]
    await cluster.rpush(here, "one")
    async with cluster.blocking(here) as conn:
        read = (b"BLMOVE", here, f"{{{here}}}:held", b"LEFT", b"RIGHT", b"1")
        assert await conn.batch([read, (b"LLEN", here)], 5.0) == [b"one", 0]
        assert conn.connected
        # On the node of ``here`` now: a command for another node is redirected
        # (MOVED, nothing ran) and runs there instead.
        assert await conn.batch([(b"SET", there, b"v"), (b"GET", there)], 5.0) == [b"OK", b"v"]
        await cluster.rpush(here, "two")
        assert await conn.batch([read], 5.0) == [b"two"]


# -- the transport and the runtime ----------------------------------------------------------


async def test_channel_mailboxes_use_sharded_pub_sub(redis_cluster: LocalCluster) -> None:
    spec = MailboxSpec("pubsub", "cluster-news", lease=0.5)
    async with RedisTransport.from_url(redis_cluster.url) as transport:
        async with transport.consumer(spec, "reader") as reader:
            await transport.send(spec, [b"one", b"two"])
            with trio.fail_after(5):
                got = list(await reader.fetch(5))
                while len(got) < 2:
                    got += await reader.fetch(5)
            assert [d.payload for d in got] == [b"one", b"two"]
        pattern = MailboxSpec("pubsub", "cluster-*", pattern=True, lease=0.5)
        with pytest.raises(ConfigurationError, match="sharded"):
            async with transport.consumer(pattern, "reader"):
                pass


async def test_an_actor_system_runs_on_a_cluster_url(redis_cluster: LocalCluster) -> None:
    system = ActorSystem(redis_cluster.url)
    seen: list[int] = []
    done = trio.Event()

    @system.actor(mailbox=list_mailbox("cluster-squares", lease=2.0))
    async def square(number: int) -> int:
        return number * number

    @system.actor(mailbox=stream_mailbox("cluster-log", lease=2.0))
    async def log(number: int) -> None:
        seen.append(number)
        if len(seen) == 10:
            done.set()

    async with system:
        assert await system.ask("cluster-squares", 7, timeout=5.0) == 49
        for number in range(10):
            await system.tell("cluster-log", number)
        with trio.fail_after(10):
            await done.wait()
    assert sorted(seen) == list(range(10))
