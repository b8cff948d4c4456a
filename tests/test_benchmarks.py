"""bench_poison.py, bench_observe.py, bench_timers.py, bench_keyed.py and bench_clients.py
still run: tiny, against the test Redis (no figures asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def _bench(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<script>`` with ``args`` as the nox bench session does (the
    benchmarks import the repository's packages), without checking its exit status."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(BENCHMARKS.parent)},
        check=False,
    )


def test_bench_poison_runs_and_reports_every_workload(redis_url: str) -> None:
    result = _bench(
        "bench_poison.py",
        *("--url", redis_url, "--n", "30", "--rounds", "1", "--timeout", "30"),
        *("--rates", "0,10", "--json"),
    )
    assert result.returncode in (0, 1), result.stderr  # 1: a round timed out (slow, not broken)
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert sorted(report["results"]) == [
        "list 1 in 10",
        "list clean",
        "stream 1 in 10",
        "stream clean",
    ]
    for kind in ("list", "stream"):
        clean, poisoned = report["results"][f"{kind} clean"], report["results"][f"{kind} 1 in 10"]
        assert clean["finished"] and clean["good_msgs_per_s"] > 0, report
        assert poisoned["poison"] == 3 and poisoned["good_msgs_per_s"] > 0, report
    assert not [e for e in report["errors"] if "twice" in e], report  # never a duplicate


def test_bench_observe_runs_every_variant(redis_url: str) -> None:
    result = _bench(
        "bench_observe.py",
        *("--url", redis_url, "--n", "200", "--rounds", "1", "--timeout", "60", "--json"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report["results"]) == ["off", "metrics", "tracing", "both", "both-1%"]
    assert all(row["msgs_per_s"] > 0 for row in report["results"].values()), report
    assert report["results"]["off"]["overhead_pct"] == 0.0


@pytest.mark.parametrize("where", [[], ["--in-process"]], ids=["workers", "in-process"])
def test_bench_timers_runs_and_reports_its_figures(redis_url: str, where: list[str]) -> None:
    result = _bench(
        "bench_timers.py",
        *("--url", redis_url, "--rate", "500", "--seconds", "1", "--json", *where),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for name in ("delayed_tell", "actor_timer"):
        assert report[name]["count"] > 5 and report[name]["p99_ms"] >= report[name]["p50_ms"]
    assert report["load_sent_per_s"] > 0


def test_bench_keyed_runs_and_reports_both_drains(redis_url: str) -> None:
    result = _bench(
        "bench_keyed.py",
        *("--url", redis_url, "--n", "400", "--keys", "100", "--rounds", "1"),
        *("--partitions", "8", "--timeout", "60", "--json"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["plain_list_drain_msgs_per_s"] > 0
    assert report["keyed_msgs_per_s"] > 0
    assert report["activations"] == 100  # every key activated once


def test_bench_clients_runs_every_client(redis_url: str) -> None:
    result = _bench(
        "bench_clients.py",
        *("--url", redis_url, "--n", "50", "--m", "30", "--rounds", "1", "--json"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["tell_msgs_per_s"]) == {
        "actors.Client",
        "actors.AsyncClient",
        "faststream publish",
        "redis-py rpush",
    }
    assert all(rate > 0 for rate in report["tell_msgs_per_s"].values())
    assert set(report["ask_latency"]) == {
        "actors.Client",
        "actors.AsyncClient",
        "faststream request",
    }
    assert all(s["count"] == 30 for s in report["ask_latency"].values())
