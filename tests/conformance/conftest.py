"""Fixtures of the transport conformance suite: one set of tests, every transport.

Every test here asks for ``transport``, an open :class:`~transports.Transport`.
The fixture is parametrized by the names in :data:`TRANSPORTS`, so each test
runs once per transport (``test_x[memory-...]``, ``test_x[redis-...]``).

To add a transport, register a :class:`TransportUnderTest` under a new name in
:data:`TRANSPORTS` below, for instance::

    @asynccontextmanager
    async def _open_redis(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
        url = request.getfixturevalue("redis_url")  # tests/conftest.py; skips without Redis
        async with RedisTransport(url) as transport:
            yield transport

    TRANSPORTS["redis"] = TransportUnderTest(_open_redis, mock_clock=False, lease=0.5)

Mailbox and consumer names are fresh for every test (see ``mailbox``), so a
server shared by the whole session needs no cleanup between tests.

Timed tests ask for ``clock`` as well: pytest-trio runs a test on the Clock
among its arguments, here a ``MockClock`` that jumps ahead whenever every task
waits (for ``mock_clock`` transports), or ``None``, meaning real time. Timed
tests measure time in multiples of ``lease``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from transports import Transport
from transports.memory import MemoryTransport
from transports.redis import RedisTransport
from transports.testing import cluster_available
from transports.testing.conformance import TransportUnderTest


@asynccontextmanager
async def _open_memory(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    async with MemoryTransport() as transport:
        yield transport


@asynccontextmanager
async def _open_redis(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    url = request.getfixturevalue("redis_url")  # tests/conftest.py
    async with RedisTransport.from_url(url) as transport:
        yield transport


@asynccontextmanager
async def _open_redis_cluster(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    cluster = request.getfixturevalue("redis_cluster")
    async with RedisTransport.from_url(cluster.url) as transport:
        yield transport


TRANSPORTS: dict[str, TransportUnderTest] = {
    "memory": TransportUnderTest(_open_memory),
    "redis": TransportUnderTest(_open_redis, mock_clock=False, lease=0.5),
}
"""The transports the suite runs against, by the name that appears in test ids."""

if cluster_available():
    TRANSPORTS["redis-cluster"] = TransportUnderTest(
        _open_redis_cluster, mock_clock=False, lease=0.5
    )

_MARKS = {"redis-cluster": [pytest.mark.slow]}  # deselect with -m "not slow"
_UNSUPPORTED = {
    ("redis-cluster", "test_a_pattern_subscriber_gets_every_matching_channel"): (
        "channel mailboxes use sharded pub/sub on Redis Cluster, which has no patterns"
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the tests of what a transport does not offer (see ``_UNSUPPORTED``)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        name = getattr(item, "originalname", item.name)
        reason = _UNSUPPORTED.get((callspec.params.get("under_test"), name))
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(
    params=[pytest.param(name, marks=_MARKS.get(name, ())) for name in sorted(TRANSPORTS)]
)
def under_test(request: pytest.FixtureRequest) -> TransportUnderTest:
    """The registry entry of the transport this test runs against."""
    return TRANSPORTS[request.param]
