"""The connection pool never loses capacity, whatever is cancelled and when.

A connection checked out and then lost to a cancellation (neither given back nor
dropped) stays counted in the pool's ``size`` forever; once ``max_connections`` are
lost, every command of the process waits for a connection that never comes. These
tests cancel sends, asks, commands, pipelines and blocking reads at random points
against a real server, then check that every connection the pool opened is idle or
closed, and that a fresh command still gets one.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings, strategies as st
from trio.testing import MockClock

from actors import Actor, ActorSystem, Supervisor, list_mailbox
from transports import MailboxSpec
from transports._exceptions import ConfigurationError, TransportTimeout
from transports.redis import (
    ConnectionPool,
    Redis,
    RedisCluster,
    RedisTransport,
    client_from_url,
    from_url,
    parse_url,
)
from transports.redis.client._connection import Connection
from transports.redis.client._pool import DEFAULT_POOL_TIMEOUT


async def wait_until_idle(pool: ConnectionPool, seconds: float = 5.0) -> None:
    """Wait until no pooled connection is checked out; fail after ``seconds``.

    Background tasks (heartbeats) borrow a connection for a round trip now and then,
    so ``in_use`` may be briefly above 0; a leaked connection keeps it there.
    """
    with trio.move_on_after(seconds):
        while pool.in_use:
            await trio.sleep(0.01)
    assert pool.in_use == 0, f"connections lost to cancellations: {pool!r}"


# -- the reproductions of the issue --------------------------------------------------------


async def test_a_waiter_cancelled_as_it_is_handed_a_connection_gives_it_back(
    redis_url: str,
) -> None:
    async with from_url(redis_url, max_connections=1) as client:
        pool = client.pool
        connection = await pool.acquire()
        waiting = trio.CancelScope()

        async def wait_for_a_connection() -> None:
            with waiting:
                await client.ping()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for_a_connection)
            await trio.testing.wait_all_tasks_blocked()  # parked: the pool is full
            pool.release(connection)  # wakes the waiter, which takes the connection...
            waiting.cancel()  # ...but is cancelled before it runs
        assert waiting.cancelled_caught
        assert (pool.size, pool.idle, pool.in_use) == (1, 1, 0)
        with trio.fail_after(5):
            assert await client.ping() is True


@pytest.mark.chaos
async def test_cancelled_tells_leak_no_connection(redis_url: str) -> None:
    # The reproduction, with a pool of 2 so that a couple of lost
    # connections make the plain tell hang on the unfixed pool.
    system = ActorSystem(f"{redis_url}?max_connections=2", node="pool-tells")
    async with system:
        assert isinstance(system.transport, RedisTransport)
        pool = system.transport.client.pool

        async def tell_in_a_hurry(n: int) -> None:
            with trio.move_on_after(0.05):
                await system.tell("list:jobs", n)

        for _ in range(3):
            async with trio.open_nursery() as nursery:
                for n in range(5000):
                    nursery.start_soon(tell_in_a_hurry, n)
            await wait_until_idle(pool)
            assert pool.size <= pool.max_connections
        with trio.fail_after(10):
            await system.tell("list:jobs", -1)


@pytest.mark.chaos
async def test_cancelled_asks_leak_no_connection(redis_url: str) -> None:
    system = ActorSystem(f"{redis_url}?max_connections=2", node="pool-asks")

    @system.actor(list="echo", batch_size=100)
    async def echo(n: int) -> int:
        return n

    async with system:
        assert isinstance(system.transport, RedisTransport)
        pool = system.transport.client.pool

        async def ask_in_a_hurry(n: int) -> None:
            with contextlib.suppress(TimeoutError):
                await system.ask("echo", n, timeout=0.02)

        for _ in range(2):
            async with trio.open_nursery() as nursery:
                for n in range(2000):
                    nursery.start_soon(ask_in_a_hurry, n)
        answers: list[int] = []

        async def ask_patiently(n: int) -> None:
            answers.append(await system.ask("echo", n, timeout=30))

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for n in range(200):
                    nursery.start_soon(ask_patiently, n)
        assert sorted(answers) == list(range(200))
        await wait_until_idle(pool)


# -- any cancellation, anywhere ----------------------------------------------------------

KINDS = [
    "command",
    "send",
    "pipeline",
    "transaction",
    "blocking",
    "dedicated",
    "pubsub",
    "checkout",
]

# When an operation is cancelled: never, after the canceller's n-th checkpoint (lands
# anywhere in the scheduling), or after a few real milliseconds (lands mid-I/O).
cancel_points = st.one_of(
    st.none(),
    st.tuples(st.just("checkpoints"), st.integers(0, 40)),
    st.tuples(st.just("seconds"), st.floats(0.0, 0.005)),
)
operations = st.lists(st.tuples(st.sampled_from(KINDS), cancel_points), min_size=1, max_size=16)


class CountingPool:
    """Counts the pooled connections a pool opens (dedicated ones are not pooled)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.opened: list[Connection] = []
        self.peak = 0
        self._open = pool.open
        pool.open = self._counting_open  # type: ignore[method-assign]

    async def _counting_open(self) -> Connection:
        connection = await self._open()
        self.opened.append(connection)
        self.peak = max(self.peak, len(self.live))
        return connection

    @property
    def live(self) -> list[Connection]:
        """Opened and not closed since."""
        return [connection for connection in self.opened if not connection.closed]


