"""What the runtime benchmarks share: the message, key hygiene, results, and the raw limit.

The raw limit is plain ``redis.asyncio`` (with hiredis) draining the same pre-filled
list and stream with no framework: ``LPOP count`` / ``XREADGROUP COUNT`` + ``XACK`` in
batches of :data:`BATCH`, ``json.loads`` of each payload. Nothing can drain a mailbox
in Python much faster, so it is the ceiling the frameworks are measured against.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import redis
import redis.asyncio

__all__ = [
    "BATCH",
    "FILL_CHUNK",
    "PREFIX",
    "Job",
    "Rate",
    "WorkloadTimeout",
    "bench_url",
    "chunks",
    "clean_keys",
    "job_fields",
    "latency_summary",
    "leftovers",
    "raw_list_drain",
    "raw_stream_drain",
]

#: Every key the benchmark creates contains this, so cleaning up never touches others.
PREFIX = "bench-rt"
#: Messages per fetch for every framework that fetches in batches (ours, FastStream batch, raw).
BATCH = 100
#: Messages per round trip while pre-filling a mailbox (not timed).
FILL_CHUNK = 1000
_BODY_SIZE = 100


class WorkloadTimeout(Exception):
    """A workload did not finish within its deadline."""


@attrs.frozen
class Job:
    """The benchmark message: its JSON body is about 100 bytes."""

    id: int
    name: str
    payload: str


def job_fields(i: int) -> dict[str, Any]:
    """The fields of message ``i``, padded so that ``{"id":…,"name":…,"payload":…}`` is ~100 B."""
    name = f"job-{i}"
    bare = len(json.dumps({"id": i, "name": name, "payload": ""}, separators=(",", ":")))
    return {"id": i, "name": name, "payload": "x" * max(0, _BODY_SIZE - bare)}


def chunks(n: int, size: int = FILL_CHUNK) -> Iterator[range]:
    """``range(n)`` cut into consecutive ranges of at most ``size``."""
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


@attrs.define
class Rate:
    """A drain's outcome: messages handled and the seconds it took."""

    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p99 (milliseconds) of latencies given in seconds."""
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "count": len(ordered),
    }


# -- key hygiene (synchronous, between workloads) -----------------------------------


def clean_keys(url: str) -> int:
    """Delete every key containing :data:`PREFIX`; returns how many."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"*{PREFIX}*", count=1000))
        for batch in range(0, len(keys), 500):
            client.delete(*keys[batch : batch + 500])
        return len(keys)
    finally:
        client.close()


def leftovers(url: str, kind: str, name: str, group: str | None = None) -> str | None:
    """What a drained mailbox still holds (entries never taken, or taken and never acked).

    Returns None when the list is empty, or the stream group has nothing new and
    nothing pending; otherwise a short description.
    """
    client = redis.Redis.from_url(url)
    try:
        if kind == "list":
            left = client.llen(name)
            return f"{left} messages left in list {name}" if left else None
        info = {g["name"].decode(): g for g in client.xinfo_groups(name)}
        entry = info.get(group or name)
        if entry is None:
            return f"no group {group or name} on stream {name}"
        pending, lag = entry["pending"], entry.get("lag") or 0
        if pending or lag:
            return f"stream {name}: {pending} pending (unacked), {lag} never read"
        return None
    finally:
        client.close()


# -- the raw limit: redis.asyncio + hiredis, no framework ----------------------------


async def _connect(url: str) -> redis.asyncio.Redis:
    client = redis.asyncio.Redis.from_url(url)
    await client.ping()
    return client


async def raw_list_drain(url: str, name: str, n: int, timeout: float) -> Rate:
    """``LPOP name BATCH`` until the list is empty, ``json.loads`` each message.

    Raises:
        WorkloadTimeout: not drained within ``timeout`` seconds.
    """
    client = await _connect(url)
    count = 0
    try:
        async with asyncio.timeout(timeout):
            start = time.perf_counter()
            while items := await client.lpop(name, BATCH):
                for item in items:
                    json.loads(item)
                count += len(items)
            elapsed = time.perf_counter() - start
    except TimeoutError:
        raise WorkloadTimeout(f"raw list drain: {count}/{n} within {timeout}s") from None
    finally:
        await client.aclose()
    return Rate(count, elapsed)


async def raw_stream_drain(url: str, name: str, n: int, timeout: float) -> Rate:
    """``XREADGROUP COUNT BATCH`` + one ``XACK`` per batch, ``json.loads`` each payload.

    The group is created at id 0 so that it reads the pre-filled entries.

    Raises:
        WorkloadTimeout: not drained within ``timeout`` seconds.
    """
    client = await _connect(url)
    group = f"{PREFIX}-raw"
    await client.xgroup_create(name, group, id="0", mkstream=True)
    count = 0
    try:
        async with asyncio.timeout(timeout):
            start = time.perf_counter()
            while reply := await client.xreadgroup(group, "raw-0", {name: ">"}, count=BATCH):
                entries = reply[0][1]
                if not entries:
                    break
                for _, fields in entries:
                    # Each entry holds one payload field (ours: "message").
                    for value in fields.values():
                        json.loads(value)
                await client.xack(name, group, *(entry_id for entry_id, _ in entries))
                count += len(entries)
            elapsed = time.perf_counter() - start
    except TimeoutError:
        raise WorkloadTimeout(f"raw stream drain: {count}/{n} within {timeout}s") from None
    finally:
        await client.aclose()
    return Rate(count, elapsed)


@contextmanager
def bench_url(url: str | None, *, pin: bool = False) -> Iterator[str]:
    """The Redis URL to benchmark against: ``url``, else ``$REDIS_URL``, else a private
    ``redis-server`` started here and removed on exit
    (:class:`transports.testing.RedisServer`). ``pin`` puts a private server and this
    process on one CPU: far less noise from cross-CPU wakeups."""
    url = url or os.environ.get("REDIS_URL")
    if url is not None:
        yield url
        return
    from transports.testing import RedisServer

    with RedisServer() as server:
        if pin and hasattr(os, "sched_setaffinity"):
            cpu = min(os.sched_getaffinity(0))
            os.sched_setaffinity(server.pid, {cpu})
            os.sched_setaffinity(0, {cpu})
        yield server.url
