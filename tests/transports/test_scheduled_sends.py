"""Sends with a delay (issue 16 item 2): held by the store until due, then delivered.

The memory transport runs on a MockClock (its due times are trio time); Redis on real
servers: a private one restarted to prove the messages survive, two transports
promoting at once, and the cluster (``{name}:scheduled`` shares the mailbox's slot).
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from redis.crc import key_slot

from transports import ConfigurationError, MailboxSpec
from transports.memory import MemoryStore, MemoryTransport
from transports.redis import RedisTransport, timing_scripts as _timing_scripts
from transports.redis.client import RAW
from transports.redis.keys import SCHEDULED, Keys, parse_scheduled_record, scheduled_record
from transports.redis.scheduler import record_of
from transports.testing import LocalCluster, PrivateRedis
from transports.testing.conformance import collect, fetch_within

JOBS = MailboxSpec("list", "jobs")
EVENTS = MailboxSpec("stream", "events", maxlen=1000)


# -- memory: due times in trio time ---------------------------------------------------


@pytest.mark.parametrize("spec", [JOBS, EVENTS], ids=["list", "stream"])
async def test_memory_holds_a_delayed_send_until_due(
    spec: MailboxSpec, autojump_clock: trio.testing.MockClock
) -> None:
    async with MemoryTransport() as transport, transport.consumer(spec, "w") as consumer:
        start = trio.current_time()
        await transport.send(spec, [b"later"], delay=5.0)
        await transport.send(spec, [b"sooner"], delay=2.0)
        await transport.send(spec, [b"now"])
        assert [d.payload for d in await consumer.fetch(10)] == [b"now"]
        [sooner] = await consumer.fetch(10, ack=[])
        assert sooner.payload == b"sooner"
        assert trio.current_time() - start == pytest.approx(2.0)
        assert await fetch_within(consumer, 10, 2.9) == []
        [later] = await consumer.fetch(10)
        assert later.payload == b"later"
        assert trio.current_time() - start == pytest.approx(5.0)


async def test_memory_delayed_sends_wait_for_a_consumer_and_keep_their_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryStore()
    async with MemoryTransport(store) as sender:
        await sender.send(JOBS, [b"a", b"b", b"c"], delay=1.0)
    await trio.sleep(10)
    async with MemoryTransport(store) as later, later.consumer(JOBS, "w") as consumer:
        got = await collect(consumer, 3)
    assert [d.payload for d in got] == [b"a", b"b", b"c"]


@pytest.mark.parametrize("delay", [-1.0, math.nan])
async def test_a_bad_delay_is_refused(delay: float) -> None:
    async with MemoryTransport() as transport:
        with pytest.raises(ConfigurationError, match="delay"):
            await transport.send(JOBS, [b"x"], delay=delay)


async def test_pubsub_cannot_hold_a_message(redis_url: str) -> None:
    channel = MailboxSpec("pubsub", "news")
    async with MemoryTransport() as memory:
        with pytest.raises(ConfigurationError, match="pub/sub"):
            await memory.send(channel, [b"x"], delay=1.0)
    async with RedisTransport.from_url(redis_url) as redis_transport:
        with pytest.raises(ConfigurationError, match="pub/sub"):
            await redis_transport.send(channel, [b"x"], delay=1.0)


# -- Redis ----------------------------------------------------------------------------


def test_scheduled_records_round_trip() -> None:
    for spec in (JOBS, EVENTS, MailboxSpec("list", "a:b", expire=1.5)):
        kind, name, maxlen, expire_ms = parse_scheduled_record(record_of(spec))
        assert (kind, name, maxlen) == (spec.kind, spec.name, spec.maxlen)
        assert expire_ms == (None if spec.expire is None else round(spec.expire * 1000))
    with pytest.raises(ValueError, match="not a scheduled record"):
        parse_scheduled_record(scheduled_record("pubsub", "x", None, None))


@pytest.mark.parametrize("spec", [JOBS, EVENTS], ids=["list", "stream"])
async def test_redis_holds_a_delayed_send_in_the_store_until_due(
    spec: MailboxSpec, redis_url: str
) -> None:
    async with RedisTransport.from_url(redis_url) as transport:
        client = transport.client
        await transport.send(spec, [b"one", b"two"], delay=0.4)
        assert await client.execute_command(b"ZCARD", Keys(spec.name).scheduled) == 2
        assert await client.execute_command(b"EXISTS", spec.name) == 0
        assert await client.execute_command(b"ZCARD", SCHEDULED) == 1
        async with transport.consumer(spec, "w") as consumer:
            got = await collect(consumer, 2)
            assert [d.payload for d in got] == [b"one", b"two"]
            await consumer.ack(got)
            # Promoted, the index forgets the mailbox (its next pass settles it).
            with trio.fail_after(5):
                while await client.execute_command(b"ZCARD", SCHEDULED):
                    await trio.sleep(0.02)
            assert await client.execute_command(b"ZCARD", Keys(spec.name).scheduled) == 0


async def test_redis_delayed_sends_survive_a_restart_of_everything(
    private_redis: PrivateRedis,
) -> None:
    server = private_redis(appendonly=True)
    async with RedisTransport.from_url(server.url) as sender:
        await sender.send(JOBS, [b"durable"], delay=0.5)
    server.restart(kill=False)  # every process and the server stop; the data stays
    await trio.sleep(0.6)  # nobody runs when it falls due
    async with (
        RedisTransport.from_url(server.url) as transport,
        transport.consumer(JOBS, "w") as consumer,
    ):
        [delivery] = await collect(consumer, 1)
    assert delivery.payload == b"durable"


async def test_redis_two_promoters_deliver_each_message_once(redis_url: str) -> None:
    payloads = [f"m{i}".encode() for i in range(300)]
    async with (
        RedisTransport.from_url(redis_url) as first,
        RedisTransport.from_url(redis_url) as second,
        first.consumer(JOBS, "a") as consumer_a,
        second.consumer(JOBS, "b") as consumer_b,
    ):
        for start in range(0, len(payloads), 50):
            await first.send(JOBS, payloads[start : start + 50], delay=0.2)
        got: list[bytes] = []

        async def drain(consumer: object) -> None:
            while True:
                batch = await fetch_within(consumer, 100, 1.0)  # type: ignore[arg-type]
                if not batch and len(got) >= len(payloads):
                    return
                got.extend(d.payload for d in batch)
                if batch:
                    await consumer.ack(batch)  # type: ignore[attr-defined]

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, consumer_a)
                nursery.start_soon(drain, consumer_b)
    assert sorted(got) == sorted(payloads)


async def test_a_send_during_a_promotion_keeps_its_index_entry(redis_url: str) -> None:
    """The promoter read the mailbox's mark before a send came in: settling it then must
    not drop the entry (the new message would never be promoted)."""
    async with RedisTransport.from_url(redis_url) as transport:
        client = transport.client
        record = record_of(JOBS)
        await _timing_scripts.schedule_index(client, record=record, due_ms=1)
        [(seen, mark)], _, now = await _timing_scripts.scheduled_due(client, most=10)
        assert seen == record
        next_due, _ = await _timing_scripts.promote(
            client, Keys("jobs"), kind="list", maxlen=None, expire_ms=None, most=10
        )
        assert next_due == -1
        due = await _timing_scripts.schedule(
            client, Keys("jobs"), delay_ms=60_000, token="t", payloads=[b"x"]
        )
        await _timing_scripts.schedule_index(client, record=record, due_ms=due)
        assert not await _timing_scripts.scheduled_settle(
            client, record=record, mark=mark, next_due_ms=next_due
        )
        score = await client.execute_command(b"ZSCORE", SCHEDULED, record, **RAW)
        assert float(score) <= now  # still due: the next pass looks again
        [(_, mark)], _, _ = await _timing_scripts.scheduled_due(client, most=10)
        next_due, _ = await _timing_scripts.promote(
            client, Keys("jobs"), kind="list", maxlen=None, expire_ms=None, most=10
        )
        assert next_due == due
        assert await _timing_scripts.scheduled_settle(
            client, record=record, mark=mark, next_due_ms=next_due
        )
        assert float(await client.execute_command(b"ZSCORE", SCHEDULED, record)) == due


async def test_redis_cluster_delayed_send(redis_cluster: LocalCluster) -> None:
    keys = Keys("jobs")
    assert key_slot(keys.scheduled.encode()) == key_slot(b"jobs")
    async with RedisTransport.from_url(redis_cluster.url) as transport:
        await transport.client.execute_command(b"DEL", "jobs", keys.scheduled)
        await transport.send(JOBS, [b"clustered"], delay=0.3)
        async with transport.consumer(JOBS, "w") as consumer:
            [delivery] = await collect(consumer, 1)
            await consumer.ack([delivery])
    assert delivery.payload == b"clustered"
