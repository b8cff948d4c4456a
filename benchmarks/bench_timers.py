"""Timer firing delay under load: how late delayed messages and actor timers arrive while
a list mailbox takes a steady stream of messages on the same Redis.

    python benchmarks/bench_timers.py [--rate 50000] [--seconds 10] [--workers 2]
                                      [--in-process] [--url URL] [--json [PATH]]

Uses ``--url``, else ``REDIS_URL``, else starts a private ``redis-server`` (only keys
containing ``bench-rt`` are written and deleted). The load: a process ``RPUSH``-es
pre-encoded messages to a list at ``--rate`` per second (a batch every 10 ms), handled
by ``python -m actors run --workers N`` (or, with ``--in-process``, by 2 instances of an
actor in the measured system itself, which then competes with it for its event loop).
The measured system runs:

* a probe fed with ``tell(probe, due, delay=d)``, d from 0.1 to 0.5 s, 50 a second, sent
  by a second system (as another process would: the promoter of the runtime that
  consumes finds them through ``{actors:scheduled}``); lateness = the wall time the
  handler runs minus the due time;
* a ticker with ``start_timer(key, 0.05, 0)``; its error = the time between two ticks
  handled minus 0.05 s.

Reports p50/p99/mean (ms) of each, the load sent per second (the machine may not reach
``--rate``) and, in process, the load handled per second. No figure is asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import trio
from _common import PREFIX, bench_url, clean_keys, latency_summary

from actors import Actor, ActorSystem, Supervisor, handler, list_mailbox
from actors._codec import encode

LOAD = f"{PREFIX}-timers-load"
PROBE = f"{PREFIX}-timers-probe"
TICKS = f"{PREFIX}-timers-ticks"
TICK = 0.05


def produce(url: str, rate: int, seconds: float) -> None:
    """RPUSH ``rate`` messages a second to the load list for ``seconds`` (another process)."""
    client = redis.Redis.from_url(url)
    batch = [encode(0)] * max(1, rate // 100)
    start = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        client.rpush(LOAD, *batch)
        sent += len(batch)
        ahead = sent / rate - elapsed
        if ahead > 0:
            time.sleep(ahead)
    client.set(f"{LOAD}:sent", sent)
    client.close()


class Ticker(Actor):
    mailbox = list_mailbox(TICKS)
    late: list[float] = []

    async def on_start(self) -> None:
        self.last: float | None = None
        self.start_timer("tick", TICK, 0)

    @handler
    async def tick(self, msg: int) -> None:
        now = trio.current_time()
        if self.last is not None:
            Ticker.late.append(now - self.last - TICK)
        self.last = now


WORKERS_SYSTEM = f"""
from actors import ActorSystem

system = ActorSystem()


@system.actor(list={LOAD!r}, instances=2, batch_size=500)
async def load(n: int) -> None:
    pass
"""


async def measure(
    url: str, rate: int, seconds: float, workers: int, in_process: bool
) -> dict[str, Any]:
    handled = 0
    probe_late: list[float] = []
    system = ActorSystem(url, node=f"{PREFIX}-timers")

    if in_process:

        @system.actor(list=LOAD, instances=2, batch_size=500)
        async def load(n: int) -> None:
            nonlocal handled
            handled += 1

    @system.actor(list=PROBE)
    async def probe(due: float) -> None:
        probe_late.append(time.time() - due)

    system.supervise(Supervisor([Ticker.spec()]))
    Ticker.late = []
    sender = ActorSystem(url, node=f"{PREFIX}-timers-sender")
    producer = multiprocessing.get_context("spawn").Process(
        target=produce, args=(url, rate, seconds), daemon=True
    )
    serving: trio.Process | None = None
    if not in_process:
        module = Path(tempfile.mkdtemp()) / "bench_timers_load.py"
        module.write_text(WORKERS_SYSTEM)
        command = [sys.executable, "-m", "actors", "run", str(module), "--url", url]
        serving = await trio.lowlevel.open_process(
            [*command, "--workers", str(workers)], stderr=subprocess.DEVNULL
        )
    async with system, sender:
        producer.start()
        start = time.perf_counter()
        end = trio.current_time() + seconds
        while trio.current_time() < end:
            delay = random.uniform(0.1, 0.5)
            await sender.tell(f"list:{PROBE}", time.time() + delay, delay=delay)
            await trio.sleep(0.02)
        await trio.sleep(0.6)  # the last probes fall due
        elapsed = time.perf_counter() - start
        await trio.to_thread.run_sync(producer.join, 30)
        sent = int(await system.redis.get(f"{LOAD}:sent") or 0)
        backlog = int(await system.redis.llen(LOAD))
    if serving is not None:
        serving.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            await serving.wait()
    return {
        "delayed_tell": latency_summary(probe_late),
        "actor_timer": latency_summary(Ticker.late),
        "load": "in process" if in_process else f"--workers {workers}",
        "load_handled_per_s": round(handled / elapsed) if in_process else None,
        "load_sent_per_s": round(sent / seconds),
        "load_backlog_at_end": backlog,
        "target_rate": rate,
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50_000, help="load messages per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the load runs")
    parser.add_argument("--workers", type=int, default=2, help="processes handling the load")
    parser.add_argument(
        "--in-process", action="store_true", help="handle the load in the measured system"
    )
    parser.add_argument("--url", help="Redis URL (default: REDIS_URL, else a private server)")
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="PATH", help="dump the numbers (- = stdout)"
    )
    options = parser.parse_args()
    with bench_url(options.url) as url:
        clean_keys(url)
        try:
            report = trio.run(
                measure, url, options.rate, options.seconds, options.workers, options.in_process
            )
        finally:
            clean_keys(url)
    if options.json == "-":
        json.dump(report, sys.stdout, indent=2)
        return 0
    if options.json:
        Path(options.json).write_text(json.dumps(report, indent=2))
    handled = report["load_handled_per_s"]
    print(
        f"load ({report['load']}): {report['load_sent_per_s']:,} msg/s sent "
        f"(target {options.rate:,})"
        + ("" if handled is None else f", {handled:,} msg/s handled")
        + f", {report['load_backlog_at_end']:,} waiting at the end"
    )
    for name in ("delayed_tell", "actor_timer"):
        figures = report[name]
        what = "late" if name == "delayed_tell" else "off its period"
        print(
            f"{name:>12}: p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
            f"mean {figures['mean_ms']:.1f} ms {what} ({figures['count']} samples)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
