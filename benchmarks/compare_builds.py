"""bench_runtime.py of two builds of this repository, taking turns, in one invocation.

    python benchmarks/compare_builds.py --old REV [--new REV] [--rounds 3] [--n 20000]

Checks ``REV`` out into a temporary git worktree (``--new`` defaults to this working
tree, uncommitted changes included), starts one private ``redis-server`` for both, and
runs each build's own ``benchmarks/bench_runtime.py --rounds 1 --json -`` in turn
(old, new, new, old, ...: a noisy spell of the shared machine hits both alike). Each
run imports its own build (``PYTHONPATH``). Prints, per workload, both builds' best
messages per second (W4: best p50/p99), new/old, and each build's best ratio against
FastStream in the same run. A refactor should leave new/old at 1.0 within noise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _redis() -> Iterator[str]:
    """A private, non-persistent redis-server for both builds; its URL."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait()


@contextmanager
def _checkout(rev: str | None) -> Iterator[Path]:
    """This working tree (``rev`` None), or ``rev`` in a temporary worktree."""
    if rev is None:
        yield ROOT
        return
    where = Path(tempfile.mkdtemp(prefix="actors-build-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(where), rev], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)])
        shutil.rmtree(where, ignore_errors=True)


def _run(tree: Path, url: str, n: int, asks: int) -> dict[str, Any]:
    """One round of ``tree``'s bench_runtime.py; its results."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_runtime.py",
            "--url",
            url,
            "--rounds",
            "1",
            "--n",
            str(n),
            "--asks",
            str(asks),
            "--json",
            "-",
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree}: bench_runtime.py exited {done.returncode}\n{done.stderr}")
    results: dict[str, Any] = json.loads(done.stdout)["results"]
    return results


def _best(runs: list[dict[str, Any]], workload: str) -> dict[str, float]:
    """The best figures of ``workload`` over ``runs``: msg/s up, latencies down."""
    best: dict[str, float] = {}
    for run in runs:
        row = run[workload]
        if "msgs_per_s" in row:
            ours = row["msgs_per_s"]["ours"]
            vs = ours / row["msgs_per_s"]["faststream"]
            best["ours"] = max(best.get("ours", 0.0), ours)
            best["vs_faststream"] = max(best.get("vs_faststream", 0.0), vs)
        else:
            latency = row["latency_ms"]["ours"]
            for key in ("p50_ms", "p99_ms"):
                best[key] = min(best.get(key, float("inf")), latency[key])
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="git revision of the old build")
    parser.add_argument("--new", help="git revision of the new build (default: this tree)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each build")
    parser.add_argument("--n", type=int, default=20000, help="messages per drain workload")
    parser.add_argument("--asks", type=int, default=2000, help="round trips for W4")
    options = parser.parse_args()

    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    with _checkout(options.old) as old, _checkout(options.new) as new, _redis() as url:
        trees = {"old": old, "new": new}
        for round_ in range(options.rounds):
            order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
            for build in order:
                print(f"round {round_ + 1}: {build} ...", file=sys.stderr, flush=True)
                runs[build].append(_run(trees[build], url, options.n, options.asks))

    new_label = options.new or "this tree"
    print(f"old = {options.old}, new = {new_label}; best of {options.rounds} runs each, alternated")
    print(f"{'workload':<22}{'old':>12}{'new':>12}{'new/old':>9}   vs FastStream old / new")
    for workload in runs["old"][0]:
        before, after = _best(runs["old"], workload), _best(runs["new"], workload)
        if "ours" in before:
            print(
                f"{workload:<22}{before['ours']:>12,.0f}{after['ours']:>12,.0f}"
                f"{after['ours'] / before['ours']:>9.2f}"
                f"   {before['vs_faststream']:.1f}x / {after['vs_faststream']:.1f}x"
            )
        else:
            for key in ("p50_ms", "p99_ms"):
                print(
                    f"{workload + ' ' + key:<22}{before[key]:>12.3f}{after[key]:>12.3f}"
                    f"{after[key] / before[key]:>9.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
