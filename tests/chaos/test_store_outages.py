"""Store outages a running system must ride out, and stops they must not stretch
(issue 13, items 4, 5 and 13): Redis out of memory, Redis frozen at SIGTERM, and the
reply mailbox's log lines while Redis is down."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
import trio

from actors import Actor, ActorSystem, AskTimeout, TransportError, list_mailbox, stream_mailbox
from transports.testing import PrivateRedis

from .conftest import Report, Runtime, Tally, WorkLog, failed_nodes, feed, wait_for

pytestmark = pytest.mark.chaos


def _ids_in(db: redis.Redis, key: str) -> list[int]:
    """The message ids stored in a list or a stream of envelopes."""
    if db.type(key) == b"list":
        payloads = db.lrange(key, 0, -1)
    else:
        payloads = [fields[b"message"] for _, fields in db.xrange(key)]
    return [int(json.loads(payload)["body"]) for payload in payloads]


# -- item 4: Redis out of memory is an outage, not a refusal -------------------------------


async def test_out_of_memory_is_waited_out_by_list_and_stream_actors(
    db: redis.Redis, db_url: str, caplog: pytest.LogCaptureFixture, chaos_report: Report
) -> None:
    """Real ``-OOM`` replies (maxmemory 1, noeviction) while a list actor and a stream
    actor handle, crash, record failures, restart and publish results: the system stays
    up, and once the limit is lifted every message is handled and every result stored."""
    caplog.set_level(logging.INFO, logger="actors")
    count, gate, crash_on = 20, 5, 7
    oom = trio.Event()
    handled: dict[str, set[int]] = {"list": set(), "stream": set()}
    crashed: set[str] = set()

    async def step(kind: str, n: int) -> int:
        if n >= gate:  # these are in hand when the store runs out of memory
            await oom.wait()
        if n == crash_on and kind not in crashed:
            crashed.add(kind)
            raise RuntimeError(f"{kind} actor crashes on {n} while Redis is out of memory")
        handled[kind].add(n)
        return n

    class ListWorker(Actor):
        mailbox = list_mailbox("jobs")
        publish_to = (list_mailbox("jobs-done"),)
        batch_size = 4

        async def receive(self, n: int) -> int:
            return await step("list", n)

    class StreamWorker(Actor):
        mailbox = stream_mailbox("orders")
        publish_to = (stream_mailbox("orders-done"),)
        batch_size = 4

        async def receive(self, n: int) -> int:
            return await step("stream", n)

    system = ActorSystem(db_url, node="oom")
    system.actor(ListWorker)
    system.actor(StreamWorker)
    ids = set(range(count))
    async with system:
        await system.tell_many("jobs", sorted(ids))
        await system.tell_many("orders", sorted(ids))
        with trio.fail_after(20):
            while not all(set(range(gate)) <= done for done in handled.values()):
                await trio.sleep(0.02)
        db.config_set("maxmemory-policy", "noeviction")
        db.config_set("maxmemory", 1)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            db.rpush("probe", "x")  # the store really refuses writes now
        oom.set()
        await trio.sleep(3.0)  # the out-of-memory episode
        assert crashed == {"list", "stream"}, "each actor should have crashed during it"
        assert failed_nodes(system.tree()) == []
        db.config_set("maxmemory", 0)
        lifted = trio.current_time()
        with trio.fail_after(30):
            while not (
                handled["list"] == handled["stream"] == ids
                and set(_ids_in(db, "jobs-done")) == ids
                and set(_ids_in(db, "orders-done")) == ids
            ):
                await trio.sleep(0.05)
        recovered = trio.current_time() - lifted
        assert failed_nodes(system.tree()) == []
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "gave up" in m or "dropped" in m], messages
    outage_lines = [m for m in messages if "store unavailable" in m]
    assert outage_lines, "the out-of-memory episode should be logged"
    chaos_report(
        "Redis out of memory (maxmemory 1, noeviction) 3s, crashes during it",
        Tally.of(ids, Counter(handled["list"])),
        recover_s=recovered,
    )


# -- item 5: SIGTERM while Redis is frozen ------------------------------------------------

SHUTDOWN = 5.0  # the actors' shutdown timeout (ChildSpec's default)
EXIT_UNACKED = 75  # documented: stopped, but some messages could not be acked
STOP_SLACK = 4.0  # what a stop may take beyond it (process exit, node record...)


@pytest.mark.parametrize("kind", ["list", "stream"])
def test_sigterm_while_redis_is_frozen_is_bounded_and_says_what_is_unacked(
    kind: str,
    private_redis: PrivateRedis,
    worker_file: Path,
    tmp_path: Path,
    runtimes: list[Runtime],
    chaos_report: Report,
) -> None:
    server = private_redis()
    db = redis.Redis.from_url(server.url)
    log = WorkLog(tmp_path / "work.log")
    env = {
        "CHAOS_LOG": str(log.path),
        "CHAOS_KIND": kind,
        "CHAOS_LEASE": "1.0",
        "CHAOS_INSTANCES": "8",
        "CHAOS_DELAY": "0.05",
        "CHAOS_BATCH": "5",
    }
    ids = range(800)
    first = Runtime(worker_file, server.url, env)
    runtimes.append(first)
    first.start()
    feed(db, kind, ids)
    wait_for(lambda: len(log.done()) >= 40, what="the 8 instances to be busy")
    server.pause()
    try:
        assert first.process is not None
        began = time.monotonic()
        first.process.send_signal(15)
        try:
            status = first.process.wait(SHUTDOWN + STOP_SLACK)
        except subprocess.TimeoutExpired:
            first.stop_now()
            pytest.fail(
                f"SIGTERM with Redis frozen took more than {SHUTDOWN + STOP_SLACK}s:"
                f"\n{first.stderr[-3000:]}"
            )
        took = time.monotonic() - began
        first.stop_now()  # reaps it and its stderr
    finally:
        server.resume()
    last = first.stderr.strip().splitlines()[-1]
    found = re.search(r"stopped; (\d+) messages? could not be acked and will be redelivered", last)
    assert found, first.stderr[-3000:]
    assert status == EXIT_UNACKED, first.stderr[-3000:]
    unacked = int(found.group(1))
    assert unacked > 0
    # Nothing is lost: a new runtime gets every message that was not acked.
    second = Runtime(worker_file, server.url, env)
    runtimes.append(second)
    second.start()
    wait_for(lambda: set(ids) <= set(log.done()), timeout=60, what="every message handled")
    second.terminate()
    tally = Tally.of(set(ids), log.done())
    assert tally.lost == 0
    db.close()
    chaos_report(
        f"SIGTERM with Redis frozen (SIGSTOP), 8 instances busy ({kind})",
        tally,
        recover_s=None,
        stop_s=round(took, 2),
        unacked=unacked,
    )


# -- item 13: one line when an outage starts and one when it ends --------------------------


async def test_the_reply_mailbox_logs_an_outage_once_and_its_end_once(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="actors")
    server = private_redis()
    system = ActorSystem(server.url, node="replies")

    @system.actor(list="echo")
    async def echo(n: int) -> int:
        return n

    async with system:
        assert await system.ask("echo", 1) == 1
        await trio.to_thread.run_sync(server.kill)
        await trio.sleep(5.0)  # down: the reply mailbox keeps trying all along
        await trio.to_thread.run_sync(server.start)
        with trio.fail_after(30):
            while True:
                try:
                    assert await system.ask("echo", 2, timeout=1.0) == 2
                    break
                except (TransportError, AskTimeout):  # the store is coming back
                    await trio.sleep(0.1)
        await trio.sleep(1.0)  # the reader sees the store again, and says so
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reply mailbox")]
    down = [line for line in lines if "unavailable" in line]
    up = [line for line in lines if "reachable again" in line]
    assert (len(down), len(up)) == (1, 1), lines


MANY_ACTORS = """
from actors import ActorSystem

