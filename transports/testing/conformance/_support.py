"""Helpers of the conformance suite: the transport registry entry, names, timed fetches."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import attrs
import pytest
import trio

from transports import Consumer, Delivery, MailboxKind, MailboxSpec, Transport


@attrs.frozen
class TransportUnderTest:
    """How to open one kind of transport for a test.

    ``open`` gets the pytest request (to reach other fixtures, such as a server
    URL) and returns an async context manager yielding an open transport.
    ``mock_clock`` is True when the transport follows trio's clock only, so timed
    tests can run on an autojumping ``MockClock``; False for a store with a clock
    of its own (Redis measures idle times itself), where they run in real time.
    ``lease`` is the lease of the test mailboxes, and the unit of time of timed
    tests: keep it short for real-time transports. ``unsupported`` maps the names
    of tests of what the transport does not offer (``"test_a_pattern_subscriber_..."``)
    to the reason: those tests are skipped with it.
    """

    open: Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[Transport]]
    mock_clock: bool = True
    lease: float = 10.0
    unsupported: Mapping[str, str] = attrs.field(factory=dict)


class MailboxFactory(Protocol):
    """Makes a spec with a fresh name: ``mailbox("stream", maxlen=3)``."""

    def __call__(self, kind: MailboxKind, **options: Any) -> MailboxSpec: ...


_SESSION = uuid.uuid4().hex[:8]
_counter = itertools.count()


def fresh_name(prefix: str) -> str:
    """A name that no other test, in this session or an earlier one, uses."""
    return f"{prefix}-{_SESSION}-{next(_counter)}"


def payloads(count: int, prefix: str = "m") -> list[bytes]:
    """``count`` distinct payloads: ``b"m0"``, ``b"m1"``..."""
    return [f"{prefix}{index}".encode() for index in range(count)]


class HasPayload(Protocol):
    """A delivery or a dead letter."""

    @property
    def payload(self) -> bytes: ...


def payloads_of(messages: Sequence[HasPayload]) -> list[bytes]:
    """The payloads of ``messages`` (deliveries or dead letters), in order."""
    return [message.payload for message in messages]


async def fetch_within(
    consumer: Consumer, max_count: int, seconds: float, *, ack: Sequence[Delivery] = ()
) -> list[Delivery]:
    """Fetch (acking ``ack`` first), giving up after ``seconds``: the deliveries, or
    ``[]`` if none came (the acks may then be made or not)."""
    with trio.move_on_after(seconds):
        return list(await consumer.fetch(max_count, ack=ack))
    return []


async def collect(
    consumer: Consumer, count: int, *, max_count: int = 100, seconds: float = 5.0
) -> list[Delivery]:
    """Fetch until ``count`` deliveries came (fails after ``seconds``)."""
    got: list[Delivery] = []
    with trio.fail_after(seconds):
        while len(got) < count:
            got.extend(await consumer.fetch(min(max_count, count - len(got))))
    return got
