"""The actor runtime against FastStream's RedisBroker and raw redis.asyncio, one invocation.

    python benchmarks/bench_runtime.py [--n 20000] [--asks 2000] [--url URL] [--json [PATH]]
    python benchmarks/bench_runtime.py --profile w1|w1-amo|w2 [--n 20000]

Uses ``--url``, else ``REDIS_URL``, else starts a private ``redis-server`` (``--save ""
--appendonly no``) on a free port. Only keys containing ``bench-rt`` are written and
deleted (before and after every workload). N messages with a ~100-byte JSON body
(``Job``: id, name, padded payload), one process, one consumer handling one message at
a time. Each framework runs in its own event loop (``trio.run`` for ours,
``asyncio.run`` for FastStream and raw), one after the other, in this process; the
frameworks take turns round by round (``--rounds``, best of; W4 pools the rounds), so
a noisy spell on a shared machine hits each of them alike:

* W1 list drain: a pre-filled list (fill not timed), one consumer, time to handle N.
  Ours at-least-once (default) and at-most-once; FastStream per-message (``ListSub``,
  ``BLPOP``) and batch (``ListSub(batch=True, max_records=100)``); raw ``LPOP 100``.
* W2 stream drain with ack: a pre-filled stream, a consumer group, ``XACK`` after
  handling. Ours; FastStream ``StreamSub(group=, consumer=)`` per message and batch;
  raw ``XREADGROUP COUNT 100`` + ``XACK``.
* W3 two-hop pipeline, lists for both hops: N messages pre-filled into A's list; A
  returns the message, published to B's list; time until B handled N.
* W4 ask: M sequential round trips to an actor (FastStream: ``broker.request`` to a
  list subscriber) that returns a value; p50 and p99 latency.

Start-up (connect, consumer group) is inside the timed part for both frameworks.
Timings on a small machine are noisy: compare the ratios, measured side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import platform
import pstats
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import trio
from _common import (
    BATCH,
    PREFIX,
    Job,
    Rate,
    WorkloadTimeout,
    bench_url,
    chunks,
    clean_keys,
    job_fields,
    latency_summary,
    leftovers,
    raw_list_drain,
    raw_stream_drain,
)

from actors import ActorSystem

# -- our runtime (each call runs inside its own trio.run) -----------------------------


async def _fill(url: str, address: str, n: int) -> None:
    """Pre-fill a mailbox as the runtime sends: ``tell_many`` in chunks (not timed)."""
    sender = ActorSystem(url, node=f"{PREFIX}-fill")
    async with sender:
        for part in chunks(n):
            await sender.tell_many(address, [Job(**job_fields(i)) for i in part])


class _Counter:
    """Counts handled messages; ``done`` is set at ``n``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.done = trio.Event()

    def add(self) -> None:
        self.count += 1
        if self.count >= self.n:
            self.done.set()


async def _time_system(system: ActorSystem, counter: _Counter, label: str, timeout: float) -> Rate:
    """Start ``system`` and time until ``counter`` is done (start-up included)."""
    elapsed = 0.0
    try:
        with trio.fail_after(timeout):
            start = time.perf_counter()
            async with system:  # leaving it stops gracefully: the last batch is acked
                await counter.done.wait()
                elapsed = time.perf_counter() - start
    except trio.TooSlowError:
        raise WorkloadTimeout(
            f"{label}: handled {counter.count}/{counter.n} within {timeout}s"
        ) from None
    return Rate(counter.count, elapsed)


def _system(url: str) -> ActorSystem:
    return ActorSystem(url, node=f"{PREFIX}-node")


async def ours_drain(
    url: str,
    kind: str,
    name: str,
    n: int,
    timeout: float,
    *,
    at_most_once: bool = False,
    fill: bool = True,
) -> Rate:
    """W1/W2: one function actor on a pre-filled list or stream mailbox, counting.

    ``fill=False`` when the mailbox was filled already.

    Raises:
        WorkloadTimeout: not drained within ``timeout`` seconds.
    """
    if fill:
        await _fill(url, f"{kind}:{name}", n)
    system = _system(url)
    counter = _Counter(n)
    options: dict[str, Any] = {kind: name}
    if at_most_once:
        options["at_most_once"] = True

    @system.actor(name="drain", batch_size=BATCH, **options)
    async def drain(msg: Job) -> None:
        counter.add()

    return await _time_system(system, counter, f"ours {kind} drain", timeout)


