"""Leases: a dead consumer's messages are taken over; a live consumer keeps its own."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from transports import Transport

from ._support import MailboxFactory, collect, fetch_within, payloads, payloads_of

durable = pytest.mark.parametrize("kind", ["list", "stream"])


@durable
async def test_a_dead_consumers_messages_are_taken_over_after_the_lease(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, payloads(2))
    async with transport.consumer(spec, "dead") as dead:
        taken = await collect(dead, 2)  # and the process dies: no ack
    async with transport.consumer(spec, "heir") as heir:
        assert await fetch_within(heir, 5, lease / 2) == []  # not before the lease
        await trio.sleep(lease)
        inherited = await collect(heir, 2)
        await heir.ack(inherited)
    assert [(d.payload, d.attempt) for d in inherited] == [(b"m0", 2), (b"m1", 2)]
    assert payloads_of(taken) == payloads(2)
    async with transport.consumer(spec, "dead") as reborn:
        assert await fetch_within(reborn, 5, lease / 5) == []  # nothing left for the old name


@durable
async def test_taken_over_messages_come_before_newer_ones(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, [b"old"])
    async with transport.consumer(spec, "dead") as dead:
        await collect(dead, 1)
    await transport.send(spec, [b"new"])
    await trio.sleep(2 * lease)
    async with transport.consumer(spec, "heir") as heir:
        got = await collect(heir, 2)
    assert [(d.payload, d.attempt) for d in got] == [(b"old", 2), (b"new", 1)]


@durable
async def test_an_open_consumer_keeps_its_messages_past_the_lease(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, payloads(3))
    async with transport.consumer(spec, "slow") as slow:
        held = await collect(slow, 3)  # a batch: every message of it is renewed
        await trio.sleep(3 * lease)  # a long handler
        async with transport.consumer(spec, "other") as other:
            assert await fetch_within(other, 5, lease) == []
        await slow.ack(held)
    await trio.sleep(2 * lease)
    async with transport.consumer(spec, "other") as other:
        assert await fetch_within(other, 5, lease / 5) == []


@durable
async def test_a_crash_after_a_retry_counts_as_a_failed_attempt(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, [b"poison"])
    async with transport.consumer(spec, "first") as first:
        [delivery] = await collect(first, 1)
        await first.record_failure(delivery)
        await first.retry_later(delivery, 0)
    async with transport.consumer(spec, "second") as second:
        [retried] = await collect(second, 1)  # and its process dies handling it: no ack
    await trio.sleep(1.5 * lease)
    async with transport.consumer(spec, "third") as third:
        [again] = await collect(third, 1)
        await third.ack([again])
    assert (delivery.attempt, retried.attempt, again.attempt) == (1, 2, 3)
