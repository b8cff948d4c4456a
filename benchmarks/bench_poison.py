"""Poison messages: what 1 failing message in 100, or in 10, costs a drain, one invocation.

    python benchmarks/bench_poison.py [--n 20000] [--rounds 3] [--timeout 60] [--url URL]
                                      [--rates 0,100,10] [--kinds list,stream] [--json [PATH]]

Uses ``--url``, else ``REDIS_URL``, else starts a private ``redis-server`` on a free
port (only keys containing ``bench-rt`` are written and deleted). Each round pre-fills
a mailbox (not timed) with N good messages (``Job``, ~100 B of JSON) and, for a rate r,
one poison message after every r-th good one (N / r of them; rate 0 is the clean
drain), then runs one function actor with the default settings (``@system.actor``:
``max_deliveries=3``, the default supervisor) whose handler raises ``ValueError`` for
a poison message. The workloads (list and stream, each rate) take turns round by round,
so that a noisy spell on a shared machine hits each alike; best of ``--rounds``.

Per workload it reports:

* good msg/s: N divided by the time from starting the system until the last good
  message is handled (start-up included, as in ``bench_runtime.py``);
* the ratio of that to the clean drain of the same mailbox kind, measured in the same
  run (the bars: >= 50% for 1 in 100, >= 25% for 1 in 10);
* dead-lettered: the time from the start until every poison message is in the dead
  letters;
* system restarts: how often the whole system stopped (a root supervisor failure: the
  process would exit 1) and was started again here, as a process manager would.

Every round is bounded by ``--timeout`` seconds: a drain that collapses is reported
with what it managed (``TIMEOUT``), not waited out. Good messages handled twice or never
are reported as errors. Exit status 1 when a round timed out or lost or duplicated a
good message.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import trio
from _common import BATCH, PREFIX, Job, bench_url, clean_keys, job_fields

from actors import ActorSystem

#: How often the dead letters are counted while a round runs (seconds).
_POLL = 0.02
_POISON = "poison"


def messages(n: int, rate: int) -> list[Job]:
    """N good jobs (ids 0..N-1), with a poison job (negative id) after every ``rate``-th."""
    out: list[Job] = []
    for i in range(n):
        out.append(Job(**job_fields(i)))
        if rate and (i + 1) % rate == 0:
            out.append(Job(id=-(i + 1), name=_POISON, payload=""))
    return out


@attrs.define
class Outcome:
    """What one round measured (seconds from the start of the first system)."""

    good: int  # distinct good messages handled
    poison: int  # poison messages sent
    duplicates: int  # good messages handled more than once
    last_good: float | None  # when the last good message was handled
    all_dead: float | None  # when every poison message was dead-lettered
    dead: int  # poison messages in the dead letters at the end
    elapsed: float  # how long the round ran
    system_restarts: int
    failures: list[str] = attrs.Factory(list)

    @property
    def timed_out(self) -> bool:
        return self.last_good is None or (self.poison > 0 and self.all_dead is None)


async def _fill(url: str, address: str, jobs: Sequence[Job]) -> None:
    sender = ActorSystem(url, node=f"{PREFIX}-fill")
    async with sender:
        for start in range(0, len(jobs), 1000):
            await sender.tell_many(address, list(jobs[start : start + 1000]))


async def drain_round(url: str, kind: str, name: str, n: int, rate: int, timeout: float) -> Outcome:
    """One round: fill the mailbox, then run the actor until every good message is
    handled and every poison one dead-lettered, or ``timeout`` seconds."""
    address = f"{kind}:{name}"
    jobs = messages(n, rate)
    poison = len(jobs) - n
    await _fill(url, address, jobs)
    seen: set[int] = set()
    duplicates = 0
    done = trio.Event()
    outcome = Outcome(0, poison, 0, None, None, 0, 0.0, 0)
    start = time.perf_counter()

    def build() -> ActorSystem:
        # The same node name each time: a restarted system takes its unacked messages
        # back at once, as a restarted process of that name does.
        system = ActorSystem(url, node=f"{PREFIX}-poison")

        @system.actor(name="drain", batch_size=BATCH, **{kind: name})
        async def drain(msg: Job) -> None:
            nonlocal duplicates
            if msg.name == _POISON:
                raise ValueError(f"poison message {msg.id}")
            if msg.id in seen:
                duplicates += 1
                return
            seen.add(msg.id)
            if len(seen) == n:
                outcome.last_good = time.perf_counter() - start

        return system

    async def watch(system: ActorSystem) -> None:
        spec = system.resolve(address)
        while True:
            if outcome.last_good is not None and outcome.all_dead is not None:
                done.set()
                return
            if poison and outcome.all_dead is None:
                outcome.dead = (await system.transport.mailbox_stats(spec)).dead
                if outcome.dead >= poison:
                    outcome.all_dead = time.perf_counter() - start
            elif not poison:
                outcome.all_dead = outcome.last_good
            await trio.sleep(_POLL)

    with trio.move_on_after(timeout):
        while not done.is_set():
            try:
                async with build() as system, trio.open_nursery() as nursery:
                    nursery.start_soon(watch, system)
                    await done.wait()
                    nursery.cancel_scope.cancel()
            except Exception as exc:  # the root supervisor gave up: start it again
                outcome.system_restarts += 1
                if not outcome.failures:  # the first says it: the others are alike
                    outcome.failures.append(f"{type(exc).__name__}: {exc}"[:200])
    outcome.elapsed = time.perf_counter() - start
    outcome.good = len(seen)
    outcome.duplicates = duplicates
    return outcome


# -- running the workloads ----------------------------------------------------------


def _label(kind: str, rate: int) -> str:
    return f"{kind} {'clean' if rate == 0 else f'1 in {rate}'}"


class Bench:
    """Runs every workload ``rounds`` times, taking turns; keeps the best of each."""

    def __init__(self, url: str, n: int, rounds: int, timeout: float) -> None:
        self.url, self.n, self.rounds, self.timeout = url, n, rounds, timeout
        self.best: dict[str, Outcome] = {}
        self.errors: list[str] = []

    def run(self, kinds: Sequence[str], rates: Sequence[int]) -> None:
        for _ in range(self.rounds):
            for kind in kinds:
                for rate in rates:
                    label = _label(kind, rate)
                    previous = self.best.get(label)
                    if previous is not None and previous.timed_out:
                        continue  # timed out once: reported, not run again
                    self._one(kind, rate, label)

    def _one(self, kind: str, rate: int, label: str) -> None:
        name = f"{PREFIX}.poison.{kind}.{rate}"
        clean_keys(self.url)
        print(f"  {label} ...", end="", file=sys.stderr, flush=True)
        try:
            got = trio.run(drain_round, self.url, kind, name, self.n, rate, self.timeout)
        finally:
            clean_keys(self.url)
        print(f" {_summary(got, self.n)}", file=sys.stderr)
        if got.duplicates:
            self.errors.append(f"{label}: {got.duplicates} good messages handled twice")
        if got.timed_out:
            self.errors.append(
                f"{label}: TIMEOUT after {self.timeout:g}s: {got.good}/{self.n} good handled, "
                f"{got.dead}/{got.poison} poison dead-lettered"
            )
        best = self.best.get(label)
        if best is None or _rate(got, self.n) > _rate(best, self.n):
            self.best[label] = got


def _rate(outcome: Outcome, n: int) -> float:
    """Good messages per second until the last one; at a timeout, what was handled in the
    time the round ran (a bound from above on a drain that did not finish)."""
    if outcome.last_good is not None:
        return n / outcome.last_good
    return outcome.good / outcome.elapsed if outcome.elapsed else 0.0


def _summary(outcome: Outcome, n: int) -> str:
    text = f"{_rate(outcome, n):,.0f} good msg/s"
    if outcome.last_good is None:
        text += f" (TIMEOUT: {outcome.good}/{n} good)"
    if outcome.poison:
        dead = "-" if outcome.all_dead is None else f"{outcome.all_dead:.2f}s"
        text += f", {outcome.dead}/{outcome.poison} dead-lettered ({dead})"
    if outcome.system_restarts:
        text += f", system restarted {outcome.system_restarts}x"
    return text


def summarize(bench: Bench, kinds: Sequence[str], rates: Sequence[int]) -> dict[str, Any]:
    """The figures, ratios to the clean drain and the bars' verdicts, as JSON-ready data."""
    bars = {100: 0.5, 10: 0.25}
    rows: dict[str, Any] = {}
    for kind in kinds:
        clean = bench.best.get(_label(kind, 0))
        for rate in rates:
            got = bench.best.get(_label(kind, rate))
            if got is None:
                continue
            per_second = _rate(got, bench.n)
            ratio = None
            if rate and clean is not None and clean.last_good is not None:
                ratio = per_second / _rate(clean, bench.n)
            bar = bars.get(rate)
            rows[_label(kind, rate)] = {
                "good_msgs_per_s": per_second,
                "finished": got.last_good is not None,
                "ratio_to_clean": ratio,
                "bar": bar,
                "pass": None if ratio is None or bar is None else ratio >= bar,
                "poison": got.poison,
                "dead_lettered": got.dead,
                "all_dead_s": got.all_dead,
                "system_restarts": got.system_restarts,
                "failures": got.failures,
            }
    return rows