async def ours_pipeline(url: str, first: str, second: str, n: int, timeout: float) -> Rate:
    """W3: list ``first`` -> actor A -> (publisher) list ``second`` -> actor B.

    Raises:
        WorkloadTimeout: B has not handled all ``n`` within ``timeout`` seconds.
    """
    await _fill(url, f"list:{first}", n)
    system = _system(url)
    counter = _Counter(n)

    @system.actor(list=first, name="hop_a", batch_size=BATCH)
    @system.publisher(list=second)
    async def hop_a(msg: Job) -> Job:
        return msg

    @system.actor(list=second, name="hop_b", batch_size=BATCH)
    async def hop_b(msg: Job) -> None:
        counter.add()

    return await _time_system(system, counter, "ours pipeline", timeout)


async def ours_ask(url: str, name: str, m: int, warmup: int, timeout: float) -> list[float]:
    """W4: ``m`` sequential ``system.ask`` round trips; latencies in seconds.

    Raises:
        WorkloadTimeout: the whole run took longer than ``timeout`` seconds.
        AssertionError: a reply was not the expected value.
    """
    system = _system(url)

    @system.actor(list=name, name="answer")
    async def answer(msg: Job) -> int:
        return msg.id

    samples: list[float] = []
    try:
        with trio.fail_after(timeout):
            async with system:
                for i in range(warmup + m):
                    job = Job(**job_fields(i))
                    start = time.perf_counter()
                    value = await system.ask("answer", job, timeout=5.0)
                    elapsed = time.perf_counter() - start
                    assert value == i, f"ours replied {value!r} to ask {i}"
                    if i >= warmup:
                        samples.append(elapsed)
    except trio.TooSlowError:
        raise WorkloadTimeout(
            f"ours ask: {len(samples)}/{m} round trips within {timeout}s"
        ) from None
    return samples


# -- running the workloads ----------------------------------------------------------


def _mailbox(workload: str, framework: str) -> str:
    return f"{PREFIX}.{workload}.{framework}"


class Bench:
    """Runs workloads one after the other, cleaning keys around each; records results."""

    def __init__(self, url: str, n: int, asks: int, rounds: int, timeout: float) -> None:
        self.url = url
        self.n = n
        self.asks = asks
        self.rounds = rounds
        self.timeout = timeout
        self.rates: dict[str, dict[str, float | None]] = {}
        self.latency: dict[str, dict[str, float] | None] = {}
        self.notes: list[str] = []
        self.errors: list[str] = []

    def _run(self, label: str, call: Callable[[], Any]) -> Any:
        clean_keys(self.url)
        print(f"  {label} ...", end="", file=sys.stderr, flush=True)
        try:
            result = call()
        except WorkloadTimeout as exc:
            self.errors.append(f"{label}: TIMEOUT: {exc}")
            print(f" TIMEOUT ({exc})", file=sys.stderr)
            return None
        except Exception as exc:
            self.errors.append(f"{label}: {type(exc).__name__}: {exc}")
            print(f" FAILED ({type(exc).__name__}: {exc})", file=sys.stderr)
            return None
        return result

    def rates_of(self, entries: Sequence[Entry]) -> None:
        """Best of ``rounds`` drains of a fresh mailbox for each entry, the entries taking
        turns round by round (a noisy spell on a shared machine then hits every
        framework alike); checks each drain was complete (and acked).

        An entry is ``(workload, column, call, check)``: ``check(name)`` gives the
        (kind, key, group) to look at afterwards; by default the list ``name`` itself.
        """
        best: dict[tuple[str, str], float | None] = {}
        for _ in range(self.rounds):
            for workload, column, call, check in entries:
                key = (workload, column)
                if key in best and best[key] is None:
                    continue  # failed once: reported, not retried
                name = _mailbox(workload.split()[0].lower(), column)
                rate = self._run(f"{workload} / {column}", lambda: call(name))  # noqa: B023
                if rate is None:
                    best[key] = None
                    continue
                if rate.count < self.n:
                    self.errors.append(f"{workload} / {column}: handled {rate.count} of {self.n}")
                left = leftovers(self.url, *(check(name) if check else ("list", name, None)))
                if left:
                    self.notes.append(f"{workload} / {column}: {left}")
                print(f" {rate.per_second:,.0f} msg/s", file=sys.stderr)
                best[key] = max(best.get(key) or 0.0, rate.per_second)
                clean_keys(self.url)
        for (workload, column), value in best.items():
            self.rates.setdefault(workload, {})[column] = value

    def latencies(self, calls: Mapping[str, Callable[[str], list[float]]]) -> None:
        """``rounds`` runs of each column's round trips, the columns taking turns; the
        samples of a column's runs are pooled."""
        samples: dict[str, list[float] | None] = {column: [] for column in calls}
        for _ in range(self.rounds):
            for column, call in calls.items():
                pooled = samples[column]
                if pooled is None:
                    continue
                got = self._run(f"W4 ask / {column}", lambda: call(_mailbox("w4", column)))  # noqa: B023
                if got is None:
                    samples[column] = None
                    continue
                pooled.extend(got)
                print(f" p50 {latency_summary(got)['p50_ms']:.3f} ms", file=sys.stderr)
                clean_keys(self.url)
        for column, pooled in samples.items():
            self.latency[column] = latency_summary(pooled) if pooled else None


