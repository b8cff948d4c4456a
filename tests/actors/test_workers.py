"""`python -m actors run FILE --workers N`: processes share the mailboxes, die and come back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trio

from actors._codec import encode
from actors._startup import defer_signals, exit_status
from actors._workers import run_workers
from tests.conftest import wait_for
from transports.testing import PrivateRedis

NODES = "{actors:nodes}"  # where running nodes announce themselves

SYSTEM = textwrap.dedent(
    """
    import os
    from actors import ActorContext, ActorSystem

    system = ActorSystem()

    @system.actor(list="jobs", batch_size=5)
    async def work(n: int, context: ActorContext) -> None:
        await context.redis.sadd("done", n)
        await context.redis.sadd("pids", os.getpid())
    """
)


@pytest.fixture
def db(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def worker_pids(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def test_workers_share_work_and_are_restarted(
    tmp_path: Path, redis_url: str, db: redis.Redis
) -> None:
    path = tmp_path / "pool.py"
    path.write_text(SYSTEM)
    env = {**os.environ, "ACTORS_URL": redis_url}
    parent = subprocess.Popen(
        [sys.executable, "-m", "actors", "run", str(path), "--workers", "2"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # Both workers announced themselves: they are connected and consuming.
        wait_for(lambda: db.hlen(NODES) == 2)
        db.rpush("jobs", *[encode(n) for n in range(400)])
        wait_for(lambda: db.scard("done") == 400)
        assert db.scard("pids") == 2  # both workers took part
        victim = worker_pids(parent.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: len(worker_pids(parent.pid)) == 2 and victim not in worker_pids(parent.pid)
        )
        wait_for(lambda: db.hlen(NODES) == 3)  # the replacement announced itself
        db.rpush("jobs", *[encode(n) for n in range(400, 500)])
        wait_for(lambda: db.scard("done") == 500)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert parent.stderr is not None
    with parent.stderr:
        log = parent.stderr.read()
    assert "worker 0 started" in log and "worker 1 started" in log
    assert "died (status -9); restarting" in log


BUSY = textwrap.dedent(
    """
    import os, trio
    from actors import ActorContext, ActorSystem

    system = ActorSystem()

    @system.actor(list="slow", batch_size=1)
    async def slow(n: int, context: ActorContext) -> None:
        await context.redis.sadd("busy", os.getpid())
        await trio.sleep(60)
    """
)


def test_a_second_signal_makes_the_workers_parent_exit_130(
    tmp_path: Path, redis_url: str, db: redis.Redis
) -> None:
    path = tmp_path / "busy.py"
    path.write_text(BUSY)
    env = {**os.environ, "ACTORS_URL": redis_url}
    parent = subprocess.Popen(
        [sys.executable, "-m", "actors", "run", str(path), "--workers", "2"],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for(lambda: db.hlen(NODES) == 2)
        db.rpush("slow", encode(1), encode(2))
        wait_for(lambda: db.scard("busy") == 2)  # both workers are in a long handler
        parent.send_signal(signal.SIGINT)
        time.sleep(0.3)  # trio coalesces a signal repeated before it was read
        parent.send_signal(signal.SIGINT)
        assert parent.wait(timeout=30) == 130  # as a single process does
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


IN_FLIGHT = textwrap.dedent(
    """
    import trio
    from actors import ActorContext, ActorSystem

    system = ActorSystem()

    @system.actor(list="jobs", batch_size=1)
    async def work(n: int, context: ActorContext) -> None:
        await context.redis.sadd("started", n)
        await trio.sleep(2)
        await context.redis.sadd("done", n)
    """
)


@pytest.mark.chaos
def test_workers_stop_gracefully_when_their_parent_is_killed(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    server = private_redis()
    db = redis.Redis.from_url(server.url)
    path = tmp_path / "pool.py"
    path.write_text(IN_FLIGHT)
    log = tmp_path / "log"
    with log.open("w") as stderr:
        parent = subprocess.Popen(
            [sys.executable, "-m", "actors", "run", str(path), "--workers", "2"],
            stderr=stderr,
            env={**os.environ, "ACTORS_URL": server.url},
        )
    workers: list[int] = []
    try:
        wait_for(lambda: db.hlen(NODES) == 2, what="both workers running")
        workers = worker_pids(parent.pid)
        assert len(workers) == 2
        db.rpush("jobs", encode(1), encode(2))
        wait_for(lambda: db.scard("started") == 2, what="both jobs in flight")
        parent.kill()
        parent.wait()
        # The workers notice at once and stop as on SIGTERM: the jobs in flight finish
        # (2 s) and are acked, the node records are withdrawn, the processes exit.
        wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10, what="workers exit")
        assert db.smembers("done") == {b"1", b"2"}
        assert db.hlen(NODES) == 0
        assert db.llen("jobs") == 0
        assert [k for k in db.scan_iter("{jobs}:processing:*") if db.llen(k)] == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        db.close()
    text = log.read_text()
    assert text.count("parent is gone: stopping gracefully") == 2, text
    assert "Traceback" not in text


SLOW_WORKERS = textwrap.dedent(
    """
    import sys, time
    from actors import ActorSystem

    if "--worker" in sys.argv:
        time.sleep(60)  # a worker's import that takes long
    system = ActorSystem()
    """
)


def test_a_signal_stops_spawning_workers_at_once(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "slow.py"
    path.write_text(SLOW_WORKERS)
    log = tmp_path / "log"
    with log.open("w") as stderr:
        parent = subprocess.Popen(
            [sys.executable, "-m", "actors", "run", str(path), "--workers", "64"],
            stderr=stderr,
            env={**os.environ, "ACTORS_URL": redis_url},
        )
    try:
        wait_for(lambda: "worker 0 started" in log.read_text(), what="the first worker")
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    text = log.read_text()
    after = text.split("SIGTERM: ", 1)[1]
    # At most the one being spawned when the signal came starts after it.
    assert after.count(" started (pid") <= 1, text
    assert text.count(" started (pid") < 64, text
    assert "Traceback" not in text


async def _run_workers_briefly() -> int:
    with trio.fail_after(10):
        return await run_workers(["false"], 2, "redis://127.0.0.1:1/0")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_signal_just_before_trio_runs_stops_the_start(signum: signal.Signals) -> None:
    # Between the start-up handlers and trio's receiver, a signal is recorded, then
    # acted on: no worker is spawned (`false` would fail if one were).
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        defer_signals()
        os.kill(os.getpid(), signum)
        status = trio.run(_run_workers_briefly)
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    assert status == exit_status(signum)