system = ActorSystem()
for index in range(10):
    for kind in ("list", "stream"):

        async def idle(n: int) -> None: ...

        idle.__name__ = f"{kind}{index}"
        system.actor(**{kind: f"{kind}-{index}"})(idle)
"""


def test_sigterm_while_redis_is_frozen_stops_many_actors_together(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """Twenty idle actors: their stops overlap under one deadline, so the whole stop
    takes the shutdown timeout, not a part of it per actor."""
    server = private_redis()
    system_file = tmp_path / "many.py"
    system_file.write_text(MANY_ACTORS)
    process = subprocess.Popen(
        [sys.executable, "-m", "actors", "run", str(system_file), "--url", server.url],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "actor system running" in line:
                break
        time.sleep(0.5)  # every actor waits for messages
        server.pause()
        began = time.monotonic()
        process.send_signal(15)
        try:
            process.wait(SHUTDOWN + STOP_SLACK)
        except subprocess.TimeoutExpired:
            pytest.fail(f"SIGTERM with Redis frozen took more than {SHUTDOWN + STOP_SLACK}s")
        took = time.monotonic() - began
    finally:
        server.resume()
        process.kill()
        process.communicate()  # reaps it and closes its stderr
    assert took <= SHUTDOWN + STOP_SLACK
