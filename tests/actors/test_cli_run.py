"""`python -m actors run`: start, log, graceful SIGTERM, a second signal, redelivery after."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from actors._codec import encode
from tests.conftest import wait_for

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


SLOW_IMPORT = textwrap.dedent(
    """
    import os, pathlib, sys, time

    # Mark that this process imports the file, then sleep if it is the slow one.
    role = "worker" if "--worker" in sys.argv else "main"
    pathlib.Path(os.environ["MARKS"], f"{role}-{os.getpid()}").touch()
    if role == os.environ["SLOW_IMPORT"]:
        time.sleep(60)

    from actors import ActorSystem

    system = ActorSystem()
    """
)


def _marks(directory: Path, role: str) -> list[int]:
    return [int(p.name.split("-")[1]) for p in directory.glob(f"{role}-*")]


# When to send the signal: (what we wait for, which import sleeps, with --workers?)
MOMENTS = {
    # `-X importtime` prints a line as each import ends: `transports` is in, about
    # half of the runtime is not.
    "importing the runtime": ("transports", "main", False),
    "importing the file": ("main", "main", False),
    "workers: parent importing the runtime": ("transports", "main", True),
    "workers: parent importing the file": ("main", "main", True),
    "workers: right after a spawn": ("worker 1 started", "worker", True),
    "workers: workers importing the file": ("workers", "worker", True),
}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_signal_during_start_up_exits_quietly(
    tmp_path: Path, redis_url: str, moment: str, signum: signal.Signals
) -> None:
    wait, slow, workers = MOMENTS[moment]
    path = tmp_path / "slow_import.py"
    path.write_text(SLOW_IMPORT)
    marks = tmp_path / "marks"
    marks.mkdir()
    log = tmp_path / "log"
    command = [sys.executable, "-X", "importtime", "-m", "actors", "run", str(path)]
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            command + (["--workers", "2"] if workers else []),
            stderr=stderr,
            env={**os.environ, "ACTORS_URL": redis_url, "MARKS": str(marks), "SLOW_IMPORT": slow},
        )
    try:
        if wait == "transports":
            imported = re.compile(r"\|\s+transports$", re.M)
            wait_for(lambda: imported.search(log.read_text()), what="transports imported")
        elif wait == "main":
            wait_for(lambda: _marks(marks, "main"), what="the parent imports the file")
        elif wait == "workers":
            wait_for(lambda: len(_marks(marks, "worker")) == 2, what="workers import the file")
        else:
            wait_for(lambda: wait in log.read_text(), what=wait)
        proc.send_signal(signum)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "\n".join(line for line in log.read_text().splitlines() if "import time:" not in line)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert status == (130 if signum == signal.SIGINT else 0), text
    # Workers stopped too, before their parent exited.
    assert not [pid for pid in _marks(marks, "worker") if os.path.exists(f"/proc/{pid}")]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_signal_while_waiting_for_the_node_name_is_a_start_up_one(
    tmp_path: Path, redis_url: str, start: Start, signum: signal.Signals
) -> None:
    path = tmp_path / "fixed.py"
    path.write_text("from actors import ActorSystem\nsystem = ActorSystem(node='fixed')\n")
    start(path, redis_url)  # holds the name
    log = tmp_path / "log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "actors", "run", str(path), "--url", redis_url],
            stderr=stderr,
        )
    try:
        # It runs trio and waits (up to 7 s) for the holder's heartbeat to lapse.
        wait_for(lambda: "is held by" in log.read_text(), what="the wait for the name")
        proc.send_signal(signum)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status == (130 if signum == signal.SIGINT else 0), log.read_text()
    assert "Traceback" not in log.read_text()
