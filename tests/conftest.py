"""Shared fixtures: a Redis server for the session, a clean database per test, and
private servers that fault tests may kill, pause and restart.

``REDIS_URL`` set in the environment makes the suite use that server instead of
starting one. It must point at a **disposable** server: every test that uses
``redis_url`` runs ``FLUSHALL`` on it first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import redis
from hypothesis import HealthCheck, settings
from redis_server import RedisServer

# Two noisy cores: Hypothesis' per-example deadline would fail tests for the
# machine's load, not for the code's behaviour.
settings.register_profile("actors", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("actors")


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


PrivateRedis = Callable[..., RedisServer]


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A factory of fresh private servers for fault tests, stopped after the test.

    ``server = private_redis(appendonly=True, extra_args=["--requirepass", "pw"])``
    returns a started :class:`RedisServer` (see ``tests/redis_server.py``) that the
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
