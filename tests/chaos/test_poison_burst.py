"""A burst of poison messages through ``python -m actors run`` on a real Redis, with the
default settings: the system stays up, every good message is handled exactly once,
every poison one is dead-lettered after ``max_deliveries`` attempts, and each message's
fate is logged once (one traceback per dead letter, one line per retry)."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest
import redis

from .conftest import Runtime, WorkLog, feed, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

#: One actor on ``jobs`` (a list or a stream, by $CHAOS_KIND) with every setting at its
#: default: a negative number is poison (a ValueError at every attempt), any other is
#: noted in $CHAOS_LOG as handled.
POISON_SYSTEM = textwrap.dedent(
    """
    import os
    import time

    from actors import ActorSystem

    LOG = os.open(os.environ["CHAOS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    KIND = os.environ["CHAOS_KIND"]

    system = ActorSystem()


    @system.actor(**{KIND: "jobs"})
    async def work(n: int) -> None:
        if n < 0:
            raise ValueError(f"poison {n}")
        os.write(LOG, f"done {n} {os.getpid()} {time.time():.6f}\\n".encode())
    """
)


def dead_letters(db: redis.Redis) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in db.xrange("{jobs}:dead", "-", "+")]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("kind", ["list", "stream"])
def test_a_poison_burst_with_the_defaults_costs_only_the_poison(
    kind: str, workers: int, db_url: str, db: redis.Redis, tmp_path: Path
) -> None:
    count = 1000
    path = tmp_path / "poison.py"
    path.write_text(POISON_SYSTEM)
    log = WorkLog(tmp_path / "work.log")
    good = range(count)
    poison = [-n - 1 for n in good]
    feed(db, kind, [m for pair in zip(good, poison, strict=True) for m in pair])

    args = ["--workers", str(workers)] if workers > 1 else []
    runtime = Runtime(path, db_url, {"CHAOS_LOG": str(log.path), "CHAOS_KIND": kind}, args)
    try:
        runtime.start()

        def finished() -> bool:
            process = runtime.process
            assert process is not None and process.poll() is None, runtime.stderr[-3000:]
            return db.xlen("{jobs}:dead") >= count and sum(log.done().values()) >= count

        wait_for(finished, 50, "every good message handled and every poison one dead-lettered")
        status = runtime.terminate(signum=signal.SIGINT)
    finally:
        runtime.stop_now()
    assert status == 0, runtime.stderr[-3000:]

    done = log.done()
    assert sorted(done) == list(good)  # none lost...
    assert set(done.values()) == {1}  # ...none handled twice
    letters = dead_letters(db)
    assert len(letters) == count
    assert {int(f[b"attempts"]) for f in letters} == {3}
    assert {f[b"error"].decode() for f in letters} == {f"poison {n}" for n in poison}
    if kind == "list":
        assert db.llen("jobs") == 0
    else:
        assert db.xpending("jobs", "jobs")["pending"] == 0

    lines = runtime.stderr.splitlines()
    assert sum("message dead-lettered" in line for line in lines) == count
    assert sum(line.startswith("Traceback (most recent call last)") for line in lines) == count
    assert sum("retrying in" in line for line in lines) == 2 * count  # attempts 1 and 2
    assert not any(" crashed" in line or "gave up" in line for line in lines)
