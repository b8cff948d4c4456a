"""Pub/sub: broadcast to every open subscriber, patterns, and nothing it does not promise.

Pub/sub is at-most-once: no test here expects durability, redelivery or acks;
instead they check that those are absent (a late subscriber misses earlier
messages, an unacked message is not redelivered, a retry is dropped).
"""

from __future__ import annotations

import attrs
import pytest
import trio
from trio.testing import MockClock

from transports import FailedAttempt, Failure, MailboxSpec, Outcome, Transport, Verdict
from transports._exceptions import ReplayError

from ._support import MailboxFactory, collect, fetch_within, fresh_name, payloads_of


async def test_every_subscriber_gets_every_message(
    transport: Transport, mailbox: MailboxFactory
) -> None:
    spec = mailbox("pubsub")
    async with transport.consumer(spec, "a") as a, transport.consumer(spec, "b") as b:
        await transport.send(spec, [b"x", b"y"])
        for subscriber in (a, b):
            got = await collect(subscriber, 2)
            assert payloads_of(got) == [b"x", b"y"]
            assert {d.channel for d in got} == {spec.name}
            assert {d.attempt for d in got} == {1}


async def test_a_message_nobody_listens_to_is_dropped(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float
) -> None:
    spec = mailbox("pubsub")
    await transport.send(spec, [b"unheard"])
    async with transport.consumer(spec, "late") as late:
        assert await fetch_within(late, 5, lease / 5) == []
        await transport.send(spec, [b"heard"])
        assert payloads_of(await late.fetch(5)) == [b"heard"]


async def test_a_closed_subscriber_gets_nothing(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float
) -> None:
    spec = mailbox("pubsub")
    async with transport.consumer(spec, "stays") as stays:
        async with transport.consumer(spec, "leaves"):
            pass
        await transport.send(spec, [b"while-away"])
        assert payloads_of(await stays.fetch(5)) == [b"while-away"]
        async with transport.consumer(spec, "leaves") as back:
            assert await fetch_within(back, 5, lease / 5) == []


async def test_a_pattern_subscriber_gets_every_matching_channel(
    transport: Transport, clock: MockClock | None, lease: float
) -> None:
    prefix = fresh_name("conformance-news")
    pattern = MailboxSpec("pubsub", f"{prefix}.*", pattern=True, lease=lease)
    sport = MailboxSpec("pubsub", f"{prefix}.sport", lease=lease)
    weather = attrs.evolve(sport, name=f"{prefix}.weather")
    elsewhere = attrs.evolve(sport, name=f"{prefix}-other")
    async with transport.consumer(pattern, "reader") as reader:
        await transport.send(sport, [b"goal"])
        await transport.send(elsewhere, [b"unrelated"])
        await transport.send(weather, [b"rain"])
        got = await collect(reader, 2)
        assert await fetch_within(reader, 5, lease / 5) == []
    assert [(d.payload, d.channel) for d in got] == [
        (b"goal", sport.name),
        (b"rain", weather.name),
    ]


async def test_nothing_is_redelivered(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float
) -> None:
    spec = mailbox("pubsub")
    async with transport.consumer(spec, "worker") as consumer:
        await transport.send(spec, [b"once", b"twice"])
        once, twice = await collect(consumer, 2)
        retry = FailedAttempt(once, Failure("boom"), lease / 5, max_deliveries=3)
        assert await consumer.fail([retry]) == [Outcome(Verdict.DROPPED, 1)]
        await consumer.ack([twice])
        await trio.sleep(lease)
        assert await fetch_within(consumer, 5, lease / 5) == []
    async with transport.consumer(spec, "worker") as consumer:
        assert await fetch_within(consumer, 5, lease / 5) == []


async def test_a_dead_letter_is_still_recorded(
    transport: Transport, mailbox: MailboxFactory
) -> None:
    spec = mailbox("pubsub")
    failure = Failure("undecodable", actor="listener", error_type="CodecError")
    async with transport.consumer(spec, "worker") as consumer:
        await transport.send(spec, [b"{not json"])
        [delivery] = await consumer.fetch(5)
        [outcome] = await consumer.fail([FailedAttempt(delivery, failure, max_deliveries=1)])
        assert outcome.verdict is Verdict.DEAD
    [letter] = await transport.dead_letters(spec)
    assert (letter.payload, letter.failure, letter.attempts) == (b"{not json", failure, 1)
    async with transport.consumer(spec, "worker") as consumer:
        assert await transport.replay_dead_letters(spec) == 1
        assert payloads_of(await consumer.fetch(5)) == [b"{not json"]
    assert await transport.dead_letters(spec) == []


async def test_replay_keeps_the_letters_no_subscriber_received(
    transport: Transport, mailbox: MailboxFactory
) -> None:
    spec = mailbox("pubsub")
    async with transport.consumer(spec, "worker") as consumer:
        await transport.send(spec, [b"a", b"b"])
        for delivery in await collect(consumer, 2):
            await consumer.fail([FailedAttempt(delivery, Failure("poison"), max_deliveries=1)])
    letters = await transport.dead_letters(spec)
    with pytest.raises(ReplayError, match="no subscriber") as info:
        await transport.replay_dead_letters(spec)
    assert (info.value.replayed, info.value.not_found) == (0, ())
    assert info.value.kept == tuple(letter.id for letter in letters)
    assert await transport.dead_letters(spec) == letters  # nothing lost
    with pytest.raises(ReplayError):
        await transport.replay_dead_letters(spec, [letters[0].id])
    assert await transport.dead_letters(spec) == letters