async def run_operation(client: Redis, transport: RedisTransport, kind: str, n: int) -> None:
    key = f"pool-prop-{kind}-{n}"
    match kind:
        case "command":
            await client.set(key, "v")
            assert await client.get(key) == b"v"
        case "send":  # what tell does
            await transport.send(MailboxSpec.parse("list:pool-prop"), [b"m"] * (1 + n % 3))
        case "pipeline" | "transaction":
            async with client.pipeline(transaction=kind == "transaction") as pipe:
                pipe.incr(key).get(key)
                await pipe.execute()
        case "blocking":  # a blocking read on a pooled connection
            await client.blpop([f"{key}-empty"], 0.05)
        case "dedicated":
            async with client.dedicated() as connection:
                await connection.blpop([f"{key}-empty"], 0.05)
        case "pubsub":
            async with client.pubsub() as subscriber:
                await subscriber.subscribe(key)
                await subscriber.get_message(timeout=0.02)
        case "checkout":
            async with client.pool.checkout() as connection:
                assert await connection.roundtrip(b"*1\r\n$4\r\nPING\r\n", 5.0) == b"PONG"


async def cancel_later(scope: trio.CancelScope, point: tuple[str, Any]) -> None:
    how, amount = point
    if how == "checkpoints":
        for _ in range(amount):
            await trio.lowlevel.checkpoint()
    else:
        await trio.sleep(amount)
    scope.cancel()


@pytest.mark.chaos
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=operations,
    max_connections=st.integers(1, 3),
    pool_timeout=st.sampled_from([None, 0.05]),
)
async def test_no_cancellation_loses_pool_capacity(
    redis_url: str, ops: list[tuple[str, Any]], max_connections: int, pool_timeout: float | None
) -> None:
    client = from_url(redis_url, max_connections=max_connections, pool_timeout=pool_timeout)
    counting = CountingPool(client.pool)
    pool = client.pool
    transport = RedisTransport(client)
    numbers = itertools.count()

    async def operate(kind: str, scope: trio.CancelScope) -> None:
        # TransportTimeout: all connections were busy for pool_timeout, a refusal.
        with scope, contextlib.suppress(TransportTimeout):
            await run_operation(client, transport, kind, next(numbers))

    async with client:
        with trio.fail_after(20):  # a lost connection makes a later command wait forever
            async with trio.open_nursery() as nursery:
                for kind, point in ops:
                    scope = trio.CancelScope()
                    nursery.start_soon(operate, kind, scope)
                    if point is not None:
                        nursery.start_soon(cancel_later, scope, point)
            live = counting.live
            assert pool.size == len(live)  # created and not dropped
            assert pool.idle + pool.in_use == pool.size
            assert pool.in_use == 0  # nothing is running: every live connection is idle
            assert pool.size <= max_connections
            assert counting.peak <= max_connections
            assert pool.dedicated == 0

            # The whole capacity is there: max_connections checkouts at once.
            everyone_in = trio.Event()
            holding = 0

            async def hold() -> None:
                nonlocal holding
                async with pool.checkout():
                    holding += 1
                    if holding == max_connections:
                        everyone_in.set()
                    await everyone_in.wait()

            async with trio.open_nursery() as nursery:
                for _ in range(max_connections):
                    nursery.start_soon(hold)
            await transport.send(MailboxSpec.parse("list:pool-prop"), [b"fresh"])
            assert await client.ping() is True


async def test_a_cancelled_close_of_a_cluster_client_closes_every_node(redis_url: str) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    # Two names for one plain server: two nodes, each with a pool of its own.
    cluster = RedisCluster([("127.0.0.1", port), ("localhost", port)])
    for node in cluster.nodes:
        assert await node.client.ping() is True
    pools = [node.client.pool for node in cluster.nodes]
    assert [pool.idle for pool in pools] == [1, 1]
    with trio.CancelScope() as scope:
        scope.cancel()
        await cluster.aclose()
    assert [(pool.closed, pool.size) for pool in pools] == [(True, 0), (True, 0)]


