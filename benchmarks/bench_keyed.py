"""Keyed actors: 10,000 keys over 4 instances against a plain list drain, one invocation.

    python benchmarks/bench_keyed.py [--n 40000] [--keys 10000] [--instances 4]
                                     [--partitions 32] [--rounds 3] [--timeout 120]
                                     [--url URL] [--json [PATH]]

Uses ``--url``, else ``REDIS_URL``, else starts a private ``redis-server`` on a free
port (only keys containing ``bench-rt`` are written and deleted). Each round pre-fills
(not timed) N messages (``Job``, ~100 B of JSON) and times, from the system's start
until the last one is handled:

* plain list drain: one function actor, one instance, on one list mailbox (fetch
  batch 100): the runtime's fastest at-least-once path (the bar's reference); and
  the same with ``--instances`` instances;
* keyed: a :class:`KeyedActor` with ``--partitions`` partitions owned by ``--instances``
  instances (one process), the messages spread over ``--keys`` keys (``key_of``: the
  job id modulo the keys), so every key is activated (``on_start``) once, and handled
  by its activation, in order per key.

They take turns round by round (best of ``--rounds``), so that a noisy spell on a
shared machine hits both alike; the figure that matters is the ratio (bar: >= 50%).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import trio
from _common import BATCH, PREFIX, Job, Rate, bench_url, chunks, clean_keys, job_fields

from actors import ActorSystem, KeyedActor
from actors._codec import encode

_BAR = 0.5


class _Counter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.done = trio.Event()

    def add(self) -> None:
        self.count += 1
        if self.count >= self.n:
            self.done.set()


async def _fill(url: str, target: Any, n: int) -> None:
    """Pre-fill (not timed): ``tell_many`` to a mailbox, or for a keyed actor class, to
    its partitions as ``tell`` routes them (the key in the header)."""
    sender = ActorSystem(url, node=f"{PREFIX}-fill")
    async with sender:
        for part in chunks(n):
            jobs = [Job(**job_fields(i)) for i in part]
            if not (isinstance(target, type) and issubclass(target, KeyedActor)):
                await sender.tell_many(target, jobs)
                continue
            boxes: dict[Any, list[bytes]] = {}
            for job in jobs:
                box, headers = target.route(job, None, None)
                boxes.setdefault(box, []).append(encode(job, headers=headers))
            for box, payloads in boxes.items():
                await sender.transport.send(box, payloads)


async def _time(system: ActorSystem, counter: _Counter, timeout: float) -> Rate:
    with trio.fail_after(timeout):
        start = time.perf_counter()
        async with system:
            await counter.done.wait()
            elapsed = time.perf_counter() - start
    return Rate(counter.count, elapsed)


async def plain(url: str, n: int, timeout: float, instances: int = 1) -> Rate:
    """The plain list drain, by ``instances`` instances."""
    name = f"{PREFIX}.keyed.plain"
    await _fill(url, f"list:{name}", n)
    system = ActorSystem(url, node=f"{PREFIX}-node")
    counter = _Counter(n)

    @system.actor(list=name, name="drain", batch_size=BATCH, instances=instances)
    async def drain(msg: Job) -> None:
        counter.add()

    return await _time(system, counter, timeout)


def keyed_class(keys: int, partitions: int, counter: _Counter) -> type[KeyedActor]:
    class Account(KeyedActor):
        name = f"{PREFIX}.keyed.accounts"
        batch_size = BATCH

        def __init__(self) -> None:
            self.handled = 0

        @classmethod
        def key_of(cls, msg: Job) -> str:
            return f"k{msg.id % keys}"

        async def receive(self, msg: Job) -> None:
            self.handled += 1
            counter.add()

    Account.partitions = partitions
    return Account


async def keyed(
    url: str, n: int, keys: int, instances: int, partitions: int, timeout: float
) -> tuple[Rate, int]:
    """The keyed drain; also returns how many activations were made."""
    counter = _Counter(n)
    cls = keyed_class(keys, partitions, counter)
    started: list[str] = []

    async def on_start(self: KeyedActor) -> None:
        started.append(self.key)

    cls.on_start = on_start  # type: ignore[method-assign]
    await _fill(url, cls, n)
    system = ActorSystem(url, node=f"{PREFIX}-node")
    system.actor(cls, instances=instances)
    rate = await _time(system, counter, timeout)
    return rate, len(set(started))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=40000, help="messages per drain")
    parser.add_argument("--keys", type=int, default=10000)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per drain")
    parser.add_argument("--url", help="Redis URL (default: $REDIS_URL, else a private server)")
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="PATH", help="dump the numbers (- = stdout)"
    )
    options = parser.parse_args()
    best: dict[str, float] = {}
    activations = 0
    with bench_url(options.url) as url:
        print(f"server {url}", file=sys.stderr)
        for round_ in range(options.rounds):
            clean_keys(url)
            rate = trio.run(plain, url, options.n, options.timeout)
            best["plain"] = max(best.get("plain", 0.0), rate.per_second)
            clean_keys(url)
            rate = trio.run(plain, url, options.n, options.timeout, options.instances)
            best["plain_n"] = max(best.get("plain_n", 0.0), rate.per_second)
            clean_keys(url)
            rate, activations = trio.run(
                keyed,
                url,
                options.n,
                options.keys,
                options.instances,
                options.partitions,
                options.timeout,
            )
            best["keyed"] = max(best.get("keyed", 0.0), rate.per_second)
            print(
                f"round {round_ + 1}: plain {best['plain']:,.0f}/s, keyed "
                f"{best['keyed']:,.0f}/s (best so far)",
                file=sys.stderr,
            )
        clean_keys(url)
    ratio = best["keyed"] / best["plain"]
    report = {
        "n": options.n,
        "keys": options.keys,
        "instances": options.instances,
        "partitions": options.partitions,
        "rounds": options.rounds,
        "plain_list_drain_msgs_per_s": best["plain"],
        f"plain_list_drain_{options.instances}_instances_msgs_per_s": best["plain_n"],
        "keyed_msgs_per_s": best["keyed"],
        "ratio_to_plain_n": best["keyed"] / best["plain_n"],
        "activations": activations,
        "ratio": ratio,
        "bar": _BAR,
        "pass": ratio >= _BAR,
    }
    if options.json == "-":
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    print(
        f"\nN={options.n} messages (~100 B JSON) over {options.keys} keys; best of "
        f"{options.rounds}; one process"
    )
    print(f"plain list drain (1 instance)       {best['plain']:>10,.0f} msg/s")
    print(f"plain list drain ({options.instances} instances)      {best['plain_n']:>10,.0f} msg/s")
    print(
        f"keyed ({options.instances} instances, {options.partitions} partitions) "
        f"{best['keyed']:>10,.0f} msg/s  {ratio:.1%} "
        f"{'PASS' if ratio >= _BAR else 'MISS'} (>= {_BAR:.0%} of 1 instance); "
        f"{best['keyed'] / best['plain_n']:.1%} of {options.instances} instances; "
        f"{activations} activations"
    )
    if options.json:
        Path(options.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
