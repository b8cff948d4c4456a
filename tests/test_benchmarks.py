"""bench_poison.py and bench_observe.py still run: tiny, against the test Redis (no
figures asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def test_bench_poison_runs_and_reports_every_workload(redis_url: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_poison.py"),
            *("--url", redis_url, "--n", "30", "--rounds", "1", "--timeout", "30"),
            *("--rates", "0,10", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(BENCHMARKS.parent)},
        check=False,
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
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_observe.py"),
            *("--url", redis_url, "--n", "200", "--rounds", "1", "--timeout", "60", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(BENCHMARKS.parent)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report["results"]) == ["off", "metrics", "tracing", "both", "both-1%"]
    assert all(row["msgs_per_s"] > 0 for row in report["results"].values()), report
    assert report["results"]["off"]["overhead_pct"] == 0.0
