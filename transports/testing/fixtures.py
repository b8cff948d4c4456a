"""pytest fixtures for Redis: a server for the session, a clean database per test,
private servers a test may kill, and a local Redis Cluster.

A pytest plugin: enable it in your top-level ``conftest.py`` with
``pytest_plugins = ["transports.testing.fixtures"]``.

``REDIS_URL`` set in the environment makes ``redis_server`` use that server instead
of starting one. It must point at a **disposable** server: every test that uses
``redis_url`` runs ``FLUSHALL`` on it first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import redis

from .servers import PrivateRedis, RedisServer
from .topologies import LocalCluster, cluster_available, shared_cluster, stop_shared_cluster

__all__ = [
    "ExternalRedis",
    "PrivateRedis",
    "private_redis",
    "redis_cluster",
    "redis_server",
    "redis_url",
]


@attrs.frozen
class ExternalRedis:
    """A server we did not start (from ``REDIS_URL``): only its URL is known."""

    url: str


def _flushall(url: str) -> None:
    client = redis.Redis.from_url(url, protocol=2, socket_timeout=5)
    try:
        client.flushall()
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | ExternalRedis]:
    """The session's Redis: a private ``redis-server``, or ``REDIS_URL`` when set."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield ExternalRedis(url)
        return
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer | ExternalRedis) -> str:
    """The session server's URL, after ``FLUSHALL``: every test starts with no keys."""
    _flushall(redis_server.url)
    return redis_server.url


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A factory of fresh private servers for fault tests, stopped after the test.

    ``server = private_redis(appendonly=True, extra_args=["--requirepass", "pw"])``
    returns a started :class:`RedisServer` (see :mod:`transports.testing`) that the
    test may ``kill()``, ``pause()``, ``resume()`` and ``restart()``.
    """
    servers: list[RedisServer] = []

    def start(**kwargs: Any) -> RedisServer:
        server = RedisServer(**kwargs)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """The session's local Redis Cluster (:class:`transports.testing.LocalCluster`): 3
    masters with a replica each, shared by the conformance suite and the cluster tests.
    Skips when redis-server/redis-cli are missing or it cannot start."""
    if not cluster_available():
        pytest.skip("redis-server and redis-cli are needed for a local cluster")
    try:
        cluster = shared_cluster()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield cluster
    stop_shared_cluster()
