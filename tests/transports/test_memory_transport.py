"""What only the memory transport does, or does exactly where Redis is approximate.

The promises every transport keeps are tested in ``tests/conformance``.
"""

from __future__ import annotations

import re

import pytest
import trio
from trio.testing import MockClock

from transports import (
    ClosedError,
    CommandError,
    ConfigurationError,
    Failure,
    MailboxSpec,
    ReplayError,
)
from transports.memory import (
    ConsumerState,
    MemoryConsumer,
    MemoryStore,
    MemoryTransport,
    TransportState,
)

LEASE = 10.0
JOBS = MailboxSpec("list", "jobs", lease=LEASE)
LEDGER = MailboxSpec("stream", "ledger", lease=LEASE)


async def test_transports_on_one_store_share_mailboxes() -> None:
    store = MemoryStore()
    async with MemoryTransport(store) as producer, MemoryTransport(store) as worker:
        assert producer.store is worker.store is store
        await producer.send(JOBS, [b"job"])
        async with worker.consumer(JOBS, "worker") as consumer:
            [delivery] = await consumer.fetch(5)
            await consumer.ack([delivery])
    assert delivery.payload == b"job"


async def test_separate_transports_have_separate_mailboxes(autojump_clock: MockClock) -> None:
    async with MemoryTransport() as one, MemoryTransport() as other:
        await one.send(JOBS, [b"job"])
        async with other.consumer(JOBS, "worker") as consumer:
            with trio.move_on_after(1):
                await consumer.fetch(5)
                pytest.fail("a message crossed between stores")


@pytest.mark.parametrize("spec", [JOBS, LEDGER], ids=["list", "stream"])
async def test_a_closed_transports_messages_go_to_another_after_the_lease(
    autojump_clock: MockClock, spec: MailboxSpec
) -> None:
    store = MemoryStore()
    crashed, survivor = MemoryTransport(store), MemoryTransport(store)
    await survivor.send(spec, [b"job"])
    async with crashed.consumer(spec, "worker-1") as consumer:
        await consumer.fetch(5)
        await crashed.aclose()  # the process dies while handling the job
        assert state_of(consumer) is ConsumerState.CLOSED
    closed_at = trio.current_time()
    async with survivor.consumer(spec, "worker-2") as consumer:
        [delivery] = await consumer.fetch(5)  # blocks, and wakes when the lease runs out
    assert trio.current_time() == closed_at + LEASE
    assert (delivery.payload, delivery.attempt) == (b"job", 2)
    await survivor.aclose()


@pytest.mark.parametrize("spec", [JOBS, LEDGER], ids=["list", "stream"])
async def test_a_blocked_fetch_wakes_when_a_retry_falls_due(
    autojump_clock: MockClock, spec: MailboxSpec
) -> None:
    async with MemoryTransport() as transport:
        await transport.send(spec, [b"job"])
        async with transport.consumer(spec, "worker") as consumer:
            [delivery] = await consumer.fetch(5)
            await consumer.retry_later(delivery, 3.5)
            start = trio.current_time()
            [again] = await consumer.fetch(5)
            assert trio.current_time() == start + 3.5
    assert again.payload == b"job"


async def test_stream_ids_follow_the_clock_and_increase(autojump_clock: MockClock) -> None:
    async with MemoryTransport() as transport:
        await trio.sleep(2.5)
        await transport.send(LEDGER, [b"a", b"b"])
        await trio.sleep(0.001)
        await transport.send(LEDGER, [b"c"])
        async with transport.consumer(LEDGER, "worker") as consumer:
            ids = [delivery.id for delivery in await consumer.fetch(5)]
    assert ids == ["2500-0", "2500-1", "2501-0"]


async def test_the_first_entry_id_is_never_0_0() -> None:
    async with MemoryTransport() as transport:
        await transport.send(LEDGER, [b"a"])
        async with transport.consumer(LEDGER, "worker") as consumer:
            [delivery] = await consumer.fetch(5)
    assert re.fullmatch(r"\d+-\d+", delivery.id)
    assert delivery.id != "0-0"


async def test_maxlen_trims_exactly() -> None:
    spec = MailboxSpec("stream", "capped", maxlen=3)
    async with MemoryTransport() as transport:
        await transport.send(spec, [b"%d" % i for i in range(10)])
        async with transport.consumer(spec, "worker") as consumer:
            got = await consumer.fetch(100)
    assert [delivery.payload for delivery in got] == [b"7", b"8", b"9"]


async def test_a_pending_entry_trimmed_away_is_not_redelivered(autojump_clock: MockClock) -> None:
    spec = MailboxSpec("stream", "capped", maxlen=2)
    async with MemoryTransport() as transport:
        await transport.send(spec, [b"old"])
        async with transport.consumer(spec, "worker") as consumer:
            await consumer.fetch(5)  # then crash
        await transport.send(spec, [b"new-1", b"new-2"])
        async with transport.consumer(spec, "worker") as consumer:
            got = await consumer.fetch(5)
    assert [delivery.payload for delivery in got] == [b"new-1", b"new-2"]


