"""Keyed actors under SIGKILL (issue 16 item 1): three runtime processes own the
partitions of one keyed actor; one is SIGKILLed mid-stream. Every key's messages
carry a sequence number; each handler applies the next one in Redis and records
its handling window. Checked: zero gaps (a message handled before its
predecessor, or never), zero reorderings (which would show as gaps), zero
concurrent handling of a key (overlapping windows), every key complete."""

from __future__ import annotations

import itertools
import textwrap
import time
import zlib
from collections import defaultdict
from pathlib import Path

import pytest
import redis

from actors._codec import encode

from .conftest import Report, Runtime, Tally, wait_for

pytestmark = pytest.mark.chaos

LEASE = 1.0
PARTITIONS = 16
KEYS = 40
STEPS = 60

KEYED_SYSTEM = textwrap.dedent(
    f"""
    import os
    import time

    import trio

    from actors import ActorSystem, KeyedActor

    system = ActorSystem(node=os.environ.get("CHAOS_NODE") or None)
    PID = os.getpid()


    class Counter(KeyedActor):
        partitions = {PARTITIONS}
        lease = {LEASE}
        batch_size = 10

        async def receive(self, seq: int) -> None:
            redis = self.context.redis
            start = time.time()
            last = int(await redis.get("applied:" + self.key) or 0)
            if seq == last + 1:
                await redis.set("applied:" + self.key, seq)
            elif seq <= last:
                await redis.incr("duplicates")  # at-least-once: handled again
            else:
                await redis.rpush("gaps", f"{{self.key}} {{seq}} after {{last}}")
            await trio.sleep(0.002)
            await redis.rpush("windows", f"{{self.key}} {{start}} {{time.time()}} {{PID}}")


    system.actor(Counter, instances=2)
    """
)


def partition_of(key: str) -> str:
    return f"counter:p{zlib.crc32(key.encode()) % PARTITIONS}"


def send(db: redis.Redis, steps: range) -> None:
    """Send steps ``steps`` of every key, in order per key (keys interleaved)."""
    by_box: dict[str, list[bytes]] = defaultdict(list)
    for seq in steps:
        for k in range(KEYS):
            key = f"key{k}"
            by_box[partition_of(key)].append(encode(seq, headers={"actors-key": key}))
    with db.pipeline(transaction=False) as pipe:
        for box, payloads in by_box.items():
            pipe.rpush(box, *payloads)
        pipe.execute()


def applied(db: redis.Redis) -> dict[str, int]:
    return {f"key{k}": int(db.get(f"applied:key{k}") or 0) for k in range(KEYS)}


def overlaps(db: redis.Redis) -> list[str]:
    """Pairs of handling windows of one key that overlap in time."""
    by_key: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for raw in db.lrange("windows", 0, -1):
        key, start, end, pid = raw.decode().split()
        by_key[key].append((float(start), float(end), pid))
    found = []
    for key, windows in by_key.items():
        windows.sort()
        for (_, end, pid), (start, _, other) in itertools.pairwise(windows):
            if start < end:
                found.append(f"{key}: {pid} until {end}, {other} from {start}")
    return found


def test_sigkill_of_an_owner_keeps_every_key_complete_in_order_and_single(
    db_url: str,
    db: redis.Redis,
    tmp_path: Path,
    runtimes: list[Runtime],
    chaos_report: Report,
) -> None:
    file = tmp_path / "keyed_worker.py"
    file.write_text(KEYED_SYSTEM)
    procs = [Runtime(file, db_url, {"CHAOS_NODE": name}) for name in ("a", "b", "c")]
    runtimes += procs
    for proc in procs:
        proc.start()
    send(db, range(1, STEPS // 3 + 1))
    wait_for(lambda: sum(applied(db).values()) >= KEYS * STEPS // 6, 30, "a sixth handled")
    send(db, range(STEPS // 3 + 1, 2 * STEPS // 3 + 1))
    # Kill an owner mid-stream: it holds partitions with messages in flight.
    victim = procs[1]
    victim.kill()
    killed = time.time()
    send(db, range(2 * STEPS // 3 + 1, STEPS + 1))
    wait_for(lambda: min(applied(db).values()) == STEPS, 60, "every key complete")
    recovered = time.time() - killed
    for proc in (procs[0], procs[2]):
        assert proc.terminate() == 0, proc.stderr
    gaps = [g.decode() for g in db.lrange("gaps", 0, -1)]
    assert gaps == []
    assert overlaps(db) == []
    assert set(applied(db).values()) == {STEPS}
    pids = {raw.decode().split()[3] for raw in db.lrange("windows", 0, -1)}
    assert str(victim.pid) in pids  # the victim owned partitions before it died
    duplicates = int(db.get("duplicates") or 0)
    handled = db.llen("windows")
    ids = range(KEYS * STEPS)
    chaos_report(
        f"keyed actor: 1 of 3 runtimes SIGKILLed ({KEYS} keys x {STEPS} steps, "
        f"{PARTITIONS} partitions, lease {LEASE}s)",
        Tally(len(ids), len(ids), duplicates, 0, ()),
        recover_s=recovered,
        gaps=len(gaps),
        overlaps=0,
        handled=handled,
    )
