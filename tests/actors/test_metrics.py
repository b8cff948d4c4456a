"""Prometheus metrics (#17 item 2): the Metrics middleware's counters and histograms,
its sampler of mailboxes and restarts, the trio /metrics endpoint, and
``python -m actors run --metrics-port`` scraped from a running process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import attrs
import pytest
import trio
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from actors import (
    Actor,
    ActorSystem,
    Backoff,
    Drop,
    RemoteError,
    list_mailbox,
)
from actors._codec import encode
from actors.metrics import Metrics, serve_metrics
from tests.conftest import wait_for


@attrs.frozen
class Job:
    n: int


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


class Worker(Actor):
    mailbox = list_mailbox("work")
    max_deliveries = 2
    retry_backoff = Backoff(min=0.01, max=0.01)
    on_error = {KeyError: "restart"}
    crashed = False

    async def receive(self, msg: Job) -> int:
        if msg.n == 0:
            raise Drop
        if msg.n < 0:
            raise RuntimeError("bad job")
        if msg.n == 99 and not Worker.crashed:
            Worker.crashed = True
            raise KeyError("crash once")
        return msg.n


async def test_the_middleware_counts_fates_times_handlers_and_asks(url: str) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    Worker.crashed = False
    system = ActorSystem(url, node="metrics", middleware=[metrics])
    system.actor(Worker)

    def value(name: str, **labels: str) -> float:
        found = registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    on = {"actor": "worker", "mailbox": "list:work"}
    async with system:
        assert await system.ask(Worker, Job(1)) == 1
        assert await system.ask(Worker, Job(99)) == 99  # after a restart
        await system.tell(Worker, Job(0))
        with pytest.raises(RemoteError, match="bad job"):
            await system.ask(Worker, Job(-1))
        with trio.fail_after(10):
            while value("actors_messages_dropped_total", **on) < 1:
                await trio.sleep(0.01)
        await metrics.sample_once(system)
        restarts = value("actors_restarts", path="system/worker-0")
    assert value("actors_messages_received_total", **on) == 6  # 1, 99 twice, 0, -1 twice
    assert value("actors_messages_handled_total", **on) == 2
    assert value("actors_messages_failed_total", **on) == 4  # KeyError, Drop, 2 x bad job
    assert value("actors_messages_retried_total", **on) == 1
    assert value("actors_messages_dead_lettered_total", **on) == 1
    assert value("actors_handling_seconds_count", **on) == 6
    assert value("actors_fetch_batch_size_count", **on) >= 1
    assert value("actors_messages_sent_total", target="list:work", kind="ask") == 3
    assert value("actors_messages_sent_total", target="list:work", kind="tell") == 1
    assert value("actors_ask_seconds_count", target="list:work") == 3
    assert restarts == 1
    assert value("actors_mailbox_dead_letters", mailbox="list:work") == 1


async def test_the_sampler_sees_a_backlog(url: str) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    release = trio.Event()

    class Stuck(Actor):
        mailbox = list_mailbox("stuck")
        batch_size = 1

        async def receive(self, msg: Job) -> None:
            await release.wait()

    system = ActorSystem(url, node="metrics", middleware=[metrics])
    system.actor(Stuck)
    async with system, trio.open_nursery() as nursery:
        for n in range(5):
            await system.tell(Stuck, Job(n))
        nursery.start_soon(metrics.sample, system, 0.01)
        box = "list:stuck"
        with trio.fail_after(10):
            while registry.get_sample_value("actors_mailbox_pending", {"mailbox": box}) != 1:
                await trio.sleep(0.01)
        assert registry.get_sample_value("actors_mailbox_depth", {"mailbox": box}) == 4
        release.set()
        nursery.cancel_scope.cancel()


async def _get(port: int, request: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        answer = b""
        while chunk := await stream.receive_some(65536):
            answer += chunk
    return answer


async def test_the_endpoint_serves_the_registry() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.sent.labels("list:x", "tell").inc(3)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_metrics, 0, "127.0.0.1", registry)
        answer = await _get(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200 OK")
        assert b"text/plain; version=" in head
        assert b'actors_messages_sent_total{kind="tell",target="list:x"} 3.0' in body
        assert (await _get(port, b"GET /nope HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.0 404")
        assert (await _get(port, b"POST /metrics HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.0 405")
        nursery.cancel_scope.cancel()


SYSTEM = textwrap.dedent(
    """
    from actors import Actor, ActorSystem, list_mailbox

    system = ActorSystem()

    class Echo(Actor):
        mailbox = list_mailbox("echo")

        async def receive(self, n: int) -> int:
            if n < 0:
                raise ValueError("negative")
            return n

    system.actor(Echo)
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return {}
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_run_serves_metrics_that_a_scraper_reads(tmp_path: Path, redis_url: str) -> None:
    import redis

    path = tmp_path / "echo.py"
    path.write_text(SYSTEM)
    port = _free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "actors", "run", str(path), "--url", redis_url),
            *("--metrics-port", str(port), "--metrics-host", "127.0.0.1"),
        ],
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "ACTORS_URL"},
    )
    db = redis.Redis.from_url(redis_url)
    try:
        db.rpush("echo", *[encode(n) for n in (1, 2, 3, -1)])
        on = (("actor", "echo"), ("mailbox", "list:echo"))

        def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            return _scrape(port)

        wait_for(
            lambda: (
                scraped().get(("actors_messages_handled_total", on)) == 3
                and scraped().get(("actors_messages_failed_total", on)) == 3
            ),
            timeout=30,
            what="the handled and failed counters",
        )
        samples = scraped()
        assert samples[("actors_messages_dead_lettered_total", on)] == 1
        assert samples[("actors_handling_seconds_count", on)] == 6
        wait_for(
            lambda: (
                scraped().get(("actors_mailbox_dead_letters", (("mailbox", "list:echo"),))) == 1
            ),
            timeout=30,
            what="the sampled dead letters",
        )
        assert scraped()[("actors_restarts", (("path", "system/echo-0"),))] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        db.close()
