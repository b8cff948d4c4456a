"""Redis misbehaves under a running system: killed and restarted, connections dropped,
paused past the read timeout, keys deleted. A producer sends continuously; every id
that Redis acknowledged (the send returned) must be handled."""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import pytest
import redis
import trio

from actors import ActorSystem, MailboxSpec, TransportError, list_mailbox, stream_mailbox
from actors._lifecycle import SystemState
from transports.redis import RedisTransport, from_url
from transports.testing import PrivateRedis, RedisServer

from .conftest import Report, Tally, failed_nodes, total_restarts

pytestmark = pytest.mark.chaos

LEASE = 1.0
JOBS = list_mailbox("jobs", lease=LEASE)
EVENTS = stream_mailbox("events", lease=LEASE)


@attrs.define
class Load:
    """What the producer sent and the actors handled, with trio timestamps."""

    acked: set[int] = attrs.Factory(set)  # the send returned: Redis has them
    uncertain: set[int] = attrs.Factory(set)  # the send failed: maybe sent, maybe not
    send_started: dict[int, float] = attrs.Factory(dict)
    handled: Counter[int] = attrs.Factory(Counter)
    handled_at: list[float] = attrs.Factory(list)
    send_errors: int = 0
    # Only what was sent after this moment must be handled (a fault that deletes data
    # may take what was queued before it).
    counted_from: float = -math.inf

    def must_handle(self) -> set[int]:
        return {n for n in self.acked if self.send_started[n] > self.counted_from}

    def first_handled_after(self, moment: float) -> float | None:
        later = [t for t in self.handled_at if t >= moment]
        return min(later) - moment if later else None


def make_system(
    load: Load,
    url: str | None = None,
    transport: RedisTransport | None = None,
    boxes: Sequence[MailboxSpec] = (JOBS, EVENTS),
) -> ActorSystem:
    system = ActorSystem(url, transport=transport)

    async def record(n: int) -> None:
        await trio.sleep(0.001)  # a batch is in flight for a moment
        load.handled[n] += 1
        load.handled_at.append(trio.current_time())

    for box in boxes:
        system.actor(mailbox=box, name=f"record-{box.name}", instances=2, batch_size=10)(record)
    return system


async def produce(
    system: ActorSystem,
    load: Load,
    targets: Sequence[MailboxSpec],
    stop: trio.Event,
    ids: itertools.count[int],
) -> None:
    """Send batches of 5 to each target every 20 ms until ``stop``, counting what Redis
    acknowledged; a failed send is not retried (its ids are 'uncertain')."""
    while not stop.is_set():
        for target in targets:
            batch = [next(ids) for _ in range(5)]
            now = trio.current_time()
            for n in batch:
                load.send_started[n] = now
            try:
                with trio.fail_after(10):
                    await system.tell_many(target, batch)
            except TransportError:
                load.uncertain.update(batch)
                load.send_errors += 1
                await trio.sleep(0.05)
            else:
                load.acked.update(batch)
        await trio.sleep(0.02)


async def wait_handled(load: Load, ids: set[int], timeout: float = 30.0) -> None:
    with trio.fail_after(timeout):
        while not ids <= set(load.handled):
            await trio.sleep(0.05)


@asynccontextmanager
async def under_load(
    system: ActorSystem, load: Load, targets: Sequence[MailboxSpec] = (JOBS, EVENTS)
) -> AsyncIterator[None]:
    """Run ``system`` with the producer going for the body of the block (plus a
    moment before and after), then wait until everything acked is handled."""
    stop = trio.Event()
    ids = itertools.count()
    async with system, trio.open_nursery() as nursery:
        nursery.start_soon(produce, system, load, targets, stop, ids)
        await trio.sleep(1.0)
        yield
        await trio.sleep(1.5)
        stop.set()
        await wait_handled(load, load.must_handle())
        await trio.sleep(0.3)  # late duplicates show up too
        assert system.state is SystemState.RUNNING
        assert failed_nodes(system.tree()) == []


def check(load: Load, counted: set[int] | None = None) -> Tally:
    sent = load.acked if counted is None else counted
    tally = Tally.of(sent, load.handled)
    assert tally.lost == 0, tally.lost_ids
    # Nothing is made up: every handled id was sent, or at least attempted.
    assert set(load.handled) <= load.acked | load.uncertain
    return tally


# -- 2. Redis killed and restarted --------------------------------------------------------------