def print_table(bench: Bench, rows: dict[str, Any]) -> None:
    print(
        f"\nN={bench.n} good messages (~100 B JSON), one actor with the default settings, "
        f"fetch batch {BATCH}; best of {bench.rounds}; at most {bench.timeout:g}s a round"
    )
    head = (
        f"{'workload':<18}{'good msg/s':>12}  {'vs clean':<16}{'poison':>7}"
        f"{'all dead-lettered':>19}{'system restarts':>17}"
    )
    print(head)
    print("-" * len(head))
    for label, row in rows.items():
        rate = f"{row['good_msgs_per_s']:,.0f}" + ("" if row["finished"] else "*")
        ratio = row["ratio_to_clean"]
        verdict = "-" if ratio is None else f"{ratio:.1%}"
        if row["pass"] is not None:
            verdict += f" {'PASS' if row['pass'] else 'MISS'} (>={row['bar']:.0%})"
        dead = "-"
        if row["poison"]:
            done = row["all_dead_s"]
            dead = f"{done:.2f}s" if done is not None else f"{row['dead_lettered']} TIMEOUT"
        print(
            f"{label:<18}{rate:>12}  {verdict:<16}{row['poison']:>7}{dead:>19}"
            f"{row['system_restarts']:>17}"
        )
    print("* did not finish within the timeout: good messages handled per second until then.")
    print("system restarts: the root supervisor gave up (`actors run` would exit 1); the")
    print("benchmark started the system again, as a process manager would.")
    for label, row in rows.items():
        for failure in row["failures"]:
            print(f"note: {label}: system stopped: {failure}")
    for error in bench.errors:
        print(f"ERROR: {error}")


