"""The runtime on one Redis server vs on a local Redis Cluster (3 masters, 3 replicas).

    python benchmarks/bench_cluster.py [--n 20000] [--rounds 3] [--json [PATH]]

Starts a private ``redis-server`` and a private local cluster (``transports.testing``;
the cluster nodes run with ``--appendonly yes``, the single server without, as the other
benchmarks do; pass ``--single-appendonly`` to compare like with like). Workloads, as in
``bench_runtime.py``: N messages with a ~100-byte JSON body, pre-filled (not timed), one
function actor handling one message at a time in batches of 100, start-up included:

* W1 list drain (at-least-once: processing list, acked by a script)
* W2 stream drain (consumer group, XACK after handling)

One mailbox lives in one slot, so on the cluster it is served by one master: the
numbers show the cost of routing (slot lookup, per-node pools), not a scale-out.
Best of ``--rounds`` runs; the ratio is cluster / single.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import trio
from _common import BATCH, Job, Rate, chunks, job_fields

from actors import ActorSystem
from transports.testing import LocalCluster, RedisServer


async def drain(url: str, kind: str, name: str, n: int, timeout: float) -> Rate:
    """Fill ``kind:name`` with ``n`` jobs, then time one actor handling them all."""
    async with ActorSystem(url, node="bench-cluster-fill") as sender:
        for part in chunks(n):
            await sender.tell_many(f"{kind}:{name}", [Job(**job_fields(i)) for i in part])
    system = ActorSystem(url, node="bench-cluster")
    count = 0
    done = trio.Event()

    @system.actor(name="drain", batch_size=BATCH, **{kind: name})
    async def handle(msg: Job) -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    with trio.fail_after(timeout):
        start = time.perf_counter()
        async with system:
            await done.wait()
            elapsed = time.perf_counter() - start
    return Rate(count, elapsed)


def best(url: str, kind: str, n: int, rounds: int, timeout: float, tag: str) -> Rate:
    """The fastest of ``rounds`` drains, each on a fresh mailbox."""
    rates = [
        trio.run(drain, url, kind, f"bench-cluster-{tag}-{kind}-{index}", n, timeout)
        for index in range(rounds)
    ]
    return max(rates, key=lambda rate: rate.per_second)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--single-appendonly", action="store_true")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    with RedisServer(appendonly=args.single_appendonly) as single, LocalCluster() as cluster:
        for label, kind in (("W1 list drain", "list"), ("W2 stream drain", "stream")):
            one = best(single.url, kind, args.n, args.rounds, args.timeout, "single")
            many = best(cluster.url, kind, args.n, args.rounds, args.timeout, "cluster")
            results[label] = {
                "single_msgs_per_s": round(one.per_second),
                "cluster_msgs_per_s": round(many.per_second),
                "ratio": round(many.per_second / one.per_second, 2),
            }
    meta: dict[str, Any] = {
        "n": args.n,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "single_appendonly": args.single_appendonly,
    }
    if args.json is not None:
        text = json.dumps({"meta": meta, "results": results}, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    else:
        print(f"N={args.n}, best of {args.rounds}, msgs/s (cluster / single)")
        print(f"{'workload':<18}{'single':>10}{'cluster':>10}{'ratio':>8}")
        for label, row in results.items():
            print(
                f"{label:<18}{row['single_msgs_per_s']:>10}{row['cluster_msgs_per_s']:>10}"
                f"{row['ratio']:>8.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
