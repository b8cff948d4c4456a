"""What metrics and tracing middleware cost the runtime (W1), one invocation.

    python benchmarks/bench_observe.py [--n 20000] [--rounds 3] [--timeout 120]
                                       [--url URL] [--json [PATH]]

Uses ``--url``, else ``REDIS_URL``, else starts a private ``redis-server`` on a free
port (only keys containing ``bench-rt`` are written and deleted). W1 of
``bench_runtime.py``: a list pre-filled with N ~100-byte ``Job`` messages (not timed),
one function actor (``batch_size=100``) draining it; the time from the system's start
until the N-th message is handled. Four variants take turns round by round (best of
``--rounds``), so a noisy spell hits each alike:

* off: no middleware;
* metrics: ``actors.metrics.Metrics`` (on a registry of its own);
* tracing: ``actors.tracing.Tracing`` on an SDK ``TracerProvider`` whose
  ``BatchSpanProcessor`` exports to a sink that drops the spans (the messages carry a
  ``traceparent``: each handler span is the child of its sender's);
* both: metrics and tracing;
* both-1%: metrics and tracing, with the provider sampling 1% of the traces
  (``ParentBased(TraceIdRatioBased(0.01))``, as a busy service would): a message of an
  unsampled trace gets a non-recording span, its context still carried on.

It reports msg/s and the overhead against ``off`` (the target: <= 10% for ``both``).
The handler does nothing: the overhead is the middleware's cost per message against
the runtime's own (a few microseconds); a handler doing real work dilutes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
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
    job_fields as fields,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client import CollectorRegistry

from actors import ActorSystem, Middleware
from actors.metrics import Metrics
from actors.tracing import Tracing

VARIANTS = ("off", "metrics", "tracing", "both", "both-1%")
_MAILBOX = f"{PREFIX}.observe"


class _Discard(SpanExporter):
    """Takes every span and keeps none: the cost of tracing without an exporter's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _providers() -> dict[str, TracerProvider]:
    """A provider recording every span, and one sampling 1% of the traces."""
    everything = TracerProvider()
    sampled = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.01)))
    for provider in (everything, sampled):
        provider.add_span_processor(BatchSpanProcessor(_Discard()))
    return {"all": everything, "1%": sampled}


def _middleware(variant: str, providers: dict[str, TracerProvider]) -> list[Middleware]:
    chosen: list[Middleware] = []
    if variant != "off" and variant != "tracing":
        chosen.append(Metrics(CollectorRegistry()))
    if variant != "off" and variant != "metrics":
        chosen.append(Tracing(providers["1%" if variant.endswith("1%") else "all"]))
    return chosen


async def drain(
    url: str, variant: str, n: int, timeout: float, providers: dict[str, TracerProvider]
) -> Rate:
    """Fill the list (through the variant's middleware, not timed), then time a drain.

    Raises:
        WorkloadTimeout: not drained within ``timeout`` seconds.
    """
    sender = ActorSystem(url, node=f"{PREFIX}-fill", middleware=_middleware(variant, providers))
    async with sender:
        for part in chunks(n):
            await sender.tell_many(f"list:{_MAILBOX}", [Job(**fields(i)) for i in part])
    system = ActorSystem(url, node=f"{PREFIX}-node", middleware=_middleware(variant, providers))
    count = 0
    done = trio.Event()

    @system.actor(list=_MAILBOX, name="drain", batch_size=BATCH)
    async def handle(msg: Job) -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    elapsed = 0.0
    try:
        with trio.fail_after(timeout):
            start = time.perf_counter()
            async with system:
                await done.wait()
                elapsed = time.perf_counter() - start
    except trio.TooSlowError:
        raise WorkloadTimeout(f"{variant}: handled {count}/{n} within {timeout}s") from None
    return Rate(count, elapsed)


def run(url: str, n: int, rounds: int, timeout: float) -> dict[str, Any]:
    """Every variant, ``rounds`` times in turn; the best rate of each, and errors."""
    providers = _providers()
    best: dict[str, float] = {}
    errors: list[str] = []
    try:
        for round_ in range(1, rounds + 1):
            for variant in VARIANTS:
                clean_keys(url)
                try:
                    rate = trio.run(drain, url, variant, n, timeout, providers)
                except WorkloadTimeout as exc:
                    errors.append(str(exc))
                    continue
                finally:
                    # The span processors' export thread must not run into the next
                    # variant's time (the GIL): their queues are emptied in between.
                    for provider in providers.values():
                        provider.force_flush()
                print(f"round {round_} {variant:8} {rate.per_second:10,.0f} msg/s", file=sys.stderr)
                best[variant] = max(best.get(variant, 0.0), rate.per_second)
    finally:
        clean_keys(url)
        for provider in providers.values():
            provider.shutdown()
    off = best.get("off")
    results = {
        variant: {
            "msgs_per_s": round(rate),
            "overhead_pct": None if not off else round((off / rate - 1) * 100, 1),
        }
        for variant, rate in best.items()
    }
    return {"n": n, "rounds": rounds, "results": results, "errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="messages per drain")
    parser.add_argument("--url", help="Redis URL (default: $REDIS_URL, else a private server)")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per drain")
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="PATH", help="dump the numbers (- = stdout)"
    )
    options = parser.parse_args()
    with bench_url(options.url) as url:
        print(f"server {url}; W1 list drain, N={options.n}", file=sys.stderr)
        report = run(url, options.n, options.rounds, options.timeout)
    if options.json == "-":
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(f"{'W1 list drain':16} {'msg/s':>10} {'overhead':>9}")
        for variant, row in report["results"].items():
            overhead = "" if row["overhead_pct"] is None else f"{row['overhead_pct']:+.1f}%"
            print(f"{variant:16} {row['msgs_per_s']:>10,} {overhead:>9}")
        for error in report["errors"]:
            print(f"error: {error}")
        if options.json:
            Path(options.json).write_text(json.dumps(report, indent=2))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
