"""Round trips per second: our trio client against redis.asyncio (hiredis), same workload.

    python benchmarks/bench_client.py [--n 20000] [--rounds 3]

Uses ``REDIS_URL`` when set (keys ``bench:*`` are overwritten), otherwise starts a
private ``redis-server`` and pins it and the benchmark to one CPU (much steadier
numbers on small machines). Workloads, each on one connection at a time:

* sequential: N x (SET then GET) of 100-byte values, one command per round trip;
* pipelined:  N/100 batches of 100 x (SET + GET), one round trip per batch.

Prints ops/s for both clients (best of ``--rounds``) and the ratio ours/redis.asyncio.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import redis.asyncio
import trio
from _common import bench_url

from transports.redis import from_url

VALUE = b"x" * 100
BATCH = 100


async def ours_sequential(url: str, n: int) -> float:
    async with from_url(url) as client:
        await client.ping()
        start = time.perf_counter()
        for i in range(n):
            key = f"bench:{i % 1000}"
            await client.set(key, VALUE)
            await client.get(key)
        return 2 * n / (time.perf_counter() - start)


async def ours_pipelined(url: str, n: int) -> float:
    async with from_url(url) as client:
        await client.ping()
        start = time.perf_counter()
        for batch in range(n // BATCH):
            pipe = client.pipeline(transaction=False)
            for i in range(BATCH):
                key = f"bench:{(batch * BATCH + i) % 1000}"
                pipe.set(key, VALUE)
                pipe.get(key)
            await pipe.execute()
        return 2 * (n // BATCH) * BATCH / (time.perf_counter() - start)


async def theirs_sequential(url: str, n: int) -> float:
    client = redis.asyncio.from_url(url)
    try:
        await client.ping()
        start = time.perf_counter()
        for i in range(n):
            key = f"bench:{i % 1000}"
            await client.set(key, VALUE)
            await client.get(key)
        return 2 * n / (time.perf_counter() - start)
    finally:
        await client.aclose()


async def theirs_pipelined(url: str, n: int) -> float:
    client = redis.asyncio.from_url(url)
    try:
        await client.ping()
        start = time.perf_counter()
        for batch in range(n // BATCH):
            pipe = client.pipeline(transaction=False)
            for i in range(BATCH):
                key = f"bench:{(batch * BATCH + i) % 1000}"
                pipe.set(key, VALUE)
                pipe.get(key)
            await pipe.execute()
        return 2 * (n // BATCH) * BATCH / (time.perf_counter() - start)
    finally:
        await client.aclose()


def best(run: Callable[[], float], rounds: int) -> float:
    return max(run() for _ in range(rounds))


def on_trio(fn: Callable[[str, int], Awaitable[float]], url: str, n: int) -> Callable[[], float]:
    return lambda: trio.run(fn, url, n)


def on_asyncio(fn: Callable[[str, int], Awaitable[float]], url: str, n: int) -> Callable[[], float]:
    return lambda: asyncio.run(fn(url, n))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="SET+GET pairs per workload")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    options = parser.parse_args()

    with bench_url(None, pin=True) as url:
        import hiredis  # noqa: F401 - redis.asyncio uses it when installed

        print(f"server {url}, n={options.n}, best of {options.rounds}")
        rows = [
            ("sequential", ours_sequential, theirs_sequential),
            ("pipelined x100", ours_pipelined, theirs_pipelined),
        ]
        print(f"{'workload':<16}{'ours ops/s':>14}{'redis.asyncio':>16}{'ratio':>8}")
        for name, ours, theirs in rows:
            ours_rate = best(on_trio(ours, url, options.n), options.rounds)
            their_rate = best(on_asyncio(theirs, url, options.n), options.rounds)
            ratio = ours_rate / their_rate
            print(f"{name:<16}{ours_rate:>14,.0f}{their_rate:>16,.0f}{ratio:>7.2f}x")


if __name__ == "__main__":
    main()
