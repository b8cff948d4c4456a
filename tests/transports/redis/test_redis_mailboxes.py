"""RedisTransport against a real server: wire format, keys, leases, faults.

What every transport promises is in ``tests/conformance`` (run against Redis too);
here is what only Redis has: payloads from other clients, the key layout, groups
and streams deleted under a consumer, a server killed and restarted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from actors import CodecError
from actors._codec import decode
from transports import (
    ActorsError,
    BrokenConnectionError,
    ClosedError,
    ConnectError,
    Failure,
    MailboxSpec,
    Settlement,
    TransportError,
)
from transports.redis import Redis, RedisTransport, from_url, scripts as _scripts
from transports.redis.client import RAW
from transports.redis.client._connection import Connection
from transports.redis.list import ListConsumer, scripts as _list_scripts
from transports.redis.list.scripts import LIST_TAKE
from transports.redis.scripts import Script
from transports.redis.stream import StreamConsumer, scripts as _stream_scripts
from transports.testing import PrivateRedis
from transports.testing.conformance import collect, fetch_within

LEASE = 0.5


@pytest.fixture
async def transport(redis_url: str) -> AsyncIterator[RedisTransport]:
    async with RedisTransport.from_url(redis_url) as opened:
        yield opened


class Monitor:
    """``MONITOR`` on a dedicated connection: the commands the server runs, as lines."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def lines(self, count: int, *words: str) -> list[str]:
        """The next ``count`` lines that name one of ``words`` (fails after 5 s)."""
        seen: list[str] = []
        with trio.fail_after(5):
            while len(seen) < count:
                reply = await self._connection.read_reply()
                line = reply.decode() if isinstance(reply, bytes) else str(reply)
                if any(word in line for word in words):
                    seen.append(line)
        return seen


@asynccontextmanager
async def monitoring(transport: RedisTransport) -> AsyncIterator[Monitor]:
    """Watch what the server runs from now on."""
    async with transport.client.dedicated(read_timeout=5.0) as dedicated:
        await dedicated.execute_command("MONITOR")
        assert dedicated.connection is not None
        yield Monitor(dedicated.connection)


def client_of(line: str) -> str:
    """The client address of a ``MONITOR`` line."""
    return line.split("]", 1)[0].split()[-1]


# -- payloads from other clients -----------------------------------------------------------


