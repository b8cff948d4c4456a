"""Settling a handled batch: its results are stored, then its messages are acked, then
the messages it never started are handed back."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from transports import (
    ClosedError,
    CommandError,
    ConfigurationError,
    MailboxSpec,
    Settlement,
    Transport,
)

from ._support import MailboxFactory, collect, fetch_within, payloads, payloads_of

durable = pytest.mark.parametrize("kind", ["list", "stream"])


@durable
async def test_settle_stores_the_results_in_order_then_acks(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    to_list, to_stream = mailbox("list"), mailbox("stream")
    await transport.send(spec, payloads(3))
    async with transport.consumer(spec, "worker") as consumer:
        batch = await collect(consumer, 3)
        refused = await consumer.settle(
            Settlement({to_list: [b"r1", b"r2"], to_stream: [b"s1"]}, acks=batch)
        )
        assert refused == {}
        assert await fetch_within(consumer, 5, lease / 5) == []
    async with transport.consumer(to_list, "reader") as reader:
        assert payloads_of(await collect(reader, 2)) == [b"r1", b"r2"]
    async with transport.consumer(to_stream, "reader") as reader:
        assert payloads_of(await collect(reader, 1)) == [b"s1"]
    await trio.sleep(2 * lease)  # nothing comes back to anyone after the lease either
    async with transport.consumer(spec, "other") as consumer:
        assert await fetch_within(consumer, 5, lease / 5) == []


@durable
async def test_settle_with_only_acks_or_only_results(
    transport: Transport, mailbox: MailboxFactory, lease: float, kind: Any
) -> None:
    spec, target = mailbox(kind), mailbox("list")
    await transport.send(spec, payloads(2))
    async with transport.consumer(spec, "worker") as consumer:
        first = await collect(consumer, 1)
        assert await consumer.settle(Settlement(acks=first)) == {}
        assert await consumer.settle(Settlement({target: [b"alone"]})) == {}
        second = await collect(consumer, 1)
        assert payloads_of(second) == [b"m1"]
        await consumer.settle(Settlement(acks=second))
    async with transport.consumer(spec, "worker") as consumer:
        assert await fetch_within(consumer, 5, lease / 5) == []
    async with transport.consumer(target, "reader") as reader:
        assert payloads_of(await collect(reader, 1)) == [b"alone"]


@durable
async def test_a_refused_target_is_reported_and_the_rest_goes_on(
    transport: Transport, mailbox: MailboxFactory, lease: float, kind: Any
) -> None:
    spec, good = mailbox(kind), mailbox("list")
    taken = mailbox("list")
    await transport.send(taken, [b"a list already"])
    wrong_type = MailboxSpec("stream", taken.name)  # WRONGTYPE: the key holds a list
    pattern = MailboxSpec("pubsub", "events.*", pattern=True)  # cannot be published to
    await transport.send(spec, [b"job"])
    async with transport.consumer(spec, "worker") as consumer:
        batch = await collect(consumer, 1)
        results: dict[MailboxSpec, list[bytes]] = {
            wrong_type: [b"lost"],
            pattern: [b"lost too"],
            good: [b"kept"],
        }
        refused = await consumer.settle(Settlement(results, acks=batch))
    assert set(refused) == {wrong_type, pattern}
    wrong_type_error = refused[wrong_type]
    assert isinstance(wrong_type_error, CommandError)
    assert wrong_type_error.code == "WRONGTYPE"
    assert isinstance(refused[pattern], ConfigurationError)
    async with transport.consumer(good, "reader") as reader:
        assert payloads_of(await collect(reader, 1)) == [b"kept"]
    async with transport.consumer(spec, "worker") as consumer:  # acked all the same
        assert await fetch_within(consumer, 5, lease / 5) == []


async def test_settle_on_a_closed_consumer_is_refused(
    transport: Transport, mailbox: MailboxFactory
) -> None:
    spec = mailbox("list")
    await transport.send(spec, [b"job"])
    async with transport.consumer(spec, "worker") as consumer:
        batch = await collect(consumer, 1)
    with pytest.raises(ClosedError):
        await consumer.settle(Settlement({mailbox("list"): [b"r"]}, acks=batch))


@durable
async def test_settle_releases_the_unstarted_rest_first_and_in_order(
    transport: Transport, mailbox: MailboxFactory, lease: float, kind: Any
) -> None:
    """One settle stores the results, acks the handled head of a batch and hands back
    its unstarted rest: another consumer gets the rest at once, in order, uncounted,
    before what was sent since."""
    spec, target = mailbox(kind), mailbox("list")
    await transport.send(spec, payloads(12))
    async with transport.consumer(spec, "first") as first:
        batch = await collect(first, 12)
        settlement = Settlement({target: [b"r"]}, acks=batch[:2], releases=batch[2:])
        assert await first.settle(settlement) == {}
        await transport.send(spec, [b"later"])
        async with transport.consumer(spec, "second") as second:
            again = await collect(second, 11)
            await second.settle(Settlement(acks=again))
    assert [(d.payload, d.attempt) for d in again] == [
        *((payload, 1) for payload in payloads(12)[2:]),
        (b"later", 1),
    ]
    async with transport.consumer(target, "reader") as reader:
        assert payloads_of(await collect(reader, 1)) == [b"r"]
    async with transport.consumer(spec, "first") as first:  # nothing left for anyone
        assert await fetch_within(first, 5, lease / 5) == []
