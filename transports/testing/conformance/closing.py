"""Closing: a closed transport or consumer refuses work, and wakes who waits on it."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from transports import ClosedError, ConfigurationError, Transport

from ._support import MailboxFactory

kinds = pytest.mark.parametrize("kind", ["list", "stream", "pubsub"])


@kinds
async def test_a_closed_transport_refuses_work(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.aclose()
    await transport.aclose()  # idempotent
    with pytest.raises(ClosedError):
        await transport.send(spec, [b"x"])
    with pytest.raises(ClosedError):
        async with transport.consumer(spec, "worker"):
            pass  # pragma: no cover


@kinds
async def test_closing_the_transport_wakes_a_blocked_fetch(
    transport: Transport, mailbox: MailboxFactory, clock: MockClock | None, lease: float, kind: Any
) -> None:
    spec = mailbox(kind)
    async with transport.consumer(spec, "worker") as consumer:

        async def fetch() -> None:
            with pytest.raises(ClosedError):
                await consumer.fetch(1)

        with trio.fail_after(5 * lease):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(fetch)
                await trio.sleep(lease / 5)
                await transport.aclose()
        with pytest.raises(ClosedError):
            await consumer.fetch(1)


@kinds
async def test_a_closed_consumer_refuses_to_fetch(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    spec = mailbox(kind)
    await transport.send(spec, [b"x"])
    async with transport.consumer(spec, "worker") as consumer:
        pass
    with pytest.raises(ClosedError):
        await consumer.fetch(1)


@kinds
async def test_fetch_needs_a_positive_count(
    transport: Transport, mailbox: MailboxFactory, kind: Any
) -> None:
    async with transport.consumer(mailbox(kind), "worker") as consumer:
        with pytest.raises(ConfigurationError):
            await consumer.fetch(0)