async def test_redis_killed_and_restarted_under_load(
    private_redis: PrivateRedis, chaos_report: Report, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="actors")
    server = private_redis(appendonly=True, extra_args=["--appendfsync", "always"])
    load = Load()
    system = make_system(load, server.url)
    restarts = 0
    async with under_load(system, load):
        await trio.to_thread.run_sync(server.kill)
        await trio.sleep(1.0)
        await trio.to_thread.run_sync(server.start)
        back = trio.current_time()
        restarts = total_restarts(system.tree())
    assert load.send_errors > 0, "the outage should have been noticed by the producer"
    # The actors noticed, backed off and came back on their own.
    messages = [record.getMessage() for record in caplog.records]
    assert any("store unavailable" in m for m in messages)
    assert any("store reachable again" in m for m in messages)
    tally = check(load)
    chaos_report(
        "Redis SIGKILL, down 1s, restart (appendonly, appendfsync always)",
        tally,
        recover_s=load.first_handled_after(back),
        send_errors=load.send_errors,
        uncertain=len(load.uncertain),
        actor_restarts=restarts,
    )


# -- 3. connections dropped under the runtime -----------------------------------------------------


async def test_client_kill_repeatedly_under_load(
    private_redis: PrivateRedis, chaos_report: Report
) -> None:
    server = private_redis()
    load = Load()
    system = make_system(load, server.url)
    kills = 0
    async with from_url(server.url) as killer, under_load(system, load):
        for _ in range(10):
            kills += int(await killer.execute_command("CLIENT", "KILL", "TYPE", "normal"))
            await trio.sleep(0.2)
        last_kill = trio.current_time()
    assert kills >= 10
    tally = check(load)
    chaos_report(
        "CLIENT KILL TYPE normal x10 every 0.2s",
        tally,
        recover_s=load.first_handled_after(last_kill),
        connections_killed=kills,
        send_errors=load.send_errors,
    )


# -- 4. Redis paused longer than the read timeout --------------------------------------------------


async def test_redis_paused_past_the_read_timeout(
    private_redis: PrivateRedis, chaos_report: Report
) -> None:
    server = private_redis()
    load = Load()
    # A send that needs a new connection waits for its handshake, bounded by the
    # connect timeout (5 s by default, longer than the pause): bound both.
    transport = RedisTransport.from_url(server.url, read_timeout=0.5, connect_timeout=0.5)
    system = make_system(load, transport=transport)
    try:
        async with under_load(system, load):
            server.pause()
            try:
                await trio.sleep(2.0)
            finally:
                server.resume()
            resumed = trio.current_time()
    finally:
        await transport.aclose()
    assert load.send_errors > 0, "sends should have timed out during the pause"
    tally = check(load)
    chaos_report(
        "Redis SIGSTOP 2s (read timeout 0.5s), SIGCONT",
        tally,
        recover_s=load.first_handled_after(resumed),
        send_errors=load.send_errors,
        uncertain=len(load.uncertain),
    )


# -- 6. the mailbox's keys deleted under running actors ------------------------------------


def _delete(server: RedisServer, what: str) -> None:
    db = redis.Redis.from_url(server.url)
    try:
        if what == "DEL stream":
            db.delete("events")
        elif what == "XGROUP DESTROY":
            db.xgroup_destroy("events", "events")
        elif what == "DEL list":
            db.delete("jobs")
        else:
            db.flushdb()
    finally:
        db.close()


@pytest.mark.parametrize(
    ("what", "boxes"),
    [
        ("DEL stream", (EVENTS,)),
        ("XGROUP DESTROY", (EVENTS,)),
        ("DEL list", (JOBS,)),
        ("FLUSHDB", (JOBS, EVENTS)),
    ],
)
async def test_keys_deleted_under_running_actors(
    what: str,
    boxes: tuple[MailboxSpec, ...],
    private_redis: PrivateRedis,
    chaos_report: Report,
) -> None:
    server = private_redis()
    load = Load()
    system = make_system(load, server.url, boxes=boxes)
    async with under_load(system, load, boxes):
        await trio.to_thread.run_sync(_delete, server, what)
        deleted = load.counted_from = trio.current_time()
    # What was sent before the deletion may have been deleted with it; what was sent
    # after must all be handled.
    after = load.must_handle()
    assert len(after) > 100
    tally = check(load, after)
    chaos_report(
        f"{what} under running actors ({', '.join(str(b) for b in boxes)})",
        tally,
        recover_s=load.first_handled_after(deleted),
    )
