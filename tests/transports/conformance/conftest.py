"""The transports this project runs the conformance suite against.

The suite itself is public: :mod:`transports.testing.conformance` (its tests, and the
``transport``, ``clock``, ``lease`` and ``mailbox`` fixtures). ``test_suite.py``
collects it; this file provides the ``under_test`` fixture it needs, parametrized by
the names in :data:`TRANSPORTS`, so each test runs once per transport
(``test_x[memory-...]``, ``test_x[redis-...]``).

To add a transport, register a :class:`TransportUnderTest` under a new name in
:data:`TRANSPORTS` below.
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
        _open_redis_cluster,
        mock_clock=False,
        lease=0.5,
        unsupported={
            "test_a_pattern_subscriber_gets_every_matching_channel": (
                "channel mailboxes use sharded pub/sub on Redis Cluster, which has no patterns"
            ),
        },
    )

_MARKS = {"redis-cluster": [pytest.mark.slow]}  # deselect with -m "not slow"


@pytest.fixture(
    params=[pytest.param(name, marks=_MARKS.get(name, ())) for name in sorted(TRANSPORTS)]
)
def under_test(request: pytest.FixtureRequest) -> TransportUnderTest:
    """The registry entry of the transport this test runs against."""
    return TRANSPORTS[request.param]