async def test_a_json_list_payload_pushed_by_another_client_is_a_body(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("list", "orders", lease=LEASE)
    await transport.client.rpush("orders", '{"id":1}')
    async with transport.consumer(spec, "worker") as consumer:
        [delivery] = await consumer.fetch(10)
        await consumer.ack([delivery])
    assert decode(delivery.payload).body == {"id": 1}
    assert await transport.client.llen("{orders}:processing:worker") == 0


async def test_foreign_stream_fields_arrive_as_a_json_object(transport: RedisTransport) -> None:
    spec = MailboxSpec("stream", "orders", lease=LEASE)
    await transport.client.xadd("orders", {"id": "1", "name": "x"})
    await transport.client.xadd("orders", {"message": "plain text"})
    async with transport.consumer(spec, "worker") as consumer:
        first, second = await consumer.fetch(10)
        await consumer.ack([first, second])
    assert json.loads(first.payload) == {"id": "1", "name": "x"}
    assert decode(first.payload).body == {"id": "1", "name": "x"}
    assert decode(second.payload).body == "plain text"


async def test_a_stream_field_that_is_not_utf8_gives_a_payload_the_codec_rejects(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("stream", "orders", lease=LEASE)
    await transport.client.xadd("orders", {"id": b"\xff\xfe", "name": "x"})
    async with transport.consumer(spec, "worker") as consumer:
        [delivery] = await consumer.fetch(10)
        with pytest.raises(CodecError):
            decode(delivery.payload)
        await consumer.dead_letter(delivery, Failure("undecodable"))
    [letter] = await transport.dead_letters(spec)
    assert letter.payload == b"\xff\xfe"


async def test_a_foreign_stream_entry_is_replayed_with_its_own_fields(
    transport: RedisTransport,
) -> None:
    """Dead-lettered and replayed, an entry another client wrote comes back as it was
    written (not as one ``message`` field holding its JSON); the runtime's own entries
    come back as they were too."""
    spec = MailboxSpec("stream", "orders", lease=LEASE)
    await transport.client.xadd("orders", {"id": "1", "name": "x"})
    await transport.send(spec, [b'{"id":2}'])
    async with transport.consumer(spec, "worker") as consumer:
        deliveries = await consumer.fetch(10)
        for delivery in deliveries:
            await consumer.dead_letter(delivery, Failure("poison"))
    assert await transport.replay_dead_letters(spec) == 2
    entries = await transport.client.execute_command(b"XRANGE", "orders", "-", "+", **RAW)
    assert [fields for _, fields in entries[2:]] == [
        [b"id", b"1", b"name", b"x"],
        [b"message", b'{"id":2}'],
    ]


async def test_a_stream_entry_of_very_many_fields_is_dead_lettered_as_its_payload(
    transport: RedisTransport,
) -> None:
    """Beyond 3,500 fields an entry is not kept whole (Lua could not write it back):
    dead-lettering it still works, and a replay writes its payload."""
    spec = MailboxSpec("stream", "orders", lease=LEASE)
    fields = [part for n in range(4000) for part in (f"f{n}", "v")]
    await transport.client.execute_command("XADD", "orders", "*", *fields)
    async with transport.consumer(spec, "worker") as consumer:
        [delivery] = await consumer.fetch(10)
        await consumer.dead_letter(delivery, Failure("poison"))
    assert await transport.replay_dead_letters(spec) == 1
    [_, (_, replayed)] = await transport.client.execute_command(
        b"XRANGE", "orders", "-", "+", **RAW
    )
    assert replayed == [b"message", delivery.payload]


async def test_replaying_all_leaves_the_letters_made_meanwhile(
    transport: RedisTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replayed message that an actor dead-letters again at once is not replayed
    again by the same call, which would chase it for as long as it dies."""
    spec = MailboxSpec("stream", "orders", lease=LEASE)
    await transport.send(spec, [b"poison"])
    async with transport.consumer(spec, "worker") as consumer:
        [delivery] = await consumer.fetch(10)
        await consumer.dead_letter(delivery, Failure("poison"))
    replay, again = _scripts.replay, 3

    async def replay_and_die_again(*args: Any, **kwargs: Any) -> Any:  # as a fast actor would
        nonlocal again
        replayed = await replay(*args, **kwargs)
        if again:
            again -= 1
            await transport.client.xadd("{orders}:dead", {"payload": "poison", "reason": "x"})
        return replayed

    monkeypatch.setattr(_scripts, "replay", replay_and_die_again)
    with trio.fail_after(10):
        assert await transport.replay_dead_letters(spec) == 1
    assert len(await transport.dead_letters(spec)) == 1


async def test_text_published_by_another_client_arrives_with_its_channel(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("pubsub", "news.*", pattern=True)
    async with transport.consumer(spec, "reader") as consumer:
        await transport.client.publish("news.sport", "goal")
        await transport.send(MailboxSpec("pubsub", "news.weather"), [b'"rain"'])
        got = []
        with trio.fail_after(5):
            while len(got) < 2:
                got.extend(await consumer.fetch(10))
        assert await consumer.record_failure(got[0]) == 1
        await consumer.retry_later(got[0], 0.1)  # dropped: pub/sub keeps nothing
        await consumer.dead_letter(got[1], Failure("poison"))
    assert [(d.payload, d.channel) for d in got] == [
        (b"goal", "news.sport"),
        (b'"rain"', "news.weather"),
    ]
    assert decode(got[0].payload).body == "goal"
    assert [letter.payload for letter in await transport.dead_letters(spec)] == [b'"rain"']


async def test_sending_writes_what_other_clients_read(transport: RedisTransport) -> None:
    await transport.send(MailboxSpec("list", "jobs"), [b"a", b"b"])
    await transport.send(MailboxSpec("stream", "events", maxlen=1000), [b"x", b"y"])
    assert await transport.client.lrange("jobs", 0, -1) == [b"a", b"b"]
    entries = await transport.client.xrange("events")
    assert [fields for _, fields in entries] == [{b"message": b"x"}, {b"message": b"y"}]


# -- the key layout ---------------------------------------------------------------------


async def test_list_keys_share_the_mailbox_hash_tag(transport: RedisTransport) -> None:
    spec = MailboxSpec("list", "jobs", lease=LEASE)
    client = transport.client
    await transport.send(spec, [b"a", b"b", b"c"])
    async with transport.consumer(spec, "w1") as consumer:
        a, b, c = await consumer.fetch(3)
        assert await client.lrange("{jobs}:processing:w1", 0, -1) == [b"a", b"b", b"c"]
        assert await client.zscore("{jobs}:consumers", "w1") is not None
        assert await consumer.record_failure(a) == 1
        assert await client.hgetall("{jobs}:failures") == {a.id.encode(): b"1"}
        await consumer.retry_later(a, 60)
        assert len(await client.zrange("{jobs}:delayed", 0, -1)) == 1
        await consumer.dead_letter(b, Failure("poison", actor="jobs-0"))
        await consumer.ack([c])
        assert await client.llen("{jobs}:processing:w1") == 0
    [(_, fields)] = await client.xrange("{jobs}:dead")
    assert fields[b"payload"] == b"b"
    assert fields[b"actor"] == b"jobs-0"
    assert fields[b"attempts"] == b"1"
    assert await client.smembers("{jobs}:closed") == {b"w1"}


# -- lists: processing lists and leases --------------------------------------------------


async def test_a_killed_list_consumer_is_taken_over_with_its_attempt_counted(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("list", "jobs", lease=LEASE)
    client = transport.client
    # A consumer that died without closing: a processing list and an old heartbeat.
    await client.rpush("{jobs}:processing:ghost", "p1", "p2")
    await client.zadd("{jobs}:consumers", {"ghost": 0})
    await transport.send(spec, [b"new"])
    async with transport.consumer(spec, "heir") as heir:
        got = await heir.fetch(10)
        await heir.ack(got)
    assert [(d.payload, d.attempt) for d in got] == [(b"p1", 2), (b"p2", 2), (b"new", 1)]
    assert await client.exists("{jobs}:processing:ghost", "{jobs}:failures") == 0
    assert await client.zscore("{jobs}:consumers", "ghost") is None


async def test_a_killed_list_consumer_gets_its_messages_back_under_its_name(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("list", "jobs", lease=LEASE)
    await transport.client.rpush("{jobs}:processing:w1", "p1")
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(10)
        assert (delivery.payload, delivery.attempt) == (b"p1", 2)
        await consumer.ack([delivery])


async def test_a_late_fate_of_a_list_message_taken_over_meanwhile_adds_no_copy(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("list", "jobs", lease=LEASE)
    client = transport.client
    await transport.send(spec, [b"slow"])
    async with transport.consumer(spec, "lapsed") as lapsed:
        [delivery] = await lapsed.fetch(1)
        # Its heartbeat lapsed (a stalled process): another consumer takes the message.
        await client.zadd("{jobs}:consumers", {"lapsed": 0})
        async with transport.consumer(spec, "heir") as heir:
            [taken] = await heir.fetch(1)
            await lapsed.retry_later(delivery, 0)  # the stalled handler gives up late
            assert await client.zcard("{jobs}:delayed") == 0  # no second copy
            await lapsed.dead_letter(delivery, Failure("late"))  # nor a dead letter
            assert await transport.dead_letters(spec) == []
            assert await fetch_within(heir, 5, LEASE / 5) == []
            await heir.ack([taken])
    assert taken.payload == b"slow"


async def test_a_live_list_consumer_keeps_its_messages_past_the_lease(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("list", "jobs", lease=LEASE)
    await transport.send(spec, [b"slow"])
    async with transport.consumer(spec, "slow") as slow:
        held = await slow.fetch(1)
        async with transport.consumer(spec, "other") as other:
            assert await fetch_within(other, 5, 3 * LEASE) == []
        await slow.ack(held)


async def test_a_list_message_moved_by_an_interrupted_fetch_is_found_again(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("list", "jobs", lease=LEASE)
    async with transport.consumer(spec, "w1") as consumer:
        assert await fetch_within(consumer, 5, 0.1) == []
        # As if the cancelled BLMOVE had moved a message and its reply was lost:
        await transport.client.rpush("{jobs}:processing:w1", "lost")
        [delivery] = await consumer.fetch(5)
        assert (delivery.payload, delivery.attempt) == (b"lost", 1)
        await consumer.ack([delivery])


async def test_acking_a_whole_batch_with_the_fetch_sends_no_payloads(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("list", "whole", lease=LEASE)
    await transport.send(spec, [b"payload-a", b"payload-b", b"payload-c"])
    async with transport.consumer(spec, "w1") as consumer:
        batch = await consumer.fetch(2)
        async with monitoring(transport) as monitor:
            assert [d.payload for d in await consumer.fetch(5, ack=batch)] == [b"payload-c"]
            [line] = await monitor.lines(1, '"EVALSHA"')
        assert "payload-a" not in line and "payload-b" not in line  # acked by count
        processing = await transport.client.lrange("{whole}:processing:w1", 0, -1)
        assert processing == [b"payload-c"]


@pytest.mark.parametrize("how", ["fetch", "ack", "settle"])
async def test_a_taken_over_consumer_acking_a_whole_batch_drops_nothing_unseen(
    transport: RedisTransport, how: str
) -> None:
    """A consumer whose lease lapsed was taken over: its whole-batch ack (by count)
    must not empty a processing list that holds as many messages, but not those
    (here pushed behind its back, as moves whose replies were lost would)."""
    spec = MailboxSpec("list", "lapsed", lease=LEASE)
    client = transport.client
    await transport.send(spec, [b"a", b"b"])
    async with transport.consumer(spec, "slow") as slow:
        batch = await slow.fetch(2)
        await client.zadd("{lapsed}:consumers", {"slow": 0})  # its heartbeat, long ago
        async with transport.consumer(spec, "heir"):  # opening takes over "slow"
            assert await client.lrange("lapsed", 0, -1) == [b"a", b"b"]
            await client.rpush("{lapsed}:processing:slow", "x", "y")
            # Refused: it acks by payload (nothing: they went back), then resyncs,
            # which finds what it never saw, then takes the two back (counted).
            if how == "fetch":
                again = await slow.fetch(5, ack=batch)
            else:
                if how == "ack":
                    await slow.ack(batch)
                else:
                    assert await slow.settle(Settlement(acks=batch)) == {}
                assert await client.llen("{lapsed}:processing:slow") == 2
                again = await slow.fetch(5)
            assert [(d.payload, d.attempt) for d in again] == [
                (b"x", 1),
                (b"y", 1),
                (b"a", 2),
                (b"b", 2),
            ]
            await slow.ack(again)
    assert await client.exists("{lapsed}:processing:slow") == 0


async def test_what_an_interrupted_fetch_moved_goes_back_when_the_consumer_closes(
    transport: RedisTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop that cancels a fetch after its script moved messages: closing hands them
    back to the head of the list (uncounted), instead of leaving them to the lease."""
    spec = MailboxSpec("list", "moved", lease=30.0)
    client = transport.client
    run = Script.__call__

    async def reply_lost(self: Script, *args: Any) -> Any:
        reply = await run(self, *args)
        if self is LIST_TAKE:
            await trio.sleep_forever()
        return reply

    await transport.send(spec, [b"held", b"m1", b"m2", b"m3"])
    async with transport.consumer(spec, "w1") as consumer:
        assert [d.payload for d in await consumer.fetch(1)] == [b"held"]
        monkeypatch.setattr(Script, "__call__", reply_lost)
        with trio.move_on_after(0.2):
            await consumer.fetch(2)  # moves m1, m2; the reply never comes
        monkeypatch.setattr(Script, "__call__", run)
        assert await client.lrange("moved", 0, -1) == [b"m3"]
    assert await client.lrange("moved", 0, -1) == [b"m1", b"m2", b"m3"]
    assert await client.lrange("{moved}:processing:w1", 0, -1) == [b"held"]
    async with transport.consumer(spec, "w2") as other:
        got = await other.fetch(5)
        await other.ack(got)
    assert [(d.payload, d.attempt) for d in got] == [(b"m1", 1), (b"m2", 1), (b"m3", 1)]


@pytest.mark.parametrize("lost", ["error", "cancel"])
async def test_acking_again_after_a_lost_reply_spares_an_equal_message_taken_since(
    transport: RedisTransport, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    """The script that acked a batch and took the next ran, but its reply was lost
    (a broken connection; a stop cancelling the fetch): acking the batch again,
    payload by payload, would ack the equal copy that script took, unseen. The
    retried ack carries the same id, and the store skips it."""
    spec = MailboxSpec("list", "lost-reply", lease=LEASE)
    client = transport.client
    run = Script.__call__
    lose_next = False

    async def losing(self: Script, *args: Any) -> Any:
        nonlocal lose_next
        reply = await run(self, *args)
        if self is LIST_TAKE and lose_next:
            lose_next = False
            if lost == "error":
                raise BrokenConnectionError("reply lost (test)")
            await trio.sleep_forever()
        return reply

    monkeypatch.setattr(Script, "__call__", losing)
    await transport.send(spec, [b"X"])
    async with transport.consumer(spec, "w1") as consumer:
        batch = await consumer.fetch(10)
        await transport.send(spec, [b"X", b"Y"])  # a second message, equal to the first
        lose_next = True
        if lost == "error":
            with pytest.raises(BrokenConnectionError):
                await consumer.fetch(10, ack=batch)
            again = await consumer.fetch(10, ack=batch)  # as the runner retries
        else:
            with trio.move_on_after(0.2):
                await consumer.fetch(10, ack=batch)
            assert await consumer.settle(Settlement(acks=batch)) == {}  # as the runner stops
            again = await consumer.fetch(10)
        assert [(d.payload, d.attempt) for d in again] == [(b"X", 1), (b"Y", 1)]
        await consumer.ack(again)
    assert await client.exists("lost-reply", "{lost-reply}:processing:w1") == 0


async def test_a_resync_keeps_track_lost_while_it_ran(
    transport: RedisTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call beside the resyncing take (an ack whose reply was lost) may change the
    processing list after the take read it: the consumer must resync again."""
    spec = MailboxSpec("list", "beside", lease=LEASE)
    await transport.send(spec, [b"a", b"b"])
    run = Script.__call__
    async with transport.consumer(spec, "w1") as consumer:
        assert isinstance(consumer, ListConsumer)

        async def beside(self: Script, *args: Any) -> Any:
            reply = await run(self, *args)
            if self is LIST_TAKE and consumer._ledger.resync:
                consumer._lose_track()  # as a failing ack beside it would
            return reply

        consumer._lose_track()
        monkeypatch.setattr(Script, "__call__", beside)
        got = await consumer.fetch(1)
        assert consumer._ledger.resync  # still: what the beside call did is unknown
        monkeypatch.setattr(Script, "__call__", run)
        got += await consumer.fetch(1, ack=got)
        assert not consumer._ledger.resync
        await consumer.ack(got[1:])
    assert [d.payload for d in got] == [b"a", b"b"]


# -- streams: pending entries, leases, deleted groups ----------------------------------------


async def test_stream_entries_pending_on_a_dead_consumer_are_claimed_after_the_lease(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("stream", "events", lease=LEASE)
    client = transport.client
    await transport.send(spec, [b"a"])
    await client.xgroup_create("events", "events", "0")
    await client.xreadgroup("events", "ghost", {"events": ">"})  # and it dies
    async with transport.consumer(spec, "heir") as heir:
        assert await fetch_within(heir, 5, LEASE / 4) == []
        [delivery] = await heir.fetch(5)
        await heir.ack([delivery])
    assert (delivery.payload, delivery.attempt) == (b"a", 2)
    assert (await client.xpending("events", "events"))["pending"] == 0


async def test_a_claim_takes_every_entry_of_a_dead_consumer_however_small_the_fetch(
    transport: RedisTransport,
) -> None:
    """A fetch of one message claims all a dead consumer held (up to 100): the rest are
    due at once, with the dead consumer's attempt counted, not left for the next claim."""
    spec = MailboxSpec("stream", "claims", lease=LEASE)
    client = transport.client
    await transport.send(spec, [b"a", b"b", b"c", b"d"])
    await client.xgroup_create("claims", "claims", "0")
    await client.xreadgroup("claims", "ghost", {"claims": ">"})  # and it dies
    async with transport.consumer(spec, "heir") as heir:
        await trio.sleep(LEASE * 1.2)
        got = [d for _ in range(4) for d in await fetch_within(heir, 1, LEASE / 4)]
        await heir.ack(got)
    assert [(d.payload, d.attempt) for d in got] == [(p, 2) for p in [b"a", b"b", b"c", b"d"]]
    assert (await client.xpending("claims", "claims"))["pending"] == 0
    assert await client.exists("{claims}:failures") == 0


async def test_stream_acks_ride_in_the_write_of_the_next_read(transport: RedisTransport) -> None:
    spec = MailboxSpec("stream", "riding", lease=LEASE)
    client = transport.client
    async with transport.consumer(spec, "w1") as consumer:
        await transport.send(spec, [b"a"])
        batch = list(await consumer.fetch(5))  # reads its history, then new entries
        await transport.send(spec, [b"b"])
        batch += await consumer.fetch(5)  # a blocking read: its connection is open
        await transport.send(spec, [b"c"])
        async with monitoring(transport) as monitor:
            assert [d.payload for d in await consumer.fetch(5, ack=batch)] == [b"c"]
            xack, xreadgroup = await monitor.lines(2, '"XACK"', '"XREADGROUP"')
        pending = await client.xpending("riding", "riding")
    assert '"XACK"' in xack and '"XREADGROUP"' in xreadgroup
    assert client_of(xack) == client_of(xreadgroup)  # one write on one connection
    assert pending["pending"] == 1  # "c" only


async def test_a_stream_fetch_fills_a_batch_of_due_retries_with_new_entries(
    transport: RedisTransport,
) -> None:
    """Due retries come first, and new entries fill the rest of the batch: a burst of
    failing messages must not break the drain into batches of a few retries each."""
    spec = MailboxSpec("stream", "filled", lease=LEASE)
    async with transport.consumer(spec, "w1") as consumer:
        await transport.send(spec, [b"a", b"b"])
        first = list(await consumer.fetch(2))
        await transport.send(spec, [f"n{i}".encode() for i in range(8)])
        for delivery in first:
            await consumer.record_failure(delivery)
            await consumer.retry_later(delivery, 0)
        await trio.sleep(0.01)  # due
        batch = await fetch_within(consumer, 10, LEASE / 4)
    assert [d.payload for d in batch] == [b"a", b"b", *(f"n{i}".encode() for i in range(8))]
    assert [d.attempt for d in batch[:2]] == [2, 2]


async def test_stream_entries_read_behind_a_failed_ack_are_read_again(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("stream", "behind", lease=LEASE)
    client = transport.client
    async with transport.consumer(spec, "w1") as consumer:
        await transport.send(spec, [b"a"])
        await consumer.ack(await consumer.fetch(5))
        await transport.send(spec, [b"b"])
        [b] = await consumer.fetch(5)  # a blocking read: its connection is open
        await consumer.record_failure(b)  # its ack deletes the count: an HDEL...
        await client.delete("{behind}:failures")
        await client.set("{behind}:failures", "not a hash")  # ...that fails
        await transport.send(spec, [b"c"])
        with pytest.raises(TransportError, match="WRONGTYPE"):
            await consumer.fetch(5, ack=[b])  # XACK, HDEL (fails), XREADGROUP (gets c)
        await client.delete("{behind}:failures")
        again = await fetch_within(consumer, 5, LEASE / 4)
        assert [d.payload for d in again] == [b"c"]  # pending under its name: read again


async def test_stream_entries_an_interrupted_read_took_are_handed_back_at_close(
    transport: RedisTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = MailboxSpec("stream", "unread", lease=30.0)
    block = StreamConsumer._block

    async def reply_lost(self: StreamConsumer, *args: Any) -> Any:
        await block(self, *args)
        await trio.sleep_forever()

    await transport.send(spec, [b"held", b"e1", b"e2"])
    async with transport.consumer(spec, "w1") as consumer:
        assert [d.payload for d in await consumer.fetch(1)] == [b"held"]
        monkeypatch.setattr(StreamConsumer, "_block", reply_lost)
        with trio.move_on_after(0.2):
            await consumer.fetch(5)  # reads e1, e2 (XREADGROUP); the reply never comes
        monkeypatch.setattr(StreamConsumer, "_block", block)
    got: list[Any] = []
    async with transport.consumer(spec, "w2") as other:
        with trio.move_on_after(1.0):  # not after the 30 s lease
            while len(got) < 2:
                got += await other.fetch(5)
        await other.ack(got)
    assert [(d.payload, d.attempt) for d in got] == [(b"e1", 1), (b"e2", 1)]
    pending = await transport.client.xpending_range("unread", "unread", "-", "+", 10)
    assert [entry["consumer"] for entry in pending] == [b"w1"]  # "held" stays its own


async def test_lease_renewal_keeps_a_slow_stream_consumers_entries(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("stream", "events", lease=LEASE)
    await transport.send(spec, [b"slow"])
    async with transport.consumer(spec, "slow") as slow:
        held = await slow.fetch(1)
        await trio.sleep(2 * LEASE)
        [pending] = await transport.client.xpending_range("events", "events", "-", "+", 10)
        assert pending["consumer"] == b"slow"
        assert pending["time_since_delivered"] < LEASE * 1000
        async with transport.consumer(spec, "other") as other:
            assert await fetch_within(other, 5, LEASE) == []
        await slow.ack(held)


@pytest.mark.parametrize("deleted", ["group", "stream"])
async def test_a_stream_consumer_survives_its_group_or_stream_being_deleted(
    transport: RedisTransport, deleted: str
) -> None:
    spec = MailboxSpec("stream", "events", lease=LEASE)
    async with transport.consumer(spec, "worker") as consumer:
        got: list[object] = []
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                got.extend(await consumer.fetch(5))

            nursery.start_soon(read)
            await trio.sleep(0.2)  # blocked in XREADGROUP
            if deleted == "group":
                await transport.client.xgroup_destroy("events", "events")
            else:
                await transport.client.delete("events")
            await trio.sleep(0.2)
            await transport.send(spec, [b"after"])
        assert [d.payload for d in got] == [b"after"]  # type: ignore[attr-defined]
        await consumer.ack(got)  # type: ignore[arg-type]


async def test_a_stream_retry_stays_in_its_group(transport: RedisTransport) -> None:
    spec = MailboxSpec("stream", "events", lease=LEASE)
    other_group = MailboxSpec("stream", "events", group="audit", lease=LEASE)
    await transport.send(spec, [b"once"])
    async with transport.consumer(other_group, "auditor") as auditor:
        await auditor.ack(await auditor.fetch(5))
    async with transport.consumer(spec, "worker") as consumer:
        [delivery] = await consumer.fetch(5)
        await consumer.retry_later(delivery, 0.2)
        assert await transport.client.zcard("{events}:delayed:events") == 1
        [again] = await consumer.fetch(5)
        await consumer.ack([again])
    assert again.id == delivery.id
    async with transport.consumer(other_group, "auditor") as auditor:
        assert await fetch_within(auditor, 5, 0.2) == []
    assert await transport.client.xlen("events") == 1


# -- the connection -------------------------------------------------------------------


async def test_ping_names_the_server_without_its_password() -> None:
    async with RedisTransport.from_url(
        "redis://user:s3cret@127.0.0.1:1/0", connect_retries=0
    ) as transport:
        with pytest.raises(ConnectError) as caught:
            await transport.ping()
    assert "127.0.0.1:1" in str(caught.value)
    assert "s3cret" not in str(caught.value)


async def test_a_borrowed_client_stays_open_and_closing_wakes_blocked_fetches(
    redis_url: str,
) -> None:
    client: Redis = from_url(redis_url)
    transport = RedisTransport(client)
    spec = MailboxSpec("list", "jobs", lease=LEASE)
    async with transport.consumer(spec, "w1") as consumer, trio.open_nursery() as nursery:

        async def close_soon() -> None:
            await trio.sleep(0.1)
            await transport.aclose()

        nursery.start_soon(close_soon)
        with pytest.raises(ClosedError):
            await consumer.fetch(5)
    assert await client.ping()
    with pytest.raises(ClosedError):
        await transport.send(spec, [b"x"])
    await client.aclose()


@pytest.mark.parametrize("kind", ["list", "stream", "pubsub"])
async def test_fetch_fails_while_the_server_is_down_and_works_after_a_restart(
    private_redis: PrivateRedis, kind: str
) -> None:
    server = private_redis(appendonly=True)
    spec = MailboxSpec(kind, "jobs", lease=LEASE)  # type: ignore[arg-type]
    async with (
        RedisTransport.from_url(server.url, connect_retries=0) as transport,
        transport.consumer(spec, "w1") as consumer,
    ):
        held = []
        if kind != "pubsub":
            await transport.send(spec, [b"before"])
            held = list(await consumer.fetch(5))
            assert [d.payload for d in held] == [b"before"]
        server.kill()
        with pytest.raises(TransportError), trio.fail_after(5):
            await consumer.fetch(5)
        server.start()
        got = []
        with trio.fail_after(10):
            while not got:
                await transport.send(spec, [b"after"])
                try:
                    with trio.move_on_after(0.3):  # a resubscribe misses earlier news
                        got = list(await consumer.fetch(5))
                except TransportError:
                    await trio.sleep(0.05)
        assert {d.payload for d in got} == {b"after"}
        if kind == "list":  # the unacked message survived (append-only file)
            assert b"before" in await transport.client.lrange("{jobs}:processing:w1", 0, -1)
        elif kind == "stream":
            assert (await transport.client.xpending("jobs", "jobs"))["pending"] >= 2
        await consumer.ack(held + got)


# -- stats and nodes ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_mailbox_stats_count_waiting_pending_and_dead(
    transport: RedisTransport, kind: str
) -> None:
    spec = MailboxSpec(kind, "jobs", lease=LEASE)  # type: ignore[arg-type]
    assert (await transport.mailbox_stats(spec)).depth == 0
    await transport.send(spec, [b"a", b"b", b"c", b"d", b"e"])
    async with transport.consumer(spec, "w1") as consumer:
        a, b, c = await consumer.fetch(3)
        await consumer.dead_letter(a, Failure("poison"))
        await consumer.retry_later(b, 60)
        stats = await transport.mailbox_stats(spec)
        assert (stats.depth, stats.pending, stats.dead) == (2, 1, 1)
        await consumer.ack([c])


async def test_an_abandoned_consumer_leaves_its_names_messages_alone(
    transport: RedisTransport, redis_url: str
) -> None:
    # Two processes under one consumer name, and one of them lost the node name:
    # closing it must not hand back, or reset, what the other holds.
    spec = MailboxSpec("list", "twinned", lease=LEASE)
    await transport.send(spec, [b"a", b"b", b"c", b"d"])
    client = transport.client
    async with (
        RedisTransport.from_url(redis_url) as other,
        other.consumer(spec, "twin") as winner,
    ):
        async with transport.consumer(spec, "twin") as loser:
            assert [d.payload for d in await loser.fetch(2)] == [b"a", b"b"]
            held = await collect(winner, 2)
            assert [d.payload for d in held] == [b"c", b"d"]
            loser.abandon()
        assert await client.llen("twinned") == 0  # nothing of the winner's handed back
        assert await client.llen("{twinned}:processing:twin") == 4
        await winner.ack(held)
        # What the loser held stays with the name, for its next consumer.
        assert await client.lrange("{twinned}:processing:twin", 0, -1) == [b"a", b"b"]


async def test_a_claim_of_more_entries_than_lua_can_unpack_at_once(
    transport: RedisTransport,
) -> None:
    # Lua's unpack() stops near 8000 values: the claim goes in chunks.
    spec = MailboxSpec("stream", "many-claimed", lease=LEASE)
    count = 9000
    await transport.send(spec, [b"m%d" % index for index in range(count)])
    async with transport.consumer(spec, "dead") as dead:
        assert len(await collect(dead, count, max_count=count)) == count  # and it dies
    await trio.sleep(1.5 * LEASE)
    async with transport.consumer(spec, "heir") as heir:
        inherited = await heir.fetch(count)
        assert len(inherited) == count
        assert {delivery.attempt for delivery in inherited} == {2}
        await heir.ack(inherited)


# -- settling a batch ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_settle_sends_results_acks_and_releases_in_one_write_results_first(
    transport: RedisTransport, kind: str
) -> None:
    spec = MailboxSpec(kind, f"settle-order-{kind}", lease=LEASE)  # type: ignore[arg-type]
    target = MailboxSpec("list", f"settle-target-{kind}")
    await transport.send(spec, [b"job", b"unstarted"])
    async with transport.consumer(spec, "worker") as consumer:
        batch = await consumer.fetch(2)
        async with monitoring(transport) as monitor:
            settlement = Settlement({target: [b"result"]}, acks=batch[:1], releases=batch[1:])
            await consumer.settle(settlement)
            first, second, third = await monitor.lines(3, "RPUSH", "EVALSHA", "XACK")
        again = await consumer.fetch(1)
        assert [(d.payload, d.attempt) for d in again] == [(b"unstarted", 1)]
    assert '"RPUSH"' in first and "settle-target" in first
    assert ('"EVALSHA"' if kind == "list" else '"XACK"') in second
    assert '"EVALSHA"' in third  # the release
    # One write on one connection: the server saw them all from the same client address.
    assert client_of(first) == client_of(second) == client_of(third)


async def test_settle_acks_after_the_server_lost_its_scripts(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("list", "settle-noscript", lease=LEASE)
    target = MailboxSpec("list", "settle-noscript-target")
    await transport.send(spec, [b"job"])
    async with transport.consumer(spec, "worker") as consumer:
        batch = await consumer.fetch(1)
        await transport.client.execute_command("SCRIPT", "FLUSH")
        assert await consumer.settle(Settlement({target: [b"r"]}, acks=batch)) == {}
    processing = "{settle-noscript}:processing:worker"
    assert await transport.client.execute_command("LLEN", processing) == 0
    assert await transport.client.execute_command("LRANGE", target.name, 0, -1) == [b"r"]


# -- reply lists ----------------------------------------------------------------------------


async def test_a_list_with_expire_is_deleted_after_its_last_send(
    transport: RedisTransport,
) -> None:
    spec = MailboxSpec("list", "expiring", expire=0.3)
    await transport.send(spec, [b"a"])
    ttl = await transport.client.execute_command("PTTL", "expiring")
    assert 0 < ttl <= 300
    await trio.sleep(0.5)
    assert await transport.client.execute_command("EXISTS", "expiring") == 0


def test_expire_is_for_lists() -> None:
    from transports import ConfigurationError

    with pytest.raises(ConfigurationError, match="expire applies to list"):
        MailboxSpec("stream", "s", expire=1.0)
    with pytest.raises(ConfigurationError, match="positive"):
        MailboxSpec("list", "l", expire=0)


async def test_a_reply_to_a_vanished_asker_expires(redis_url: str) -> None:
    """The reply list of an asker that is gone is deleted by Redis, not kept forever."""
    from actors import ActorSystem
    from actors._codec import encode
    from actors._messenger import REPLY_EXPIRE

    system = ActorSystem(redis_url, reply_to_allowed=("list:user-replies",))

    @system.actor(list="answers")
    async def answer(n: int) -> int:
        return n + 1

    orphan = "actors.reply.gone-host-1.deadbeef"
    async with system:
        requests = [
            encode(41, correlation_id="c1", reply_to=f"list:{orphan}"),
            encode(1, correlation_id="c2", reply_to="list:user-replies"),
        ]
        await system.transport.send(MailboxSpec("list", "answers"), requests)
        client = system.redis
        with trio.fail_after(10):
            while await client.execute_command("EXISTS", orphan, "user-replies") != 2:
                await trio.sleep(0.01)
        ttl = await client.execute_command("PTTL", orphan)
        user_ttl = await client.execute_command("PTTL", "user-replies")
    assert 0 < ttl <= REPLY_EXPIRE * 1000
    assert user_ttl == -1  # a reply_to of the user's own never expires


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_a_keep_alive_that_dies_fails_its_consumer_loudly(
    transport: RedisTransport,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    # Issue 15: a keep-alive (list heartbeat, stream lease renewal) that died of an
    # unexpected error used to log and return, and the consumer went on without
    # renewing its lease: another consumer then took its messages while it worked.
    spec = MailboxSpec(kind, "renewed", lease=LEASE)  # type: ignore[arg-type]
    await transport.send(spec, [b"held"])
    module, name = (
        (_list_scripts, "list_heartbeat") if kind == "list" else (_stream_scripts, "stream_renew")
    )

    async def broken(*args: Any, **kwargs: Any) -> None:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("renewal bug")

    monkeypatch.setattr(module, name, broken)
    async with transport.consumer(spec, "w") as consumer:
        held = await consumer.fetch(1)
        await trio.sleep(LEASE / 3 * 2)
        with pytest.raises(ActorsError, match=r"keep-alive.*renewal bug") as caught:
            await consumer.ack(held)
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert not isinstance(caught.value, TransportError)  # no outage to wait out
        with pytest.raises(ActorsError, match="keep-alive"):
            await consumer.fetch(1)
    died = [r for r in caplog.records if r.levelname == "ERROR" and "keep-alive" in r.message]
    assert len(died) == 1  # logged once, however many calls fail


async def test_keep_alives_of_a_transport_used_without_async_with_end_when_it_closes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runtime opens its transport with open_transport() and closes it with
    # aclose(): the keep-alives then run in a nursery hosted by a system task, which
    # the close ends.
    renewals = 0
    renew = _stream_scripts.stream_renew

    async def counted(*args: Any, **kwargs: Any) -> None:
        nonlocal renewals
        renewals += 1
        await renew(*args, **kwargs)

    monkeypatch.setattr(_stream_scripts, "stream_renew", counted)
    transport = RedisTransport.from_url(redis_url)
    spec = MailboxSpec("stream", "renewed", lease=LEASE)
    await transport.send(spec, [b"held"])
    async with transport.consumer(spec, "w") as consumer:
        await consumer.fetch(1)
        await trio.sleep(LEASE)
        assert renewals >= 1
        await transport.aclose()
        seen = renewals
        await trio.sleep(LEASE)
        assert renewals == seen


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_a_settle_after_the_server_lost_its_scripts_acks(
    transport: RedisTransport, kind: str
) -> None:
    spec = MailboxSpec(kind, "jobs")  # type: ignore[arg-type]
    out = MailboxSpec("list", "out")
    await transport.send(spec, [b"a", b"b"])
    async with transport.consumer(spec, "w") as consumer:
        got = await consumer.fetch(2)
        await transport.client.execute_command("SCRIPT", "FLUSH")
        assert await consumer.settle(Settlement({out: [b"r"]}, acks=got)) == {}
        assert (await transport.mailbox_stats(spec)).pending == 0
    assert await transport.client.lrange("out", 0, -1) == [b"r"]