def _csv(text: str, choices: Sequence[str] | None = None) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if choices is not None and not set(items) <= set(choices):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}")
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="good messages per drain")
    parser.add_argument("--url", help="Redis URL (default: $REDIS_URL, else a private server)")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per round, at most")
    parser.add_argument(
        "--rates",
        type=lambda text: [int(item) for item in _csv(text)],
        default=[0, 100, 10],
        help="one poison message per this many good ones; 0 is the clean drain",
    )
    parser.add_argument(
        "--kinds",
        type=lambda text: _csv(text, ("list", "stream")),
        default=["list", "stream"],
        help="mailbox kinds",
    )
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="PATH", help="dump the numbers (- = stdout)"
    )
    options = parser.parse_args()
    # The runtime logs every crash, restart and dead letter (thousands here): they would
    # drown the progress lines. What they say is counted in the report instead.
    logging.getLogger("actors").setLevel(logging.CRITICAL + 1)
    rates = sorted(set(options.rates) | {0}, key=lambda r: (r != 0, -r))  # clean first
    with bench_url(options.url) as url:
        print(f"server {url}; running workloads (progress on stderr)", file=sys.stderr)
        bench = Bench(url, options.n, options.rounds, options.timeout)
        bench.run(options.kinds, rates)
        rows = summarize(bench, options.kinds, rates)
    report = {"n": options.n, "rounds": options.rounds, "results": rows, "errors": bench.errors}
    if options.json == "-":
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_table(bench, rows)
        if options.json:
            Path(options.json).write_text(json.dumps(report, indent=2))
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
