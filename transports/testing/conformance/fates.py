"""What a handler can do with a message: count failures, dead-letter, replay, retry later."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from transports import FailedAttempt, Failure, Outcome, Transport, Verdict
from transports._exceptions import ConfigurationError, ReplayError

from ._support import MailboxFactory, collect, fetch_within, payloads, payloads_of

durable = pytest.mark.parametrize("kind", ["list", "stream"])

BOOM = Failure(
    "handler raised",
    actor="ledger",
    error_type="ValueError",
    error="bad amount",
    traceback="Traceback (most recent call last): ...",
)


@durable
async def test_recorded_failures_raise_the_next_attempt(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, [b"flaky"])
    for attempt in (1, 2, 3):
        async with transport.consumer(spec, "worker") as consumer:
            [delivery] = await consumer.fetch(5)
            assert delivery.attempt == attempt
            assert await consumer.record_failure(delivery) == attempt
    async with transport.consumer(spec, "worker") as consumer:
        [delivery] = await consumer.fetch(5)
        assert delivery.attempt == 4
        await consumer.ack([delivery])


@durable
async def test_fail_counts_the_attempt_and_delivers_again_later(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    """``fail`` counts the attempt and retries the message: it comes back after the
    delay, its attempt raised, behind what came meanwhile."""
    spec = mailbox(kind)
    await transport.send(spec, [b"flaky"])
    async with transport.consumer(spec, "worker") as consumer:
        for attempt in (1, 2):
            [delivery] = await fetch_within(consumer, 5, 5.0)
            assert (delivery.payload, delivery.attempt) == (b"flaky", attempt)
            retry = FailedAttempt(delivery, BOOM, 0.05, max_deliveries=5)
            assert await consumer.fail([retry]) == [Outcome(Verdict.RETRIED, attempt)]
            if attempt == 1:
                await transport.send(spec, [b"next"])
                [other] = await fetch_within(consumer, 5, 5.0)
                assert (other.payload, other.attempt) == (b"next", 1)
                await consumer.ack([other])
        [delivery] = await fetch_within(consumer, 5, 5.0)
        assert (delivery.payload, delivery.attempt) == (b"flaky", 3)
        await consumer.ack([delivery])


@durable
async def test_a_crash_without_a_recorded_failure_still_counts(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, [b"poison"])
    async with transport.consumer(spec, "worker") as consumer:
        assert [d.attempt for d in await consumer.fetch(5)] == [1]
    async with transport.consumer(spec, "worker") as consumer:
        [delivery] = await consumer.fetch(5)
        assert delivery.attempt == 2
        assert await consumer.record_failure(delivery) == 2


@durable
async def test_dead_letters_are_listed_and_replayed(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, [b"bad", b"good"])
    async with transport.consumer(spec, "worker") as consumer:
        bad, good = await collect(consumer, 2)
        assert await consumer.record_failure(bad) == 1
        await consumer.dead_letter(bad, BOOM)
        await consumer.ack([good])
    [letter] = await transport.dead_letters(spec)
    assert (letter.payload, letter.failure, letter.attempts) == (b"bad", BOOM, 1)
    assert isinstance(letter.dead_at, float)
    async with transport.consumer(spec, "worker") as consumer:
        assert await fetch_within(consumer, 5, lease / 5) == []  # dead-lettering acked it

    assert await transport.replay_dead_letters(spec) == 1
    assert await transport.dead_letters(spec) == []
    async with transport.consumer(spec, "worker") as consumer:
        [replayed] = await collect(consumer, 1)
        await consumer.ack([replayed])
    assert (replayed.payload, replayed.attempt) == (b"bad", 1)


@durable
async def test_dead_letters_are_listed_oldest_first_and_replayed_by_id(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, payloads(3))
    async with transport.consumer(spec, "worker") as consumer:
        for delivery in await collect(consumer, 3):
            await consumer.dead_letter(delivery, BOOM)
    letters = await transport.dead_letters(spec)
    assert payloads_of(letters) == payloads(3)
    assert payloads_of(await transport.dead_letters(spec, count=2)) == payloads(2)
    assert await transport.replay_dead_letters(spec, [letters[1].id]) == 1
    assert payloads_of(await transport.dead_letters(spec)) == [b"m0", b"m2"]
    # Ids not found (replayed already, or never there) are named; the others replayed.
    with pytest.raises(ReplayError, match="not found") as info:
        await transport.replay_dead_letters(spec, [letters[1].id, letters[2].id, "1-1"])
    assert (info.value.replayed, info.value.not_found) == (1, (letters[1].id, "1-1"))
    assert payloads_of(await transport.dead_letters(spec)) == [b"m0"]
    async with transport.consumer(spec, "worker") as consumer:
        assert payloads_of(await collect(consumer, 2)) == [b"m1", b"m2"]


@pytest.mark.parametrize("kind", ["list", "stream", "pubsub"])
async def test_dead_letters_are_deleted_by_id_or_all(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    async with transport.consumer(spec, "worker") as consumer:
        await transport.send(spec, payloads(3))
        for delivery in await collect(consumer, 3):
            await consumer.dead_letter(delivery, BOOM)
    letters = await transport.dead_letters(spec)
    with pytest.raises(ConfigurationError, match="not a dead letter id"):
        await transport.delete_dead_letters(spec, ["nope"])
    # Ids not found (deleted already, or never there) are skipped.
    assert await transport.delete_dead_letters(spec, [letters[1].id, "1-1"]) == 1
    assert await transport.delete_dead_letters(spec, [letters[1].id]) == 0
    assert payloads_of(await transport.dead_letters(spec)) == [b"m0", b"m2"]
    assert await transport.delete_dead_letters(spec) == 2
    assert await transport.dead_letters(spec) == []
    assert await transport.delete_dead_letters(spec) == 0
    assert (await transport.mailbox_stats(spec)).dead == 0


@pytest.mark.parametrize("kind", ["list", "stream", "pubsub"])
async def test_the_oldest_unacked_message_s_age_is_told_for_streams(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    assert await transport.oldest_age(spec) is None  # nothing there
    async with transport.consumer(spec, "worker") as consumer:
        await transport.send(spec, [b"first", b"second"])
        await trio.sleep(0.5)
        if kind != "stream":  # lists and channels keep no time of their messages
            assert await transport.oldest_age(spec) is None
            return
        waited = await transport.oldest_age(spec)
        assert waited is not None and 0.5 <= waited < 3600
        first, *_ = await consumer.fetch(1)
        pending = await transport.oldest_age(spec)  # fetched, not acked: still counts
        assert pending is not None and pending >= waited
        await consumer.ack([first])
        [second] = await collect(consumer, 1)
        assert second.payload == b"second"
        await consumer.ack([second])
        assert await transport.oldest_age(spec) is None


@durable
@pytest.mark.parametrize("failed", [True, False], ids=["failed", "not-failed"])
async def test_retry_later_redelivers_after_the_delay_and_not_before(
    transport: Transport,
    mailbox: MailboxFactory,
    clock: MockClock | None,
    lease: float,
    kind: Any,
    failed: bool,
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, [b"later"])
    async with transport.consumer(spec, "worker") as consumer:
        [delivery] = await consumer.fetch(5)
        if failed:
            await consumer.record_failure(delivery)
        await consumer.retry_later(delivery, lease)
        retried_at = trio.current_time()
        assert await fetch_within(consumer, 5, lease / 2) == []
        [again] = await consumer.fetch(5)
        assert trio.current_time() - retried_at >= lease * 0.9
        await consumer.ack([again])
        assert await fetch_within(consumer, 5, lease) == []
    assert (again.payload, again.attempt) == (b"later", 2 if failed else 1)


@durable
async def test_a_retry_outlives_the_consumer_that_asked_for_it(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, [b"later"])
    async with transport.consumer(spec, "worker") as consumer:
        [delivery] = await consumer.fetch(5)
        await consumer.retry_later(delivery, lease / 2)
    async with transport.consumer(spec, "other") as other:
        [again] = await other.fetch(5)
        await other.ack([again])
    assert again.payload == b"later"


@pytest.mark.parametrize("kind", ["list", "stream", "pubsub"])
async def test_a_mailbox_keeps_its_newest_dead_letters_up_to_dead_maxlen(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind, dead_maxlen=3)
    async with transport.consumer(spec, "worker") as consumer:
        await transport.send(spec, payloads(5))
        for delivery in await collect(consumer, 5):
            await consumer.dead_letter(delivery, BOOM)
    letters = await transport.dead_letters(spec)
    assert payloads_of(letters) == [b"m2", b"m3", b"m4"]  # the oldest went first
    stats = await transport.mailbox_stats(spec)
    assert stats.dead == 3


@pytest.mark.parametrize("kind", ["list", "stream", "pubsub"])
async def test_dead_letter_returns_the_id_replay_takes(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    async with transport.consumer(spec, "worker") as consumer:
        await transport.send(spec, [b"bad"])
        [delivery] = await collect(consumer, 1)
        dead_id = await consumer.dead_letter(delivery, BOOM)
        [letter] = await transport.dead_letters(spec)
        assert dead_id == letter.id
        assert await transport.replay_dead_letters(spec, [dead_id]) == 1
        assert payloads_of(await collect(consumer, 1)) == [b"bad"]


@durable
async def test_fail_decides_each_of_a_batch_in_order(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    """One call for a batch's failures: each counted, then retried after its own
    delay, kept held, or dead-lettered at its max deliveries."""
    spec = mailbox(kind)
    await transport.send(spec, payloads(5))
    async with transport.consumer(spec, "worker") as consumer:
        batch = await collect(consumer, 5)
        assert await consumer.fail([]) == []
        other = Failure("rejected: no", actor="ledger")
        outcomes = await consumer.fail(
            [
                FailedAttempt(batch[0], BOOM, 0.0, max_deliveries=3),
                FailedAttempt(batch[2], BOOM, 0.05, max_deliveries=3),
                FailedAttempt(batch[1], BOOM, None, max_deliveries=3),
                FailedAttempt(batch[4], other, 0.0, max_deliveries=1),
            ]
        )
        assert [(o.verdict, o.attempts) for o in outcomes] == [
            (Verdict.RETRIED, 1),
            (Verdict.RETRIED, 1),
            (Verdict.HELD, 1),
            (Verdict.DEAD, 1),
        ]
        assert [o.dead_letter_id is None for o in outcomes] == [True, True, True, False]
        await consumer.ack([batch[1], batch[3]])
        again = await collect(consumer, 2)
        assert sorted((d.payload, d.attempt) for d in again) == [(b"m0", 2), (b"m2", 2)]
        last = FailedAttempt(again[0], BOOM, 0.0, max_deliveries=2)
        [outcome] = await consumer.fail([last])  # its last attempt
        assert outcome.verdict is Verdict.DEAD and outcome.attempts == 2
        await consumer.ack([again[1]])
    letters = await transport.dead_letters(spec)
    assert [letter.id for letter in letters] == [outcomes[3].dead_letter_id, outcome.dead_letter_id]
    assert [(letter.payload, letter.attempts) for letter in letters] == [
        (b"m4", 1),
        (again[0].payload, 2),
    ]
    assert letters[0].failure == other
    async with transport.consumer(spec, "worker") as consumer:
        assert await fetch_within(consumer, 5, 0.2) == []


@durable
async def test_dead_letter_many_buries_each_of_a_batch_with_its_failure(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, payloads(3))
    async with transport.consumer(spec, "worker") as consumer:
        batch = await collect(consumer, 3)
        assert await consumer.dead_letter_many([]) == []
        other = Failure("rejected: no", actor="ledger")
        dead_ids = await consumer.dead_letter_many([(batch[2], BOOM), (batch[0], other)])
        await consumer.ack([batch[1]])
    letters = await transport.dead_letters(spec)
    assert [letter.id for letter in letters] == dead_ids
    assert payloads_of(letters) == [b"m2", b"m0"]
    assert [letter.failure.reason for letter in letters] == [BOOM.reason, other.reason]
    assert letters[0].failure.traceback == BOOM.traceback
    assert [letter.attempts for letter in letters] == [1, 1]
    async with transport.consumer(spec, "worker") as consumer:
        assert await fetch_within(consumer, 5, 0.2) == []