Check = Callable[[str], tuple[str, str, str | None]]
Entry = tuple[str, str, Callable[[str], Rate], Check | None]


def run_all(bench: Bench) -> None:
    """Every workload, every framework, in this process."""
    from _faststream_workloads import (
        GROUP,
        faststream_ask,
        faststream_list_drain,
        faststream_pipeline,
        faststream_stream_drain,
    )

    url, n, timeout = bench.url, bench.n, bench.timeout

    def ours(kind: str, *, at_most_once: bool = False) -> Callable[[str], Rate]:
        return lambda name: trio.run(
            partial(ours_drain, url, kind, name, n, timeout, at_most_once=at_most_once)
        )

    def fs_list(*, batch: bool) -> Callable[[str], Rate]:
        return lambda name: asyncio.run(faststream_list_drain(url, name, n, timeout, batch=batch))

    def fs_stream(*, batch: bool) -> Callable[[str], Rate]:
        return lambda name: asyncio.run(faststream_stream_drain(url, name, n, timeout, batch=batch))

    def stream_group(group: str | None) -> Callable[[str], tuple[str, str, str | None]]:
        return lambda name: ("stream", name, group)

    w1, w1m, w2, w3 = "W1 list", "W1 list at-most-once", "W2 stream", "W3 pipeline"
    bench.rates_of(
        [
            (w1, "ours", ours("list"), None),
            (w1m, "ours", ours("list", at_most_once=True), None),
            (w1, "faststream", fs_list(batch=False), None),
            (w1, "faststream_batch", fs_list(batch=True), None),
            (w1, "raw", _raw(url, "list", n, timeout), None),
        ]
    )
    for column in ("faststream", "faststream_batch", "raw"):  # the same runs, compared
        bench.rates[w1m][column] = bench.rates[w1][column]

    bench.rates_of(
        [
            (w2, "ours", ours("stream"), stream_group(None)),
            (w2, "faststream", fs_stream(batch=False), stream_group(GROUP)),
            (w2, "faststream_batch", fs_stream(batch=True), stream_group(GROUP)),
            (w2, "raw", _raw(url, "stream", n, timeout), stream_group(f"{PREFIX}-raw")),
        ]
    )

    def both_lists(name: str) -> tuple[str, str, str | None]:
        return ("list", f"{name}.b", None)

    def ours_w3(name: str) -> Rate:
        return trio.run(ours_pipeline, url, f"{name}.a", f"{name}.b", n, timeout)

    def fs_w3(name: str) -> Rate:
        return asyncio.run(faststream_pipeline(url, f"{name}.a", f"{name}.b", n, timeout))

    bench.rates_of([(w3, "ours", ours_w3, both_lists), (w3, "faststream", fs_w3, both_lists)])

    warmup = min(100, bench.asks)
    ask_timeout = max(timeout, bench.asks * 0.05)
    bench.latencies(
        {
            "ours": lambda name: trio.run(ours_ask, url, name, bench.asks, warmup, ask_timeout),
            "faststream": lambda name: asyncio.run(
                faststream_ask(url, name, bench.asks, warmup, ask_timeout)
            ),
        }
    )


