"""Clients outside trio: ``actors.client`` against FastStream and plain redis-py.

    python benchmarks/bench_clients.py [--n 5000] [--m 500] [--rounds 3] [--json]

Uses ``REDIS_URL`` when set, otherwise starts a private ``redis-server``. One invocation
runs, each on one connection, sequentially (one message per round trip, as a web
request handler sends):

* tell: ``n`` sends of a ~100-byte job to a list nobody consumes meanwhile, with the
  blocking ``Client.tell``, the asyncio ``AsyncClient.tell``, FastStream's
  ``broker.publish(list=...)`` and a plain redis-py ``RPUSH`` of the same envelope (the
  floor: no client logic at all);
* ask: ``m`` round trips to an actor that replies with the job's id, served by
  ``python -m actors run`` in a subprocess, with ``Client.ask`` and ``AsyncClient.ask``;
  and FastStream's ``broker.request`` to a FastStream subscriber (its own process, the
  same work) for comparison.

Prints msgs/s for the tells and p50/p99 latency for the asks (best of ``--rounds``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
from _common import Job, bench_url, job_fields, latency_summary

from actors.client import AsyncClient, Client

HERE = Path(__file__).parent
SINK = "list:bench-clients.tells"  # nobody consumes it while the tells are timed
ANSWER = "list:bench-clients.answer"
FS_LIST = "bench-clients.fs"


def _job(i: int) -> Job:
    return Job(**job_fields(i))


def tell_sync(url: str, n: int) -> float:
    with Client(url) as client:
        start = time.perf_counter()
        for i in range(n):
            client.tell(SINK, _job(i))
        rate = n / (time.perf_counter() - start)
    redis.Redis.from_url(url).delete(SINK.removeprefix("list:"))
    return rate


def tell_async(url: str, n: int) -> float:
    async def run() -> float:
        async with AsyncClient(url) as client:
            start = time.perf_counter()
            for i in range(n):
                await client.tell(SINK, _job(i))
            return n / (time.perf_counter() - start)

    rate = asyncio.run(run())
    redis.Redis.from_url(url).delete(SINK.removeprefix("list:"))
    return rate


def tell_redis_py(url: str, n: int) -> float:
    from actors._codec import encode  # the same envelope the clients write

    r = redis.Redis.from_url(url)
    try:
        payloads = [encode(_job(i)) for i in range(n)]
        start = time.perf_counter()
        for payload in payloads:
            r.rpush("bench-clients.raw", payload)
        rate = n / (time.perf_counter() - start)
        r.delete("bench-clients.raw")
        return rate
    finally:
        r.close()


def tell_faststream(url: str, n: int) -> float:
    from _faststream_workloads import JobModel
    from faststream.redis import RedisBroker

    async def run() -> float:
        broker = RedisBroker(url, logger=None)
        async with broker:
            start = time.perf_counter()
            for i in range(n):
                await broker.publish(JobModel(**job_fields(i)), list=FS_LIST)
            return n / (time.perf_counter() - start)

    rate = asyncio.run(run())
    redis.Redis.from_url(url).delete(FS_LIST)
    return rate


def ask_sync(url: str, m: int) -> list[float]:
    samples = []
    with Client(url) as client:
        for i in range(m):
            start = time.perf_counter()
            reply = client.ask(ANSWER, _job(i), reply_type=int, timeout=5.0)
            samples.append(time.perf_counter() - start)
            assert reply == i, reply
    return samples


def ask_async(url: str, m: int) -> list[float]:
    async def run() -> list[float]:
        samples = []
        async with AsyncClient(url) as client:
            for i in range(m):
                start = time.perf_counter()
                reply = await client.ask(ANSWER, _job(i), reply_type=int, timeout=5.0)
                samples.append(time.perf_counter() - start)
                assert reply == i, reply
        return samples

    return asyncio.run(run())


def ask_faststream(url: str, m: int) -> list[float]:
    from _faststream_workloads import faststream_ask

    return asyncio.run(faststream_ask(url, "bench-clients.fs-ask", m, 20, 120.0))


def _serve(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ACTORS_URL": url, "PYTHONPATH": os.pathsep.join([str(HERE.parent)])}
    return subprocess.Popen(
        [sys.executable, "-m", "actors", "run", str(HERE / "_clients_system.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_served(url: str) -> None:
    deadline = time.monotonic() + 30
    with Client(url) as client:
        while True:
            try:
                client.ask(ANSWER, _job(0), reply_type=int, timeout=1.0)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--n", type=int, default=5000, help="tells per client")
    parser.add_argument("--m", type=int, default=500, help="asks per client")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON report")
    args = parser.parse_args()
    with bench_url(args.url) as url:
        tells: dict[str, float] = {}
        asks: dict[str, dict[str, float]] = {}
        server = _serve(url)
        try:
            _wait_served(url)
            for _ in range(args.rounds):  # alternate the clients inside each round
                for name, fn in (
                    ("actors.Client", tell_sync),
                    ("actors.AsyncClient", tell_async),
                    ("faststream publish", tell_faststream),
                    ("redis-py rpush", tell_redis_py),
                ):
                    tells[name] = max(tells.get(name, 0.0), fn(url, args.n))
                for name, ask in (
                    ("actors.Client", ask_sync),
                    ("actors.AsyncClient", ask_async),
                    ("faststream request", ask_faststream),
                ):
                    summary = latency_summary(ask(url, args.m))
                    best = asks.get(name)
                    if best is None or summary["p50_ms"] < best["p50_ms"]:
                        asks[name] = summary
        finally:
            server.terminate()
            server.wait(timeout=30)
    report: dict[str, Any] = {"tell_msgs_per_s": tells, "ask_latency": asks}
    if args.json:
        print(json.dumps(report))
        return
    floor = tells["redis-py rpush"]
    print(f"tell, {args.n} sequential sends (best of {args.rounds}):")
    for name, rate in tells.items():
        print(f"  {name:22} {rate:9,.0f} msgs/s  ({rate / floor:.0%} of plain redis-py)")
    print(f"ask, {args.m} sequential round trips (best p50 of {args.rounds}):")
    for name, s in asks.items():
        print(f"  {name:22} p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms")


if __name__ == "__main__":
    main()
