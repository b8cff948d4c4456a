"""``system.schedule`` (issue 16 item 2): each due time fires once across every process
(several runners on one store; ``python -m actors run --workers 4`` on Redis), and a due
time missed while nothing ran fires once at the next start."""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import trio
import trio.testing

from actors import ActorContext, ActorSystem, ConfigurationError
from actors._schedules import Schedule, make_schedule, run_schedules
from actors.testing import run_test_system
from tests.conftest import wait_for
from transports.memory import MemoryStore, MemoryTransport

BASE = 1_800_000_000.0  # a Unix time that is a multiple of every period used here


class Fired:
    """What the schedules sent: (target, due ms) pairs."""

    def __init__(self) -> None:
        self.due: list[tuple[Any, int]] = []

    async def tell(self, target: Any, msg: Any, *, headers: dict[str, str]) -> None:
        await trio.lowlevel.checkpoint()
        self.due.append((target, int(headers["actors-due"])))


def trio_clock() -> float:
    return BASE + trio.current_time()


async def run_for(
    seconds: float, store: MemoryStore, schedules: list[Schedule], fired: Fired, workers: int
) -> None:
    """Run ``workers`` runners of ``schedules`` on ``store`` for ``seconds``."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            transport = MemoryTransport(store)
            nursery.start_soon(run_schedules, schedules, transport, fired.tell, stop, trio_clock)
        await trio.sleep(seconds)
        stop.set()


async def test_each_due_time_fires_once_across_workers_and_once_after_a_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryStore()
    schedules = [
        make_schedule("a", "tick", every=2.0, cron=None, name=None),
        make_schedule("b", "tock", every=None, cron="*/1 * * * *", name=None),
    ]
    fired = Fired()
    await run_for(10.5, store, schedules, fired, workers=4)
    start_ms = round(BASE * 1000)
    assert [due for target, due in fired.due if target == "a"] == [
        start_ms + 2000 * n for n in range(1, 6)
    ]
    assert [due for target, due in fired.due if target == "b"] == []  # no minute boundary yet
    # Nothing runs for 5 minutes: the missed due times fire once (the last of each), at start.
    fired.due.clear()
    await trio.sleep(300)
    await run_for(0.1, store, schedules, fired, workers=3)
    now_ms = round(trio_clock() * 1000)
    assert sorted(fired.due) == [
        ("a", (now_ms - 100) // 2000 * 2000),
        ("b", (now_ms - 100) // 60_000 * 60_000),
    ]
    counts = collections.Counter(fired.due)
    assert set(counts.values()) == {1}


async def test_a_new_schedule_fires_nothing_for_the_past(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fired = Fired()
    schedules = [make_schedule("a", "x", every=60.0, cron=None, name=None)]
    await run_for(30, MemoryStore(), schedules, fired, workers=2)
    assert fired.due == []


def test_schedule_arguments_are_checked() -> None:
    system = ActorSystem("memory://", node="test")
    with pytest.raises(ConfigurationError, match="one of them"):
        system.schedule("a", "x")
    with pytest.raises(ConfigurationError, match="one of them"):
        system.schedule("a", "x", every=1, cron="* * * * *")
    with pytest.raises(ConfigurationError, match="cron"):
        system.schedule("a", "x", cron="every minute")
    with pytest.raises(ConfigurationError, match="every"):
        system.schedule("a", "x", every=0)
    system.schedule("a", "x", every=5)
    with pytest.raises(ConfigurationError, match="name="):
        system.schedule("a", "y", every=5)
    assert system.schedule("a", "y", every=5, name="other").name == "other"


async def test_a_system_fires_its_schedules_to_an_actor() -> None:
    system = ActorSystem("memory://", node="test")
    got: list[str] = []

    @system.actor(list="reports")
    async def report(msg: str, context: ActorContext) -> None:
        got.append(context.message.headers["actors-schedule"])

    system.schedule("reports", "make one", every=0.1)  # due times are wall-clock times
    async with run_test_system(system):
        with pytest.raises(ConfigurationError, match="before the system starts"):
            system.schedule("reports", "late", every=1)
        with trio.fail_after(5):
            while len(got) < 2:
                await trio.sleep(0.05)
    assert set(got) == {"reports every 0.1s"}


async def test_a_schedule_to_an_unknown_target_fails_the_start() -> None:
    system = ActorSystem("memory://", node="test")

    @system.actor(list="reports")
    async def report(msg: str) -> None:
        pass

    system.schedule("nowhere", "x", every=1)
    with pytest.raises(ConfigurationError, match="nowhere"):
        async with run_test_system(system):
            await trio.sleep(1)


# -- Redis, several worker processes -----------------------------------------------------

SYSTEM = textwrap.dedent(
    """
    from actors import ActorContext, ActorSystem

    system = ActorSystem()

    @system.actor(list="ticks")
    async def tick(msg: str, context: ActorContext) -> None:
        await context.redis.rpush("fired", context.message.headers["actors-due"])

    system.schedule("ticks", "tick", every=0.5)
    """
)


@pytest.fixture
def db(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def run_workers(path: Path, url: str, workers: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "actors", "run", str(path), "--workers", str(workers)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ACTORS_URL": url},
    )


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        _, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors


def test_four_workers_fire_each_due_time_once_and_a_restart_misses_none(
    tmp_path: Path, redis_url: str, db: redis.Redis
) -> None:
    path = tmp_path / "ticking.py"
    path.write_text(SYSTEM)
    parent = run_workers(path, redis_url, 4)
    try:
        wait_for(lambda: db.hlen("{actors:nodes}") == 4)
        wait_for(lambda: db.llen("fired") >= 6, 20, "6 firings")
    finally:
        stop(parent)
    first = [int(due) for due in db.lrange("fired", 0, -1)]
    assert len(first) == len(set(first)), "a due time fired twice"
    steps = {b - a for a, b in itertools.pairwise(first)}
    assert steps == {500}, f"a due time was missed: {first}"
    # Down for a while: the due times missed meanwhile fire once, the last of them.
    time.sleep(1.6)
    parent = run_workers(path, redis_url, 2)
    try:
        wait_for(lambda: db.llen("fired") >= len(first) + 3, 20, "3 more firings")
    finally:
        stop(parent)
    again = [int(due) for due in db.lrange("fired", 0, -1)][len(first) :]
    assert len(again) == len(set(again))
    assert again[0] > first[-1] + 500  # the catch-up: the latest missed due time, once
    assert all(b - a == 500 for a, b in itertools.pairwise(again))
