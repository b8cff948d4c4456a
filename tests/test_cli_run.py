"""`python -m actors run`: start, log, graceful SIGTERM, a second signal, redelivery after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from conftest import wait_for

from actors._codec import encode

SYSTEM = textwrap.dedent(
    """
    import trio
    from actors import Actor, ActorSystem, list_mailbox

    system = ActorSystem()

    class Slow(Actor):
        mailbox = list_mailbox("jobs", lease=1.0)
        batch_size = 10

        async def receive(self, n: int) -> None:
            await self.context.redis.rpush("started", n)
            await trio.sleep(float(await self.context.redis.get("delay") or 0.5))
            await self.context.redis.rpush("done", n)

    system.actor(Slow)
    """
)


@pytest.fixture
def system_file(tmp_path: Path) -> Path:
    path = tmp_path / "slow.py"
    path.write_text(SYSTEM)
    return path


@pytest.fixture
def db(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def start() -> Iterator[Callable[[Path, str], subprocess.Popen[str]]]:
    """Start `python -m actors run FILE --url URL`; return once it runs. Reaped after."""
    procs: list[subprocess.Popen[str]] = []

    def run(system_file: Path, url: str) -> subprocess.Popen[str]:
        proc = _start(system_file, url)
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def _start(system_file: Path, url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "actors", "run", str(system_file), "--url", url],
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "ACTORS_URL"},
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "actor system running" in line:
            return proc
    raise AssertionError(f"never started; exit {proc.wait()}")


Start = Callable[[Path, str], "subprocess.Popen[str]"]


def test_sigterm_finishes_in_flight_work_and_exits_0(
    system_file: Path, redis_url: str, db: redis.Redis, start: Start
) -> None:
    proc = start(system_file, redis_url)
    db.rpush("jobs", *[encode(n) for n in (1, 2, 3)])
    wait_for(lambda: db.llen("started") == 1, timeout=10)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert db.lrange("done", 0, -1) == [b"1"]  # the message in flight finished
    # The messages not started were handed back to the mailbox for the next run.
    assert db.llen("jobs") == 2
    assert [k for k in db.scan_iter("{jobs}:processing:*") if db.llen(k)] == []
    proc = start(system_file, redis_url)
    wait_for(lambda: db.llen("done") == 3, timeout=10)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert sorted(db.lrange("done", 0, -1)) == [b"1", b"2", b"3"]


def test_second_signal_exits_at_once_and_work_is_redelivered(
    system_file: Path, redis_url: str, db: redis.Redis, start: Start
) -> None:
    db.set("delay", 60)
    proc = start(system_file, redis_url)
    db.rpush("jobs", encode(7))
    wait_for(lambda: db.llen("started") == 1, timeout=10)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 130
    assert db.llen("done") == 0
    db.set("delay", 0)
    proc = start(system_file, redis_url)
    # The new process has a new consumer name: it takes the work over after the lease.
    wait_for(lambda: db.lrange("done", 0, -1) == [b"7"], timeout=15)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
