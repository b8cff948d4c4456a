"""Shared fixtures: the Redis ones of the public test kit (a server for the session, a
clean database per test, private servers that fault tests may kill, pause and restart,
a local cluster: :mod:`transports.testing.fixtures`), TLS files, and ``wait_for``.

``REDIS_URL`` set in the environment makes the suite use that server instead of
starting one. It must point at a **disposable** server: every test that uses
``redis_url`` runs ``FLUSHALL`` on it first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from hypothesis import HealthCheck, settings

from transports.testing import PrivateRedis, RedisServer, free_port

# pytester: tests/test_testing_kit.py runs the conformance suite as a user would.
pytest_plugins = ["transports.testing.fixtures", "pytester"]

# Two noisy cores: Hypothesis' per-example deadline would fail tests for the
# machine's load, not for the code's behaviour.
settings.register_profile("actors", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("actors")


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