# -- waiting for a connection is bounded ----------------------------------------------------


async def test_waiting_for_a_connection_is_bounded_by_default(
    redis_url: str, mock_clock: MockClock
) -> None:
    async with from_url(redis_url, max_connections=2) as client:
        pool = client.pool
        async with pool.checkout(), pool.checkout():  # real I/O: the clock stands still
            mock_clock.autojump_threshold = 0  # now only the wait for the pool is left
            start = trio.current_time()
            with trio.fail_after(10 * DEFAULT_POOL_TIMEOUT):
                with pytest.raises(TransportTimeout) as info:
                    await client.ping()
            waited = trio.current_time() - start
            mock_clock.autojump_threshold = math.inf
        assert waited == pytest.approx(DEFAULT_POOL_TIMEOUT) == 20.0
        assert str(info.value) == (
            f"no free connection to {redis_url} within 20.0s: all 2 pooled connections are "
            "busy; raise the limit with the URL option ?max_connections=N (now 2) or wait "
            "longer with ?pool_timeout=SECONDS"
        )
        assert (pool.size, pool.idle, pool.in_use) == (2, 2, 0)
        assert await client.ping() is True


async def test_a_waiter_is_served_before_a_busy_caller_takes_the_connection_again(
    redis_url: str,
) -> None:
    # A caller that gives its connection back and asks again at once (a loop of
    # tells) must not overtake those already waiting: with a bounded wait they
    # would fail with TransportTimeout while the server answers in microseconds.
    async with from_url(redis_url, max_connections=1) as client:
        served: list[str] = []
        looping = trio.Event()

        async def busy() -> None:
            for _ in range(50):
                await client.ping()
                served.append("busy")
                looping.set()

        async def waiter() -> None:
            served.append("waiting")  # the busy caller holds the connection now
            await client.ping()
            served.append("waiter")

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(busy)
                await looping.wait()
                nursery.start_soon(waiter)
        # Served right after the busy caller's command in flight.
        assert served.index("waiter") - served.index("waiting") <= 2, served
        assert (client.pool.size, client.pool.idle) == (1, 1)


def test_the_pool_timeout_is_a_url_option_with_a_default_for_every_kind_of_client() -> None:
    assert from_url("redis://localhost").pool.timeout == DEFAULT_POOL_TIMEOUT
    assert from_url("redis://localhost?pool_timeout=2.5").pool.timeout == 2.5
    assert from_url("redis://localhost?pool_timeout=none").pool.timeout is None  # forever
    assert parse_url("redis://localhost?pool_timeout=7")["pool_timeout"] == 7.0
    sentinel = client_from_url("redis+sentinel://localhost/mymaster?pool_timeout=3")
    assert sentinel.pool.timeout == 3.0
    assert client_from_url("redis+sentinel://localhost/mymaster").pool.timeout == 20.0
    cluster = client_from_url("redis+cluster://localhost:7000")
    assert [node.client.pool.timeout for node in cluster.nodes] == [20.0]
    cluster = client_from_url("redis+cluster://localhost:7000?pool_timeout=4")
    assert [node.client.pool.timeout for node in cluster.nodes] == [4.0]


@pytest.mark.parametrize("value", ["-1", "0"])
def test_a_pool_timeout_that_is_not_positive_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="pool_timeout must be positive"):
        from_url(f"redis://localhost?pool_timeout={value}")


@pytest.mark.chaos
async def test_actors_wait_out_a_full_pool_without_crashing(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # One pooled connection, held for a second by one instance's handler: the other
    # instance's fetches and acks wait for it, as they would wait out an outage.
    system = ActorSystem(f"{redis_url}?max_connections=1&pool_timeout=0.1", node="pool-full")
    handled: list[int] = []

    class Worker(Actor):
        mailbox = list_mailbox("pool-full")
        batch_size = 1

        async def receive(self, n: int) -> None:
            if n == 0:
                assert isinstance(system.transport, RedisTransport)
                async with system.transport.client.pool.checkout():
                    await trio.sleep(1.0)
            handled.append(n)

    system.supervise(Supervisor([Worker.spec(instances=2)]))
    caplog.set_level(logging.WARNING, logger="actors")
    async with system:
        await system.tell_many(Worker, list(range(20)))
        with trio.fail_after(20):
            while len(handled) < 20:
                await trio.sleep(0.05)
        tree = system.tree()
    assert sorted(handled) == list(range(20))
    assert sum(child.restarts for child in tree.children) == 0
    assert any("no free connection" in record.getMessage() for record in caplog.records)
