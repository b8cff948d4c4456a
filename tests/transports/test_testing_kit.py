"""The public test kit as a user meets it: the conformance suite run from a project of
their own (no trio_mode, no conftest of ours), and the Redis servers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import redis

from transports.testing import RedisServer, ping
from transports.testing.topologies import cluster_port

USER_MODULE = textwrap.dedent(
    """
    from contextlib import asynccontextmanager

    import pytest

    from transports.memory import MemoryTransport
    from transports.testing.conformance import TransportUnderTest
    from transports.testing.conformance.suite import *  # noqa: F403


    class ReversingTransport(MemoryTransport):
        \"\"\"Broken on purpose: sends a batch in reverse order.\"\"\"

        async def send(self, spec, payloads):
            await super().send(spec, list(reversed(payloads)))


    @asynccontextmanager
    async def open_transport(request):
        kind = MemoryTransport if request.config.getoption("--sound") else ReversingTransport
        async with kind() as transport:
            yield transport


    @pytest.fixture
    def under_test() -> TransportUnderTest:
        return TransportUnderTest(
            open_transport,
            unsupported={"test_a_pattern_subscriber_gets_every_matching_channel": "no patterns"},
        )
    """
)

CONFTEST = textwrap.dedent(
    """
    def pytest_addoption(parser):
        parser.addoption("--sound", action="store_true")
    """
)


README = Path(__file__).parents[2] / "README.md"


def _readme_block(first_line: str) -> str:
    """The README's code block that starts with ``first_line``."""
    text = README.read_text()
    start = text.index(f"```python\n{first_line}\n") + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_readme_example_runs_the_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        mystore="from transports.memory import MemoryTransport as MyTransport",
        test_my_transport=_readme_block("# test_my_transport.py"),
    )
    collected = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    collected.stdout.fnmatch_lines(["121 tests collected*"])  # the count the README gives
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-k", "fetch_returns_what_was_sent or pattern_subscriber"
    )
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("skipped")) == (3, 1), result.stdout.str()
    assert "failed" not in outcomes, result.stdout.str()


@pytest.fixture
def user_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_my_transport=USER_MODULE)
    return pytester


def test_a_sound_transport_passes_the_whole_suite(user_project: pytest.Pytester) -> None:
    result = user_project.runpytest_subprocess("-p", "no:cacheprovider", "-rs", "--sound")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] > 80  # the suite, against one transport
    # The unsupported pattern subscriber, and the real-time variants of the invariants
    # (a mock-clock transport runs them in mock time).
    assert outcomes["skipped"] == 3
    result.stdout.fnmatch_lines(["*SKIPPED*no patterns*"])
    result.stdout.no_fnmatch_line("*PytestUnhandledCoroutineWarning*")


def test_a_broken_transport_fails_with_assertion_details(user_project: pytest.Pytester) -> None:
    result = user_project.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rs", "-k", "test_fetch_returns_what_was_sent_in_order"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, result.stdout.str()
    # pytest rewrote the suite's asserts: the failure shows both sides.
    result.stdout.fnmatch_lines(["*assert [[]b'*] == [[]b'*]*"])


def test_a_redis_server_starts_answers_and_is_removed() -> None:
    with RedisServer() as server:
        assert ping(server.port)
        client = redis.Redis.from_url(server.url)
        try:
            assert client.set("k", "v")
        finally:
            client.close()
        directory = server.directory
    assert not server.running
    assert not directory.exists()


def test_a_server_that_cannot_start_says_why_and_leaks_nothing() -> None:
    # An unclosed stderr pipe would fail this test (ResourceWarning is an error here).
    server = RedisServer(extra_args=["--no-such-option", "1"])
    try:
        with pytest.raises(RuntimeError, match="exited at start"):
            server.start()
        assert not server.running
    finally:
        server.cleanup()


def test_cluster_ports_stay_below_the_ephemeral_range() -> None:
    # An outgoing connection may take any ephemeral port before the node binds it.
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if not ranges.exists():
        pytest.skip("the ephemeral port range is read from Linux's /proc")
    low = int(ranges.read_text().split()[0])
    for _ in range(50):
        port = cluster_port()
        assert port + 10000 < low


def test_the_fixtures_plugin_serves_a_users_project(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["transports.testing.fixtures"]')
    pytester.makepyfile(
        test_restarts="""
        import redis

        def test_a_private_server_keeps_its_data_across_a_restart(private_redis):
            server = private_redis(appendonly=True)
            client = redis.Redis.from_url(server.url)
            client.set("k", "v")
            client.close()
            server.restart()
            client = redis.Redis.from_url(server.url)
            assert client.get("k") == b"v"
            client.close()

        def test_the_session_server_starts_empty(redis_url):
            client = redis.Redis.from_url(redis_url)
            assert client.dbsize() == 0
            client.close()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=2)
