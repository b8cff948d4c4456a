"""Sending and fetching: order, batches, blocking, at-least-once, ack, splitting work."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
from trio.testing import MockClock

from transports import Delivery, Settlement, Transport

from ._support import MailboxFactory, collect, fetch_within, payloads, payloads_of

durable = pytest.mark.parametrize("kind", ["list", "stream"])

queues = pytest.mark.parametrize(
    ("kind", "options"),
    [("list", {}), ("list", {"at_most_once": True}), ("stream", {})],
    ids=["list", "list-at-most-once", "stream"],
)


@queues
async def test_fetch_returns_what_was_sent_in_order(
    transport: Transport, mailbox: MailboxFactory, kind: Any, options: dict[str, Any]
) -> None:
    spec = mailbox(kind, **options)
    sent = payloads(10)
    await transport.send(spec, sent[:4])
    await transport.send(spec, sent[4:])
    async with transport.consumer(spec, "worker") as consumer:
        got = await collect(consumer, 10)
    assert payloads_of(got) == sent
    assert [delivery.attempt for delivery in got] == [1] * 10
    assert len({delivery.id for delivery in got}) == 10


@queues
async def test_fetch_returns_between_one_and_max_count(
    transport: Transport, mailbox: MailboxFactory, kind: Any, options: dict[str, Any]
) -> None:
    spec = mailbox(kind, **options)
    sent = payloads(7)
    await transport.send(spec, sent)
    got: list[Delivery] = []
    async with transport.consumer(spec, "worker") as consumer:
        while len(got) < 7:
            batch = await consumer.fetch(3)
            assert 1 <= len(batch) <= 3
            got.extend(batch)
            await consumer.ack(batch)
    assert payloads_of(got) == sent


@pytest.mark.parametrize("kind", ["list", "stream", "pubsub"])
async def test_fetch_waits_for_a_send(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    got: list[Delivery] = []
    async with transport.consumer(spec, "worker") as consumer:

        async def fetch() -> None:
            got.extend(await consumer.fetch(5))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch)
            await trio.sleep(lease / 5)
            assert got == []
            await transport.send(spec, [b"late"])
    assert payloads_of(got) == [b"late"]


@pytest.mark.parametrize("kind", ["list", "stream", "pubsub"])
async def test_a_waiting_fetch_woken_by_several_messages_loses_none(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    """A fetch blocked on an empty mailbox, woken by a send of many, returns them in order."""
    spec = mailbox(kind)
    got: list[Delivery] = []
    async with transport.consumer(spec, "worker") as consumer:

        async def fetch() -> None:
            got.extend(await consumer.fetch(10))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch)
            await trio.sleep(lease / 5)
            await transport.send(spec, payloads(3))
        got.extend(await collect(consumer, 3 - len(got)) if len(got) < 3 else [])
        await consumer.ack(got)
    assert payloads_of(got) == payloads(3)


@pytest.mark.parametrize("kind", ["list", "stream", "pubsub"])
async def test_a_cancelled_fetch_loses_nothing(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    async with transport.consumer(spec, "worker") as consumer:
        assert await fetch_within(consumer, 5, lease / 5) == []
        await transport.send(spec, [b"after"])
        assert payloads_of(await consumer.fetch(5)) == [b"after"]


@durable
async def test_unacked_messages_come_back_first_to_the_same_name(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, payloads(3))
    async with transport.consumer(spec, "worker") as consumer:
        first = await collect(consumer, 2)
    await transport.send(spec, [b"m3"])
    async with transport.consumer(spec, "worker") as consumer:
        again = await collect(consumer, 4)
        await consumer.ack(again)
    assert payloads_of(first) == [b"m0", b"m1"]
    assert [(d.payload, d.attempt) for d in again] == [
        (b"m0", 2),
        (b"m1", 2),
        (b"m2", 1),
        (b"m3", 1),
    ]
    assert [d.id for d in again[:2]] == [d.id for d in first]


@durable
async def test_an_acked_message_is_gone_for_good(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, [b"done"])
    async with transport.consumer(spec, "worker") as consumer:
        await consumer.ack(await consumer.fetch(1))
    async with transport.consumer(spec, "worker") as consumer:
        assert await fetch_within(consumer, 5, lease / 5) == []
    await trio.sleep(2 * lease)
    async with transport.consumer(spec, "other") as consumer:
        assert await fetch_within(consumer, 5, lease / 5) == []


@durable
@pytest.mark.parametrize("acked", ["all", "some"])
async def test_fetch_acks_what_it_is_given_first(
    transport: Transport, mailbox: MailboxFactory, kind: Any, acked: str
) -> None:
    """``fetch(ack=...)`` acks as ``ack`` does: the acked never come back, the rest do."""
    spec = mailbox(kind)
    await transport.send(spec, payloads(4))
    async with transport.consumer(spec, "worker") as consumer:
        first = await collect(consumer, 3, max_count=3)
        done = first if acked == "all" else first[1:]
        assert payloads_of(await consumer.fetch(5, ack=done)) == [b"m3"]
    async with transport.consumer(spec, "worker") as consumer:
        again = await collect(consumer, 1 if acked == "all" else 2)
        await consumer.ack(again)
        stats = await transport.mailbox_stats(spec)
    kept = [b"m3"] if acked == "all" else [b"m0", b"m3"]
    assert payloads_of(again) == kept
    assert (stats.depth, stats.pending) == (0, 0)


@queues
@pytest.mark.parametrize("how", ["ack", "fetch"])
async def test_acking_again_is_harmless(
    transport: Transport, mailbox: MailboxFactory, kind: Any, options: dict[str, Any], how: str
) -> None:
    """What was acked already is skipped: acking it again must not ack an equal message
    held since (a list knows messages by payload: here, the same bytes)."""
    spec = mailbox(kind, **options)
    await transport.send(spec, [b"same", b"other"])
    async with transport.consumer(spec, "worker") as consumer:
        first = await consumer.fetch(1)
        assert payloads_of(await consumer.fetch(1, ack=first)) == [b"other"]
        await transport.send(spec, [b"same", b"last"])
        assert payloads_of(await consumer.fetch(1)) == [b"same"]
        if how == "ack":
            await consumer.ack(first)  # the same acks again
        else:
            assert payloads_of(await consumer.fetch(1, ack=first)) == [b"last"]
    back: list[Delivery] = []
    async with transport.consumer(spec, "worker") as consumer:
        while batch := await fetch_within(consumer, 5, 0.5):
            back += batch
    # Everything but ``first`` comes back (with at-most-once, only what was not fetched).
    expected = [b"last", b"other", b"same"]
    if spec.at_most_once:
        expected = [] if how == "fetch" else [b"last"]
    assert sorted(payloads_of(back)) == expected


async def test_an_at_most_once_list_forgets_what_it_delivered(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float
) -> None:
    spec = mailbox("list", at_most_once=True)
    await transport.send(spec, [b"a", b"b"])
    async with transport.consumer(spec, "worker") as consumer:
        assert payloads_of(await consumer.fetch(1)) == [b"a"]
    async with transport.consumer(spec, "worker") as consumer:
        assert payloads_of(await collect(consumer, 1)) == [b"b"]
        assert await fetch_within(consumer, 5, lease / 5) == []
    await trio.sleep(2 * lease)
    async with transport.consumer(spec, "other") as consumer:
        assert await fetch_within(consumer, 5, lease / 5) == []


@durable
async def test_two_consumers_split_the_messages(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    sent = payloads(30)
    await transport.send(spec, sent)
    seen: dict[str, list[bytes]] = {"a": [], "b": []}
    async with transport.consumer(spec, "a") as a, transport.consumer(spec, "b") as b:
        while len(seen["a"]) + len(seen["b"]) < 30:
            for name, consumer in (("a", a), ("b", b)):
                batch = await fetch_within(consumer, 4, lease / 5)
                seen[name].extend(payloads_of(batch))
                await consumer.ack(batch)
    assert seen["a"]
    assert seen["b"]
    assert sorted(seen["a"] + seen["b"]) == sorted(sent)


@durable
async def test_concurrent_consumers_get_each_message_once(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    sent = payloads(50)
    got: list[bytes] = []

    async def work(name: str, cancel_scope: trio.CancelScope) -> None:
        async with transport.consumer(spec, name) as consumer:
            while True:
                batch = await consumer.fetch(3)
                got.extend(payloads_of(batch))
                await consumer.ack(batch)
                if len(got) >= len(sent):
                    cancel_scope.cancel()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for name in ("a", "b", "c"):
                nursery.start_soon(work, name, nursery.cancel_scope)
            for index in range(0, 50, 10):
                await transport.send(spec, sent[index : index + 10])
    assert sorted(got) == sorted(sent)


async def test_a_stream_group_reads_entries_sent_before_it_existed(
    transport: Transport, mailbox: MailboxFactory
) -> None:
    spec = mailbox("stream", group="late-group")
    await transport.send(spec, [b"early"])
    async with transport.consumer(spec, "worker") as consumer:
        assert payloads_of(await collect(consumer, 1)) == [b"early"]


async def test_each_stream_group_gets_every_entry(
    transport: Transport, mailbox: MailboxFactory
) -> None:
    billing = mailbox("stream", group="billing")
    audit = attrs.evolve(billing, group="audit")
    await transport.send(billing, payloads(3))
    for spec in (billing, audit):
        async with transport.consumer(spec, "worker") as consumer:
            got = await collect(consumer, 3)
            await consumer.ack(got)
        assert payloads_of(got) == payloads(3)


async def test_a_stream_keeps_about_maxlen_newest_entries(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float
) -> None:
    spec = mailbox("stream", maxlen=10)
    sent = payloads(250)
    await transport.send(spec, sent)
    got: list[Delivery] = []
    async with transport.consumer(spec, "worker") as consumer:
        while batch := await fetch_within(consumer, 100, lease / 5):
            got.extend(batch)
    kept = payloads_of(got)
    assert 10 <= len(kept) < 250  # MAXLEN ~ may keep more than 10, never fewer
    assert kept == sent[-len(kept) :]


@durable
async def test_release_hands_back_unstarted_messages_uncounted(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    """Released deliveries come back at once, in order, to any consumer, as first attempts."""
    spec = mailbox(kind)
    await transport.send(spec, payloads(3))
    async with transport.consumer(spec, "first") as first:
        batch = await collect(first, 3)
        await first.settle(Settlement(acks=batch[:1], releases=batch[1:]))
        async with transport.consumer(spec, "second") as second:
            again = await collect(second, 2)
            await second.ack(again)
    assert [(d.payload, d.attempt) for d in again] == [(b"m1", 1), (b"m2", 1)]
