"""Shared fixtures: a Redis server for the session, a clean database per test, and
private servers that fault tests may kill, pause and restart.

``REDIS_URL`` set in the environment makes the suite use that server instead of
starting one. It must point at a **disposable** server: every test that uses
``redis_url`` runs ``FLUSHALL`` on it first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis
import trustme
from hypothesis import HealthCheck, settings

from transports.testing import (
    LocalCluster,
    RedisServer,
    cluster_available,
    free_port,
    shared_cluster,
    stop_shared_cluster,
)

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
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, plus an unrelated CA."""
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "ca": directory / "ca.pem",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
        "other_ca": directory / "other-ca.pem",
    }
    ca.cert_pem.write_to_path(files["ca"])
    cert.private_key_pem.write_to_path(files["key"])
    cert.cert_chain_pems[0].write_to_path(files["cert"])
    trustme.CA().cert_pem.write_to_path(files["other_ca"])
    return files


@pytest.fixture
def tls_server(private_redis: PrivateRedis, tls_files: dict[str, Path]) -> RedisServer:
    """A private server that speaks only TLS, with the certificate of ``tls_files``."""
    return private_redis(
        port=0,
        tls_port=free_port(),
        extra_args=[
            "--tls-cert-file", str(tls_files["cert"]),
            "--tls-key-file", str(tls_files["key"]),
            "--tls-ca-cert-file", str(tls_files["ca"]),
            "--tls-auth-clients", "no",
        ],
    )  # fmt: skip


def wait_for(
    predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` (synchronously) until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


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