def _raw(url: str, kind: str, n: int, timeout: float) -> Callable[[str], Rate]:
    """The raw drain of a mailbox pre-filled by our runtime (same payloads as ours)."""

    def run(name: str) -> Rate:
        trio.run(_fill, url, f"{kind}:{name}", n)
        drain = raw_list_drain if kind == "list" else raw_stream_drain
        return asyncio.run(drain(url, name, n, timeout))

    return run


# -- the report -----------------------------------------------------------------------

TARGETS = {
    "ours/faststream": 15.0,
    "ours/faststream_batch": 1.0,
    "ours/raw": 0.5,
    "W3 ours/faststream": 10.0,
    "W4 p50 ours/faststream": 0.25,  # at most
}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def summarize(bench: Bench) -> dict[str, Any]:
    """The numbers, ratios and target verdicts, as JSON-ready data."""
    rows: dict[str, Any] = {}
    for workload, rates in bench.rates.items():
        ours = rates.get("ours")
        row: dict[str, Any] = {"msgs_per_s": rates, "ratios": {}, "pass": {}}
        for column in ("faststream", "faststream_batch", "raw"):
            if column not in rates:
                continue
            ratio = _ratio(ours, rates[column])
            key = f"ours/{column}"
            target = TARGETS[f"W3 {key}" if workload.startswith("W3") else key]
            row["ratios"][key] = ratio
            row["pass"][key] = None if ratio is None else ratio >= target
        rows[workload] = row
    ours_lat, fs_lat = bench.latency.get("ours"), bench.latency.get("faststream")
    p50_ratio = _ratio(ours_lat and ours_lat["p50_ms"], fs_lat and fs_lat["p50_ms"])
    rows["W4 ask"] = {
        "latency_ms": {"ours": ours_lat, "faststream": fs_lat},
        "ratios": {"p50 ours/faststream": p50_ratio},
        "pass": {
            "p50 ours/faststream": None
            if p50_ratio is None
            else p50_ratio <= TARGETS["W4 p50 ours/faststream"]
        },
    }
    return rows


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _verdict(ratio: float | None, ok: bool | None, digits: int = 1) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.{digits}f}x {'PASS' if ok else 'MISS'}"


def print_table(bench: Bench, rows: dict[str, Any], meta: dict[str, Any]) -> None:
    print(
        f"\nN={bench.n} messages (~100 B JSON body), one process, one consumer, "
        f"fetch batch {BATCH}; best of {bench.rounds}; FastStream {meta['faststream']}; "
        f"redis-py {meta['redis_py']}; Python {meta['python']}"
    )
    head = (
        f"{'msgs/s':<22}{'ours':>9}{'FS/msg':>9}{'FS batch':>10}{'raw':>10}"
        f"  {'ours/FS':<13}{'ours/FS batch':<14}{'ours/raw':<13}"
    )
    print(head)
    print(f"{'targets':<60}  {'>= 15x':<13}{'>= 1x':<14}{'>= 0.5x':<13}")
    print("-" * len(head))
    for workload, row in rows.items():
        if workload.startswith("W4"):
            continue
        rates, ratios, ok = row["msgs_per_s"], row["ratios"], row["pass"]
        line = (
            f"{workload:<22}{_num(rates.get('ours')):>9}{_num(rates.get('faststream')):>9}"
            f"{_num(rates.get('faststream_batch')):>10}{_num(rates.get('raw')):>10}  "
        )
        for key, width in (
            ("ours/faststream", 13),
            ("ours/faststream_batch", 14),
            ("ours/raw", 13),
        ):
            if key in ratios:
                digits = 2 if key == "ours/raw" else 1
                line += f"{_verdict(ratios[key], ok[key], digits):<{width}}"
        if workload.startswith("W3"):
            line += "(target >= 10x)"
        print(line.rstrip())
    lat = rows["W4 ask"]
    ours_lat, fs_lat = lat["latency_ms"]["ours"], lat["latency_ms"]["faststream"]

    def ms(summary: dict[str, float] | None, key: str) -> str:
        return "-" if summary is None else f"{summary[key]:.3f}"

    ratio, ok = lat["ratios"]["p50 ours/faststream"], lat["pass"]["p50 ours/faststream"]
    verdict = "-" if ratio is None else f"{ratio:.2f} {'PASS' if ok else 'MISS'} (target <= 0.25)"
    print(
        f"W4 ask x{bench.asks}, ms: p50 ours {ms(ours_lat, 'p50_ms')} FS {ms(fs_lat, 'p50_ms')};"
        f" p99 ours {ms(ours_lat, 'p99_ms')} FS {ms(fs_lat, 'p99_ms')}; p50 ours/FS {verdict}"
    )
    print("FS = FastStream RedisBroker; raw = redis.asyncio + hiredis, no framework.")
    print("FastStream's list subscriber is at-most-once (no ack exists); ours at-least-once")
    print("moves each message through a processing list. W3 uses lists for both hops.")
    for note in bench.notes:
        print(f"note: {note}")
    for error in bench.errors:
        print(f"ERROR: {error}")


