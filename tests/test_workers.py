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
from conftest import wait_for

from actors._codec import encode

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
