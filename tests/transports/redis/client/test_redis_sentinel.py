"""The sentinel client: a master, a replica and one sentinel on 127.0.0.1.

The chaos test kills the master under load: the sentinel (``down-after-milliseconds
1000``, quorum 1) promotes the replica, the client asks again and reconnects, and
the actor system goes on handling messages; every message whose send was
acknowledged is handled. The measured times are printed (``pytest -s``).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from tests.transports.redis.client.test_redis_cluster_failover import (
    Load,
    actor_system_under_load,
    run_through_failover,
)
from transports._exceptions import ConnectError
from transports.redis import RedisTransport, SentinelRedis, sentinel_from_url
from transports.testing import LocalSentinel

pytestmark = pytest.mark.slow


def _needs_redis() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is needed")


@pytest.fixture(scope="module")
def sentinel() -> Iterator[LocalSentinel]:
    """A setup the tests share; they must not kill anything."""
    _needs_redis()
    with LocalSentinel() as setup:
        yield setup


@pytest.fixture
def doomed_sentinel() -> Iterator[LocalSentinel]:
    """A setup of this test's own, to kill."""
    _needs_redis()
    with LocalSentinel() as setup:
        yield setup


@pytest.fixture
async def client(sentinel: LocalSentinel) -> AsyncIterator[SentinelRedis]:
    async with sentinel_from_url(sentinel.url) as opened:
        assert isinstance(opened, SentinelRedis)
        yield opened


async def test_the_client_finds_the_master_through_the_sentinel(
    client: SentinelRedis, sentinel: LocalSentinel
) -> None:
    assert await client.master_address() == ("127.0.0.1", sentinel.master.port)
    assert await client.set("k", "v") is True
    assert await client.get("k") == b"v"
    assert client.master == ("127.0.0.1", sentinel.master.port)
    assert client.url == f"redis+sentinel://127.0.0.1:{sentinel.sentinel_port}/mymaster/0"
    async with client.dedicated() as conn:
        assert await conn.execute_command("ROLE") is not None
    async with RedisTransport.from_url(sentinel.url) as transport:
        await transport.ping()


async def test_an_unknown_service_is_a_connect_error(sentinel: LocalSentinel) -> None:
    url = f"redis+sentinel://127.0.0.1:{sentinel.sentinel_port}/nosuch"
    async with sentinel_from_url(url, retry_window=0.3) as client:
        with pytest.raises(ConnectError, match="nosuch"):
            await client.ping()


@pytest.mark.chaos
async def test_the_system_follows_a_failover(doomed_sentinel: LocalSentinel) -> None:
    sentinel = doomed_sentinel
    load = Load()
    system = actor_system_under_load(sentinel.url, "sentinel-stream", "sentinel-list", load)
    killed = []

    def kill() -> None:
        killed.append(sentinel.kill_master())

    failover, recovery = await run_through_failover(
        system, load, kill, lambda: sentinel.wait_for_failover(killed[0])
    )
    assert sentinel.current_master_port() == sentinel.replica.port
    total = sum(len(sent) for sent in load.sent.values())
    print(
        f"\nsentinel failover: promoted after {failover:.2f}s, actors handling new messages "
        f"after {recovery:.2f}s; {total} acknowledged sends all handled, "
        f"{load.failed_sends} sends failed mid-flight"
    )
    assert total > 200


@pytest.mark.chaos
async def test_a_demoted_master_is_left_for_the_new_one(doomed_sentinel: LocalSentinel) -> None:
    sentinel = doomed_sentinel
    async with sentinel_from_url(sentinel.url) as client:
        async with client.dedicated() as conn:
            assert await client.set("before", 1) is True  # pooled connections to the master
            assert await conn.set("before-dedicated", 1) is True
            await trio.to_thread.run_sync(sentinel.manual_failover)
            await trio.to_thread.run_sync(sentinel.wait_for_failover, sentinel.master)
            await trio.to_thread.run_sync(sentinel.wait_until_replica, sentinel.master)
            # The old master is a live replica now: its connections answer READONLY.
            with trio.fail_after(15):
                assert await client.set("after", 1) is True
                assert await conn.set("after-dedicated", 1) is True
        assert client.master == ("127.0.0.1", sentinel.replica.port)
