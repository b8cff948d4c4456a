"""The trio Redis client against a real server: commands and their callbacks,
pipelines, the pool, pub/sub, dedicated connections and cancellation."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio

from transports._exceptions import (
    AuthenticationError,
    ClosedError,
    CommandError,
    ConfigurationError,
    TransportTimeout,
)
from transports.redis import Message, Redis, from_url
from transports.redis.client import RAW, LuaScript

_names = itertools.count()


def unique_name() -> str:
    return f"test-client-{next(_names)}"


async def server_connections(client: Redis, name: str) -> int:
    """How many connections the server sees with CLIENT SETNAME ``name``."""
    return sum(1 for entry in await client.client_list() if entry["name"] == name)


async def settle_connections(client: Redis, name: str, expected: int) -> int:
    """Server-side connection count, polled until it equals ``expected`` (or 2 s)."""
    count = -1
    with trio.move_on_after(2):
        for _ in itertools.count():
            count = await server_connections(client, name)
            if count == expected:
                break
            await trio.sleep(0.01)
    return count


# -- commands and redis-py's callbacks --------------------------------------------------


async def test_strings_and_keys(redis_url: str) -> None:
    async with from_url(redis_url) as client:
        assert await client.set("k", b"v") is True
        assert await client.get("k") == b"v"
        assert await client.get("missing") is None
        assert await client.set("k", "w", nx=True) is None
        assert await client.incr("n") == 1
        assert await client.incrby("n", 5) == 6
        assert await client.exists("k", "n", "missing") == 2
        assert await client.expire("k", 100) is True
        assert 0 < await client.ttl("k") <= 100
        assert await client.type("k") == b"string"
        assert await client.mget(["k", "missing", "n"]) == [b"v", None, b"6"]
        assert await client.delete("k", "n") == 2
        assert await client.ping() is True


async def test_hashes_lists_sets_zsets(redis_url: str) -> None:
    async with from_url(redis_url) as client:
        assert await client.hset("h", mapping={"a": 1, "b": "two"}) == 2
        assert await client.hgetall("h") == {b"a": b"1", b"b": b"two"}
        assert await client.hgetall("no-hash") == {}
        assert await client.rpush("src", "x", "y", "z") == 3
        assert await client.lmove("src", "dst", "LEFT", "RIGHT") == b"x"
        assert await client.lrange("dst", 0, -1) == [b"x"]
        assert await client.sadd("s", "a", "b") == 2
        assert await client.smembers("s") == {b"a", b"b"}
        assert await client.zadd("z", {"one": 1, "two": 2.5}) == 2
        assert await client.zrange("z", 0, -1, withscores=True) == [(b"one", 1.0), (b"two", 2.5)]
        assert await client.zscore("z", "two") == 2.5


async def test_streams_and_consumer_groups(redis_url: str) -> None:
    async with from_url(redis_url) as client:
        assert await client.xgroup_create("st", "g", id="0", mkstream=True) is True
        with pytest.raises(CommandError) as info:
            await client.xgroup_create("st", "g", id="0")
        assert info.value.code == "BUSYGROUP"
        first = await client.xadd("st", {"n": "1"})
        second = await client.xadd("st", {"n": "2"})
        assert isinstance(first, bytes)
        read = await client.xreadgroup("g", "c1", {"st": ">"}, count=10)
        assert read == [[b"st", [(first, {b"n": b"1"}), (second, {b"n": b"2"})]]]
        pending = await client.xpending("st", "g")
        assert pending["pending"] == 2
        assert await client.xack("st", "g", first) == 1
        claimed = await client.xautoclaim("st", "g", "c2", min_idle_time=0, start_id="0-0")
        assert claimed[0] == b"0-0"
        assert claimed[1] == [(second, {b"n": b"2"})]
        with pytest.raises(CommandError) as info:
            await client.xreadgroup("nogroup", "c", {"st": ">"})
        assert info.value.code == "NOGROUP"


async def test_decode_responses(redis_url: str) -> None:
    async with from_url(redis_url, decode_responses=True) as client:
        await client.hset("h", mapping={"a": "é"})
        assert await client.hgetall("h") == {"a": "é"}
        await client.set("k", "v")
        assert await client.get("k") == "v"
        assert await client.dump("k") is not None  # NEVER_DECODE: raw bytes, no decode error


async def test_error_replies_keep_the_connection(redis_url: str) -> None:
    async with from_url(redis_url) as client:
        await client.set("k", "v")
        with pytest.raises(CommandError) as info:
            await client.lpush("k", "x")
        assert info.value.code == "WRONGTYPE"
        assert "LPUSH" in str(info.value)
        with pytest.raises(CommandError) as info:
            await client.execute_command("NOSUCHCOMMAND")
        assert info.value.code == "ERR"
        assert client.pool.size == 1
        assert await client.get("k") == b"v"


async def test_bad_arguments_are_configuration_errors(redis_url: str) -> None:
    async with from_url(redis_url) as client:
        with pytest.raises(ConfigurationError, match="NoneType"):
            await client.set("k", None)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            await client.set("k", True)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            await client.xadd("st", {})  # redis-py's own DataError
        assert await client.set("k", bytearray(b"ok")) is True
        assert await client.get("k") == b"ok"


async def test_lowercase_and_multiword_commands(redis_url: str) -> None:
    async with from_url(redis_url) as client:
        await client.hset("h", "f", "v")
        assert await client.execute_command("hgetall", "h") == {b"f": b"v"}
        config = await client.config_get("maxmemory")
        assert set(config) == {"maxmemory"}


async def test_client_name_and_db(redis_url: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    async with from_url(f"{base}/3?client_name=named") as client:
        await client.set("in-db-3", "x")
        assert await client.client_getname() == "named"
    async with from_url(redis_url) as client:
        assert await client.get("in-db-3") is None
    async with from_url(f"{base}/99", connect_retries=0) as client:
        with pytest.raises(ConfigurationError, match="SELECT"):
            await client.ping()


# -- pipelines ---------------------------------------------------------------------------


async def test_pipeline_one_round_trip(redis_url: str) -> None:
    async with from_url(redis_url) as client, client.pipeline(transaction=False) as pipe:
        assert pipe.set("a", 1).incr("a").get("a") is pipe
        pipe.hset("h", mapping={"f": "v"}).hgetall("h")
        assert len(pipe) == 5
        assert await pipe.execute() == [True, 2, b"2", 1, {b"f": b"v"}]
        assert len(pipe) == 0
        assert await pipe.execute() == []
        with pytest.raises(ConfigurationError):
            pipe.xadd("st", {})  # redis-py's own DataError, at queue time


async def test_transaction(redis_url: str) -> None:
    async with from_url(redis_url) as client, client.pipeline(transaction=True) as pipe:
        pipe.set("a", "x").hset("h", "f", "v").hgetall("h").incr("n")
        assert await pipe.execute() == [True, 1, {b"f": b"v"}, 1]


async def test_pipeline_errors(redis_url: str) -> None:
    async with from_url(redis_url) as client:
        await client.set("str", "v")
        for transaction in (False, True):
            async with client.pipeline(transaction=transaction) as pipe:
                pipe.set("a", 1).lpush("str", "x").get("a")
                with pytest.raises(CommandError) as info:
                    await pipe.execute()
                assert info.value.code == "WRONGTYPE"
                assert "#2 (LPUSH)" in str(info.value)
                pipe.set("a", 1).lpush("str", "x").get("a")
                results = await pipe.execute(raise_on_error=False)
                assert results[0] is True
                assert isinstance(results[1], CommandError)
                assert results[2] == b"1"
        assert client.pool.size == 1
        assert await client.get("str") == b"v"


async def test_transaction_aborted_by_invalid_command(redis_url: str) -> None:
    async with from_url(redis_url) as client:
        async with client.pipeline(transaction=True) as pipe:
            pipe.set("a", 1).execute_command("SET", "only-key")
            with pytest.raises(CommandError, match="transaction aborted"):
                await pipe.execute()
        assert await client.get("a") is None


async def test_batch_returns_error_replies_in_place(redis_url: str) -> None:
    async with from_url(redis_url, decode_responses=True) as client:
        assert client.features.ordered_batches
        assert not client.features.sharded_pubsub
        await client.set("str", "v")
        commands = [(b"SET", "a", 1), (b"LPUSH", "str", "x"), (b"GET", "a")]
        replies = await client.batch(commands)
        assert replies[0] == b"OK"  # raw, whatever the client decodes
        assert isinstance(replies[1], CommandError)
        assert replies[1].code == "WRONGTYPE"
        assert str(replies[1]).startswith("LPUSH: ")
        assert replies[2] == b"1"  # ran after the refused one
        assert client.pool.size == 1
        async with client.dedicated() as conn:
            assert conn.connected
            replies = await conn.batch([(b"PING",), *commands[1:]], read_timeout=5)
            assert replies[0] == b"PONG"
            assert isinstance(replies[1], CommandError)
            assert replies[2] == b"1"
        assert not conn.connected
        with pytest.raises(ClosedError):
            await conn.batch([(b"PING",)], read_timeout=5)


# -- the pool ----------------------------------------------------------------------------


async def test_pool_limit_makes_extra_users_wait(redis_url: str) -> None:
    async with from_url(redis_url, max_connections=2) as client:
        peak = 0
        done = 0

        async def user() -> None:
            nonlocal peak, done
            result = await client.blpop(["queue"], timeout=5)
            assert result is not None
            peak = max(peak, client.pool.size)
            done += 1

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(user)
            await trio.sleep(0.2)
            assert client.pool.size == 2
            assert client.pool.in_use == 2
            assert done == 0
            async with client.dedicated() as conn:
                await conn.rpush("queue", "a", "b", "c")
        assert done == 3
        assert peak == 2
        assert client.pool.size == 2
        assert client.pool.idle == 2


async def test_pool_timeout(redis_url: str) -> None:
    async with from_url(redis_url, max_connections=1, pool_timeout=0.1) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.blpop, ["q"], 0.5)
            await trio.sleep(0.05)
            with pytest.raises(TransportTimeout, match="no free connection"):
                await client.ping()
        assert await client.ping() is True


async def test_closed_client(redis_url: str) -> None:
    client = from_url(redis_url)
    await client.ping()
    await client.aclose()
    assert client.pool.size == 0
    with pytest.raises(ClosedError):
        await client.ping()
    with pytest.raises(ClosedError):
        await client.pipeline().ping().execute()
    with pytest.raises(ClosedError):
        async with client.dedicated():
            pass


async def test_checkout_context_manager(redis_url: str) -> None:
    async with from_url(redis_url) as client:
        async with client.pool.checkout() as connection:
            assert client.pool.in_use == 1
        assert client.pool.idle == 1
        assert not connection.closed
        with pytest.raises(RuntimeError):
            async with client.pool.checkout() as connection:
                raise RuntimeError("mid-command")
        assert connection.closed
        assert client.pool.size == 0


# -- pub/sub -----------------------------------------------------------------------------


async def test_pubsub_channels_and_patterns(redis_url: str) -> None:
    async with from_url(redis_url) as client, client.pubsub() as ps:
        await ps.subscribe("news", "sports")
        await ps.psubscribe("log.*")
        assert ps.channels == {b"news", b"sports"}
        assert await client.publish("news", "hello") == 1
        assert await client.publish("log.error", b"\x00bin") == 1
        assert await ps.get_message(timeout=2) == Message("message", b"news", b"hello")
        assert await ps.get_message(timeout=2) == Message(
            "pmessage", b"log.error", b"\x00bin", pattern=b"log.*"
        )
        assert await ps.get_message(timeout=0.05) is None
        await ps.unsubscribe("news")
        assert await client.publish("news", "lost") == 0
        await ps.unsubscribe()
        await ps.punsubscribe()
        assert await client.publish("log.x", "lost") == 0


async def test_pubsub_sharded_and_iteration(redis_url: str) -> None:
    async with from_url(redis_url) as client, client.pubsub() as ps:
        await ps.ssubscribe("shard")
        for i in range(3):
            assert await client.spublish("shard", str(i)) == 1
        received = []
        async for message in ps:
            received.append(message)
            if len(received) == 3:
                break
        assert [m.data for m in received] == [b"0", b"1", b"2"]
        assert {m.kind for m in received} == {"smessage"}


async def test_pubsub_subscribe_while_another_task_reads(redis_url: str) -> None:
    async with from_url(redis_url) as client, client.pubsub() as ps:
        await ps.subscribe("first")
        got: list[Message] = []

        async def reader() -> None:
            async for message in ps:
                got.append(message)
                if len(got) == 2:
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.sleep(0.05)
            with trio.fail_after(2):
                await ps.subscribe("second")  # confirmed through the reader task
            await client.publish("second", "b")
            await client.publish("first", "a")
        assert [(m.channel, m.data) for m in got] == [(b"second", b"b"), (b"first", b"a")]


async def test_pubsub_closed(redis_url: str) -> None:
    async with from_url(redis_url) as client:
        async with client.pubsub() as ps:
            await ps.subscribe("c")
        assert client.pool.dedicated == 0
        with pytest.raises(ClosedError):
            await ps.get_message()


# -- dedicated connections and cancellation ----------------------------------------------


async def test_dedicated_blocking_reads_ignore_read_timeout(redis_url: str) -> None:
    async with from_url(redis_url, read_timeout=0.2) as client, client.dedicated() as conn:
        assert client.pool.dedicated == 1
        assert client.pool.size == 0
        # Blocks 0.5 s, longer than read_timeout: the timeout is extended, not hit.
        assert await conn.blmove("src", "dst", 0.5, "RIGHT", "LEFT") is None
        await client.xgroup_create("st", "g", id="0", mkstream=True)
        assert await conn.xreadgroup("g", "c", {"st": ">"}, block=500) == []
        await client.rpush("src", "job")
        assert await conn.blmove("src", "dst", 0, "RIGHT", "LEFT") == b"job"


@pytest.mark.parametrize("command", ["blmove", "xreadgroup"])
async def test_cancelling_a_blocking_read_discards_the_connection(
    redis_url: str, command: str
) -> None:
    name = unique_name()
    async with from_url(redis_url, client_name=name) as client:
        await client.xgroup_create("st", "g", id="0", mkstream=True)
        baseline = await server_connections(client, name)
        async with client.dedicated() as conn:
            await conn.ping()
            first = conn.connection
            assert first is not None
            assert await server_connections(client, name) == baseline + 1
            with trio.move_on_after(0.2) as scope:
                if command == "blmove":
                    await conn.blmove("src", "dst", 0, "RIGHT", "LEFT")
                else:
                    await conn.xreadgroup("g", "c", {"st": ">"}, block=0)
            assert scope.cancelled_caught
            assert first.closed
            assert conn.connection is None
            assert client.pool.dedicated == 0
            assert await settle_connections(client, name, baseline) == baseline
            # The next command opens a fresh connection and sees no stale reply.
            await client.rpush("src", "job")
            await client.xadd("st", {"n": "1"})
            if command == "blmove":
                assert await conn.blmove("src", "dst", 1, "RIGHT", "LEFT") == b"job"
            else:
                read = await conn.xreadgroup("g", "c", {"st": ">"}, block=1000)
                assert read[0][1][0][1] == {b"n": b"1"}
            assert conn.connection is not first
        assert await settle_connections(client, name, baseline) == baseline


async def test_cancelling_a_pooled_command_discards_the_connection(redis_url: str) -> None:
    name = unique_name()
    async with from_url(redis_url, client_name=name) as client:
        assert await client.ping()
        assert client.pool.size == 1
        with trio.move_on_after(0.1) as scope:
            await client.blpop(["empty"], timeout=5)
        assert scope.cancelled_caught
        assert client.pool.size == 0
        assert client.pool.idle == 0
        assert await settle_connections(client, name, 1) == 1  # only the new one
        assert client.pool.size == 1
        await client.rpush("empty", "x")  # the cancelled BLPOP must not have taken it
        assert await client.lrange("empty", 0, -1) == [b"x"]


async def test_cancelling_one_of_many_users(redis_url: str) -> None:
    async with from_url(redis_url, max_connections=4) as client:
        results: list[Any] = []

        async def worker(i: int) -> None:
            for j in range(50):
                await client.set(f"k{i}", j)
                results.append(await client.get(f"k{i}"))

        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(worker, i)
            with trio.move_on_after(0.001):
                await client.blpop(["never"], timeout=1)
        assert len(results) == 200
        assert all(isinstance(value, bytes) for value in results)
        assert client.pool.size <= 4


async def test_wrong_password_on_session_server_is_authentication_error(redis_url: str) -> None:
    base = redis_url.split("://", 1)[1]
    client = from_url(f"redis://nobody:not-the-password@{base}", connect_retries=0)
    async with client:
        with pytest.raises(AuthenticationError) as info:
            await client.ping()
    assert "not-the-password" not in str(info.value)
    assert "nobody" in str(info.value)


# -- Lua scripts: NOSCRIPT is the client's business --------------------------------------


async def test_a_batch_runs_the_scripts_the_server_lacks_in_full(redis_url: str) -> None:
    echo = LuaScript("return ARGV[1]")
    async with from_url(redis_url) as client:
        await client.execute_command("SCRIPT", "FLUSH")
        replies = await client.batch(
            [
                (b"SET", "k", "v"),
                echo.command([], ["x"]),
                (b"EVALSHA", "0" * 40, 0),  # no LuaScript knows it: the error stays
            ]
        )
        assert replies[:2] == [b"OK", b"x"]
        assert isinstance(replies[2], CommandError) and replies[2].code == "NOSCRIPT"
        # EVAL cached it: the next EVALSHA finds it.
        assert await client.execute_command(*echo.command([], ["y"]), **RAW) == b"y"
        async with client.dedicated() as connection:
            await client.execute_command("SCRIPT", "FLUSH")
            assert await connection.batch([echo.command([], ["z"])], 1.0) == [b"z"]


async def test_run_script_sends_a_script_the_server_lacks_and_raises_its_errors(
    redis_url: str,
) -> None:
    failing = LuaScript("return redis.error_reply('NOGROUP no such group')")
    async with from_url(redis_url) as client:
        await client.execute_command("SCRIPT", "FLUSH")
        assert await client.run_script(LuaScript("return KEYS[1]"), ["k"], []) == b"k"
        with pytest.raises(CommandError) as caught:
            await client.run_script(failing, [], [])
        assert caught.value.code == "NOGROUP"


# -- blocking reads with commands pipelined around them ---------------------------------


async def test_a_blocking_connection_pipelines_commands_around_a_blocking_read(
    redis_url: str,
) -> None:
    async with from_url(redis_url) as client:
        await client.rpush("src", b"x")
        async with client.blocking("src") as conn:
            assert not conn.connected  # opened by the first batch
            read = (b"BLMOVE", "src", "dst", b"LEFT", b"RIGHT", b"0.05")
            replies = await conn.batch([(b"SET", "k", "v"), read, (b"LLEN", "dst")], 5.0)
            assert replies == [b"OK", b"x", 1]
            assert conn.connected
            replies = await conn.batch([read, (b"LLEN", "dst"), (b"LPUSH", "k", "v")], 5.0)
            assert replies[:2] == [None, 1]  # the wait timed out, and then LLEN ran
            assert isinstance(replies[2], CommandError) and replies[2].code == "WRONGTYPE"
            with pytest.raises(TransportTimeout):
                await conn.batch([(b"BLPOP", "nothing", b"0")], 0.1)
            assert not conn.connected  # the overdue reply closed it
            assert await conn.batch([(b"PING",)], 5.0) == [b"PONG"]
        with pytest.raises(ClosedError):
            await conn.batch([(b"PING",)], 1.0)
