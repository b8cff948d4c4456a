"""Runtime processes killed with SIGKILL or stopped with SIGTERM under load, and slow
handlers that must keep their lease: every message id is counted."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
import trio

from actors import ActorSystem, list_mailbox, stream_mailbox

from .conftest import Report, Runtime, Tally, WorkLog, failed_nodes, feed, wait_for

pytestmark = pytest.mark.chaos

LEASE = 1.0


def _id_of(payload: bytes) -> int:
    return int(json.loads(payload)["body"])


def held_ids(db: redis.Redis, kind: str, consumer_prefix: str = "") -> set[int]:
    """Ids fetched and not acked: in processing lists, or pending in the group
    (except entries parked under ``{delayed}``, which are due retries)."""
    if kind == "list":
        ids: set[int] = set()
        for key in db.scan_iter(match=f"{{jobs}}:processing:{consumer_prefix}*"):
            ids.update(_id_of(p) for p in db.lrange(key, 0, -1))
        return ids
    pending = db.xpending_range("jobs", "jobs", "-", "+", 10_000)
    entry_ids = [
        p["message_id"]
        for p in pending
        if p["consumer"].decode().startswith(consumer_prefix) and p["consumer"] != b"{delayed}"
    ]
    out = set()
    for entry_id in entry_ids:
        for _, fields in db.xrange("jobs", entry_id, entry_id):
            out.add(_id_of(fields[b"message"]))
    return out


def env_for(log: WorkLog, kind: str, **extra: str) -> dict[str, str]:
    return {
        "CHAOS_LOG": str(log.path),
        "CHAOS_KIND": kind,
        "CHAOS_LEASE": str(LEASE),
        **extra,
    }


# -- 1. SIGKILL in the middle of a batch ----------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
def test_sigkill_mid_batch_then_restart_loses_nothing(
    kind: str,
    db_url: str,
    db: redis.Redis,
    worker_file: Path,
    runtimes: list[Runtime],
    tmp_path: Path,
    chaos_report: Report,
) -> None:
    instances, batch = 3, 10
    log = WorkLog(tmp_path / "work.log")
    env = env_for(
        log, kind, CHAOS_INSTANCES=str(instances), CHAOS_BATCH=str(batch), CHAOS_DELAY="0.01"
    )
    ids = range(600)
    feed(db, kind, ids)
    first = Runtime(worker_file, db_url, env)
    runtimes.append(first)
    first.start()
    wait_for(lambda: sum(log.done().values()) >= 155, 30, "155 messages handled")
    # Kill it mid-batch, with handled messages not acked yet (not in the few ms
    # between one batch's acks and the next's first message).
    wait_for(lambda: bool(set(log.done()) & held_ids(db, kind)), 30, "a batch half done")
    first.kill()
    handled_before = log.done()
    at_risk = held_ids(db, kind)  # fetched by the dead process, never acked
    assert at_risk, "the kill should have caught batches in flight"
    # Mid-batch: some of what it holds was handled already, just not acked yet.
    assert set(handled_before) & at_risk

    second = Runtime(worker_file, db_url, env)
    runtimes.append(second)
    restarted = time.time()
    second.start()
    wait_for(lambda: set(ids) <= set(log.done()), 60, "every message handled")
    assert second.terminate() == 0
    assert held_ids(db, kind) == set()

    done = log.done()
    tally = Tally.of(ids, done)
    duplicated = {n for n, c in done.items() if c > 1}
    assert tally.lost == 0, tally.lost_ids
    # Only what the dead process handled but had not acked yet is handled again.
    assert duplicated <= set(handled_before) & at_risk
    assert tally.duplicated <= instances * batch
    events = [e for e in log.events() if e.kind == "done" and e.pid == second.pid]
    recovered = max(e.at for e in events if e.id in at_risk) - restarted
    chaos_report(
        f"SIGKILL runtime mid-batch ({kind}, {instances} instances x batch {batch})",
        tally,
        recover_s=recovered,
        in_flight_at_kill=len(at_risk),
    )


# -- 5a. one of two processes sharing a mailbox dies ------------------------------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
def test_survivor_takes_over_a_dead_peers_messages_after_the_lease(
    kind: str,
    db_url: str,
    db: redis.Redis,
    worker_file: Path,
    runtimes: list[Runtime],
    tmp_path: Path,
    chaos_report: Report,
) -> None:
    log = WorkLog(tmp_path / "work.log")
    common = {"CHAOS_INSTANCES": "2", "CHAOS_BATCH": "5", "CHAOS_DELAY": "0.03"}
    victim = Runtime(worker_file, db_url, env_for(log, kind, CHAOS_NODE="victim", **common))
    survivor = Runtime(worker_file, db_url, env_for(log, kind, CHAOS_NODE="survivor", **common))
    runtimes += [victim, survivor]
    victim.start()
    survivor.start()
    ids = range(400)
    feed(db, kind, ids)
    wait_for(
        lambda: (
            len({e.pid for e in log.events() if e.kind == "done"}) == 2
            and sum(log.done().values()) >= 60
        ),
        30,
        "both processes at work",
    )
    victim.kill()
    killed = time.time()
    orphans = held_ids(db, kind, "victim/")
    assert orphans, "the victim should have died holding messages"

    def taken_over() -> list[float]:
        return [
            e.at
            for e in log.events()
            if e.kind == "start" and e.pid == survivor.pid and e.id in orphans and e.at >= killed
        ]

    wait_for(lambda: len(taken_over()) >= len(orphans), 30, "the orphans taken over")
    starts = taken_over()
    first_takeover, all_taken = min(starts) - killed, max(starts) - killed
    wait_for(lambda: set(ids) <= set(log.done()), 60, "every message handled")
    assert survivor.terminate() == 0
    tally = Tally.of(ids, log.done())
    assert tally.lost == 0, tally.lost_ids
    # The lease must run out first (the victim renewed it up to lease/3 before dying),
    # then the survivor's next maintenance (every lease/2 of fetching) takes over.
    assert LEASE * 2 / 3 - 0.1 <= first_takeover <= LEASE * 1.5 + 1.0
    chaos_report(
        f"SIGKILL 1 of 2 runtimes sharing a {kind} mailbox (lease {LEASE}s)",
        tally,
        recover_s=first_takeover,
        orphans=len(orphans),
        all_orphans_taken_s=round(all_taken, 3),
    )


# -- 5b. a slow handler keeps its lease -------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_slow_handler_keeps_its_lease(kind: str, db_url: str, chaos_report: Report) -> None:
    starts: Counter[int] = Counter()
    done: Counter[int] = Counter()
    box = (
        list_mailbox("slow", lease=LEASE) if kind == "list" else stream_mailbox("slow", lease=LEASE)
    )
    system = ActorSystem(db_url)

    @system.actor(mailbox=box, instances=2, batch_size=1)
    async def work(n: int) -> None:
        starts[n] += 1
        await trio.sleep(3 * LEASE if n == 0 else 0.01)
        done[n] += 1

    ids = range(20)
    with trio.fail_after(30):
        async with system:
            await system.tell_many(box, list(ids))
            while set(done) != set(ids):
                await trio.sleep(0.05)
            # Another lease and a half: a takeover would show by now.
            await trio.sleep(1.5 * LEASE)
            assert failed_nodes(system.tree()) == []
    assert starts[0] == 1, f"the slow message was started {starts[0]} times"
    assert all(count == 1 for count in starts.values()), starts
    tally = Tally.of(ids, done)
    assert tally.lost == 0 and tally.duplicated == 0
    chaos_report(f"handler runs 3x the lease ({kind}), second consumer idle", tally, recover_s=None)


# -- 7. graceful SIGTERM under load -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
def test_sigterm_under_load_finishes_in_flight_and_leaves_nothing_stranded(
    kind: str,
    db_url: str,
    db: redis.Redis,
    worker_file: Path,
    runtimes: list[Runtime],
    tmp_path: Path,
    chaos_report: Report,
) -> None:
    log = WorkLog(tmp_path / "work.log")
    env = env_for(log, kind, CHAOS_INSTANCES="3", CHAOS_BATCH="10", CHAOS_DELAY="0.03")
    ids = range(500)
    feed(db, kind, ids)
    first = Runtime(worker_file, db_url, env)
    runtimes.append(first)
    first.start()
    wait_for(lambda: sum(log.done().values()) >= 60, 30, "60 messages handled")
    assert first.terminate() == 0
    # In-flight messages finished: everything started was done, and acked.
    assert set(log.started()) == set(log.done())
    assert held_ids(db, kind) == set()
    if kind == "list":
        assert [k for k in db.scan_iter(match="{jobs}:processing:*") if db.llen(k)] == []
    else:
        # Released entries wait under {delayed} as due retries; nothing else is pending.
        pending = db.xpending_range("jobs", "jobs", "-", "+", 10_000)
        parked = {p["message_id"] for p in pending}
        assert {p["consumer"] for p in pending} <= {b"{delayed}"}
        assert parked <= set(db.zrange("{jobs}:delayed:jobs", 0, -1))
    handled_first = len(log.done())
    assert handled_first < len(ids), "the stop should have come before the end"

    second = Runtime(worker_file, db_url, env)
    runtimes.append(second)
    restarted = time.time()
    second.start()
    wait_for(lambda: set(ids) <= set(log.done()), 60, "every message handled")
    assert second.terminate() == 0
    tally = Tally.of(ids, log.done())
    assert tally.lost == 0, tally.lost_ids
    assert tally.duplicated == 0
    resumed = min(e.at for e in log.events() if e.pid == second.pid) - restarted
    chaos_report(
        f"SIGTERM runtime under load ({kind}), then restart",
        tally,
        recover_s=resumed,
        handled_before_stop=handled_first,
    )
