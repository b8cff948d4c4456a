"""`python -m actors dashboard`: served on Hypercorn's trio worker, stopped by SIGINT."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytest.importorskip("hypercorn")


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "actors", "dashboard", *args],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def address_of(process: subprocess.Popen[str]) -> str:
    """The address the dashboard logs once it listens."""
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen.append(line)
        if found := re.search(r"dashboard on (http://\S+)", line):
            return found.group(1)
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"the dashboard did not start: {''.join(seen)}")


def test_the_command_serves_until_sigint(redis_url: str) -> None:
    env = {**os.environ, "ACTORS_DASHBOARD_TOKEN": "from-env"}
    process = start("--url", redis_url, "--port", "0", env=env)
    try:
        base = address_of(process)
        assert base.startswith("http://127.0.0.1:")  # loopback unless told otherwise
        snapshot = httpx.get(f"{base}/api/snapshot", timeout=10).json()
        assert snapshot["nodes"] == [] and snapshot["error"] is None
        assert "actors" in httpx.get(base, timeout=10).text
        # The token from the environment guards the actions.
        refused = httpx.post(f"{base}/api/delete/list:jobs", json={}, timeout=10)
        assert refused.status_code == 403
        allowed = httpx.post(
            f"{base}/api/delete/list:jobs",
            json={},
            headers={"Authorization": "Bearer from-env"},
            timeout=10,
        )
        assert allowed.status_code == 200
        # An open event stream does not hold the stop up for long.
        with httpx.stream("GET", f"{base}/events", timeout=10) as events:
            assert next(events.iter_lines()) == "event: update"
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


def test_a_port_in_use_is_an_error(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "actors", "dashboard", "--url", redis_url, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}" in result.stderr


def test_an_unreachable_store_is_an_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "actors", "dashboard", "--url", "redis://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "error:" in result.stderr