async def test_a_retry_in_one_group_stays_in_that_group(autojump_clock: MockClock) -> None:
    audit = MailboxSpec("stream", "ledger", group="audit")
    async with MemoryTransport() as transport:
        await transport.send(LEDGER, [b"entry"])
        async with transport.consumer(LEDGER, "worker") as consumer:
            [delivery] = await consumer.fetch(5)
            await consumer.retry_later(delivery, 1)
            assert [d.payload for d in await consumer.fetch(5)] == [b"entry"]
        async with transport.consumer(audit, "auditor") as auditor:
            assert [d.payload for d in await auditor.fetch(5)] == [b"entry"]
            with trio.move_on_after(5):
                await auditor.fetch(5)
                pytest.fail("the retry reached another group")


async def test_equal_list_payloads_share_a_failure_count() -> None:
    async with MemoryTransport() as transport:
        await transport.send(JOBS, [b"same", b"same"])
        async with transport.consumer(JOBS, "worker") as consumer:
            first, second = await consumer.fetch(2)
            assert first.id == second.id
            assert await consumer.record_failure(first) == 1
            await consumer.retry_later(first, 0)
            await consumer.ack([second])  # acking clears the shared count
            [again] = await consumer.fetch(5)
    assert again.attempt == 1


async def test_record_failure_is_idempotent_for_one_delivery() -> None:
    async with MemoryTransport() as transport:
        await transport.send(LEDGER, [b"x"])
        async with transport.consumer(LEDGER, "worker") as consumer:
            [delivery] = await consumer.fetch(5)
            assert await consumer.record_failure(delivery) == 1
            assert await consumer.record_failure(delivery) == 1


async def test_two_open_consumers_cannot_share_a_name() -> None:
    async with MemoryTransport() as transport:
        async with transport.consumer(JOBS, "worker"):
            with pytest.raises(ConfigurationError, match="already open"):
                async with transport.consumer(JOBS, "worker"):
                    pass  # pragma: no cover
        async with transport.consumer(JOBS, "worker"):
            pass  # free again once the first one closed
        with pytest.raises(ConfigurationError):
            transport.consumer(JOBS, "")


async def test_a_list_and_a_stream_cannot_share_a_name() -> None:
    async with MemoryTransport() as transport:
        await transport.send(MailboxSpec("list", "both"), [b"x"])
        with pytest.raises(CommandError) as caught:
            await transport.send(MailboxSpec("stream", "both"), [b"x"])
    assert caught.value.code == "WRONGTYPE"


async def test_publishing_to_a_pattern_is_refused() -> None:
    pattern = MailboxSpec("pubsub", "news.*", pattern=True)
    async with MemoryTransport() as transport:
        with pytest.raises(ConfigurationError):
            await transport.send(pattern, [b"x"])
        with pytest.raises(ConfigurationError):
            await transport.replay_dead_letters(pattern)


async def test_a_subscriber_that_closes_drops_what_it_did_not_fetch() -> None:
    news = MailboxSpec("pubsub", "news")
    async with MemoryTransport() as transport:
        async with transport.consumer(news, "reader") as reader:
            await transport.send(news, [b"a", b"b", b"c"])
            assert [d.payload for d in await reader.fetch(1)] == [b"a"]
        assert len(transport.store._subscribers) == 0


async def test_bad_arguments_are_refused() -> None:
    async with MemoryTransport() as transport:
        await transport.send(LEDGER, [b"x"])
        with pytest.raises(ConfigurationError):
            await transport.dead_letters(LEDGER, count=-1)
        async with transport.consumer(LEDGER, "worker") as consumer:
            [delivery] = await consumer.fetch(5)
            with pytest.raises(ConfigurationError):
                await consumer.retry_later(delivery, -1)
            with pytest.raises(ConfigurationError):
                await consumer.ack([type(delivery)("not-an-id", b"x")])
            await consumer.ack([delivery])


async def test_replaying_unknown_ids_replays_nothing_and_names_them() -> None:
    async with MemoryTransport() as transport:
        await transport.send(JOBS, [b"x"])
        async with transport.consumer(JOBS, "worker") as consumer:
            [delivery] = await consumer.fetch(5)
            await consumer.dead_letter(delivery, Failure("poison"))
        with pytest.raises(ReplayError, match="not found: 99-0"):
            await transport.replay_dead_letters(JOBS, ["99-0"])
        assert len(await transport.dead_letters(JOBS)) == 1


def state_of(thing: MemoryTransport | MemoryConsumer) -> TransportState | ConsumerState:
    """The state, unnarrowed by mypy (it changes behind its back)."""
    return thing.state


async def test_the_transport_is_an_async_context_manager() -> None:
    async with MemoryTransport() as transport:
        assert state_of(transport) is TransportState.OPEN
        await transport.ping()
        async with transport.consumer(JOBS, "worker") as consumer:
            assert state_of(consumer) is ConsumerState.OPEN
    assert state_of(transport) is TransportState.CLOSED
    assert state_of(consumer) is ConsumerState.CLOSED
    with pytest.raises(ClosedError):
        await transport.ping()
    with pytest.raises(ClosedError):
        await transport.dead_letters(JOBS)
    with pytest.raises(ClosedError):
        await consumer.ack([])


async def test_closing_one_transport_leaves_the_others_working() -> None:
    store = MemoryStore()
    async with MemoryTransport(store) as staying:
        async with MemoryTransport(store) as leaving:
            await leaving.send(JOBS, [b"job"])
        async with staying.consumer(JOBS, "worker") as consumer:
            assert [d.payload for d in await consumer.fetch(5)] == [b"job"]
