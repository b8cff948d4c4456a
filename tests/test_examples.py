"""Every example in examples/ runs against a real Redis and prints what the README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"

EXPECTED = {
    "basic.py": ["Received: Hello, Redis!"],
    "workers.py": ["20 jobs done by 4 workers", "sum of squares 2470"],
    "bank.py": [
        "ask(Deposit('bob', 5)) -> Balance(account='bob', total=5)",
        "ask(GetBalance('alice')) -> Balance(account='alice', total=42)",
    ],
    "fanout.py": [
        "system/dashboard-0 shows ACME at 12.5",
        "system/dashboard-1 shows INIT at 3.0",
        "system/auditor-0 logs ACME from prices",
    ],
    "pipeline.py": ["apple: 2.00", "pear: 1.50", "apple: 5.00"],
    "resources.py": [
        "price table opened",
        "quotes apple: 1.80 EUR",
        "retail pear: 2.25",
        "price table closed",
    ],
    "spawn.py": [
        "spawned crawler-1 (us)",
        "stopped crawler-0",
        "us crawled example.org",
        "report on crawls by root/reporter-0",
        "crawlers: [crawler-1]",
    ],
    "supervision.py": [
        "thumbnail #3 made for c.png",
        "dead letter: ValueError: cannot decode bad.png after 3 attempts",
        "thumbnailer-0 [worker, running]",
    ],
    "watch.py": ["down: auditor: noproc", "down: worker-0: RuntimeError('fatal')"],
}


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, redis_url: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ACTORS_URL": redis_url},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for line in EXPECTED[name]:
        assert line in result.stdout, result.stdout
