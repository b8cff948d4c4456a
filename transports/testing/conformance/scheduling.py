"""Delayed sends (``send(..., delay=)``) and schedule marks (``read_mark`` / ``advance_mark``)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from transports import ConfigurationError, MailboxSpec, Transport

from ._support import MailboxFactory, collect, fetch_within, fresh_name, payloads, payloads_of

durable = pytest.mark.parametrize("kind", ["list", "stream"])


@durable
async def test_a_delayed_send_is_held_until_due_then_delivered_in_order(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    async with transport.consumer(spec, "worker") as consumer:
        await transport.send(spec, payloads(3, "late"), delay=2 * lease)
        await transport.send(spec, [b"now"])
        start = trio.current_time()
        assert payloads_of(await collect(consumer, 1)) == [b"now"]
        assert await fetch_within(consumer, 5, lease) == []  # not before it is due
        got = await collect(consumer, 3, seconds=10 * lease)
        assert payloads_of(got) == payloads(3, "late")
        assert trio.current_time() - start >= 2 * lease * 0.9  # the server's clock, not ours
        await consumer.ack(got)


@durable
async def test_a_delayed_send_waits_for_a_consumer_that_opens_after_its_due_time(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, [b"held"], delay=lease / 2)
    await trio.sleep(lease)
    async with transport.consumer(spec, "worker") as consumer:
        assert payloads_of(await collect(consumer, 1, seconds=10 * lease)) == [b"held"]


async def test_a_bad_delay_or_a_delayed_publish_is_refused(
    transport: Transport, mailbox: MailboxFactory
) -> None:
    with pytest.raises(ConfigurationError, match="delay"):
        await transport.send(mailbox("list"), [b"x"], delay=-1.0)
    with pytest.raises(ConfigurationError, match="pub/sub"):
        await transport.send(MailboxSpec("pubsub", fresh_name("news")), [b"x"], delay=1.0)


async def test_a_mark_is_raised_once_per_value(transport: Transport) -> None:
    name = fresh_name("schedule")
    assert await transport.read_mark(name) is None
    assert await transport.advance_mark(name, 1_000)
    assert not await transport.advance_mark(name, 1_000)  # another process took that one
    assert not await transport.advance_mark(name, 500)  # never lowered
    assert await transport.read_mark(name) == 1_000
    assert await transport.advance_mark(name, 2_000)
    assert await transport.read_mark(name) == 2_000