# -- profiling ------------------------------------------------------------------------

PROFILES = {
    "w1": ("list", False),
    "w1-amo": ("list", True),
    "w2": ("stream", False),
}


def profile(url: str, which: str, n: int, timeout: float, out: Path) -> None:
    """Run one of our drains under cProfile; print the hot spots of the runtime."""
    kind, at_most_once = PROFILES[which]
    name = _mailbox(f"profile-{which}", "ours")
    clean_keys(url)
    trio.run(_fill, url, f"{kind}:{name}", n)
    profiler = cProfile.Profile()
    profiler.enable()
    rate = trio.run(
        partial(ours_drain, url, kind, name, n, timeout, at_most_once=at_most_once, fill=False)
    )
    profiler.disable()
    clean_keys(url)
    profiler.dump_stats(out)
    print(f"{which}: {rate.per_second:,.0f} msg/s under cProfile; stats in {out}")
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(r"actors|transports", 25)
    stats.sort_stats("cumulative").print_stats(r"actors|transports", 25)


# -- main -----------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package, key in (("faststream", "faststream"), ("redis", "redis_py"), ("trio", "trio")):
        try:
            found[key] = version(package)
        except PackageNotFoundError:
            found[key] = "not installed"
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="messages per drain workload")
    parser.add_argument("--asks", type=int, default=2000, help="round trips for W4")
    parser.add_argument("--url", help="Redis URL (default: $REDIS_URL, else a private server)")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per workload")
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="PATH", help="dump the numbers (- = stdout)"
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), help="profile one of our drains")
    parser.add_argument("--profile-out", type=Path, help="where to write the cProfile stats")
    parser.add_argument(
        "--pin", action="store_true", help="pin a private server and this process to one CPU"
    )
    options = parser.parse_args()

    with bench_url(options.url, pin=options.pin) as url:
        if options.profile:
            out = options.profile_out or Path(f"/tmp/bench_runtime_{options.profile}.prof")
            profile(url, options.profile, options.n, options.timeout, out)
            return 0
        try:
            import _faststream_workloads  # noqa: F401
        except ImportError as exc:
            print(
                f"bench_runtime: {exc}: install faststream[redis] (nox -s bench does)",
                file=sys.stderr,
            )
            return 2
        meta = {"n": options.n, "asks": options.asks, "rounds": options.rounds, **_versions()}
        print(f"server {url}; running workloads (progress on stderr)", file=sys.stderr)
        bench = Bench(url, options.n, options.asks, options.rounds, options.timeout)
        run_all(bench)
        rows = summarize(bench)
        if options.json == "-":
            json.dump(
                {"meta": meta, "results": rows, "notes": bench.notes, "errors": bench.errors},
                sys.stdout,
                indent=2,
            )
            print()
        else:
            print_table(bench, rows, meta)
            if options.json:
                Path(options.json).write_text(
                    json.dumps(
                        {
                            "meta": meta,
                            "results": rows,
                            "notes": bench.notes,
                            "errors": bench.errors,
                        },
                        indent=2,
                    )
                )
        return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
