"""`python -m actors run FILE`: clear one-line errors and exit code 2 for unusable files."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actors import SystemFileError
from actors._loader import load_system
from actors._workers import available_cpus, workers_limit


def write(tmp_path: Path, body: str, name: str = "system.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "actors", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    ("body", "message", "line"),
    [
        ("x = 1\ndef f(:\n", "syntax error", 2),
        ("import trio\nraise RuntimeError('boom')\n", "RuntimeError: boom", 2),
        ("x = 1\n", "defines no ActorSystem", None),
        (
            "from actors import ActorSystem\na = ActorSystem('memory://')\n"
            "b = ActorSystem('memory://')\n",
            "several ActorSystems (a, b)",
            None,
        ),
        (
            "from actors import ActorSystem, Supervisor\ns = ActorSystem('memory://')\n"
            "s.supervise(Supervisor([], strategy='one_for_none'))\n",
            "strategy",
            3,
        ),
    ],
)
def test_bad_files_give_clear_errors(
    tmp_path: Path, body: str, message: str, line: int | None
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(SystemFileError, match=re.escape(message)) as info:
        load_system(str(path))
    assert info.value.lineno == line
    result = run_cli("run", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if line is not None:
        assert f"{path}:{line}" in result.stderr


def test_missing_file_and_wrong_attribute(tmp_path: Path) -> None:
    result = run_cli("run", str(tmp_path / "nope.py"))
    assert result.returncode == 2 and "no such file" in result.stderr
    path = write(tmp_path, "from actors import ActorSystem\nsystem = ActorSystem('memory://')\n")
    assert load_system(f"{path}:system").url == "memory://"
    with pytest.raises(SystemFileError, match="'other' is not an ActorSystem"):
        load_system(f"{path}:other")


def test_unreachable_redis_is_one_line_naming_the_url(tmp_path: Path) -> None:
    path = write(tmp_path, "from actors import ActorSystem\nsystem = ActorSystem()\n")
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    result = run_cli("run", str(path), "--url", "redis://:hunter2@127.0.0.1:1/0")
    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
    assert "--url" in result.stderr


def test_unknown_url_scheme_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, "from actors import ActorSystem\nsystem = ActorSystem()\n")
    result = run_cli("run", str(path), "--url", "kafka://localhost")
    assert result.returncode == 2
    assert "unsupported URL scheme 'kafka'" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "app.py"],
        ["status"],
        ["dead-letters", "list", "list:jobs"],
    ],
)
def test_an_unknown_log_level_is_a_usage_error(args: list[str]) -> None:
    result = run_cli(*args, "--log-level", "verbose")
    assert result.returncode == 2
    assert "invalid choice: 'VERBOSE'" in result.stderr
    assert result.stderr.startswith("usage: ")
    assert "Traceback" not in result.stderr


def test_log_levels_are_case_insensitive(tmp_path: Path) -> None:
    # Accepted: the run goes on to the file, which is missing.
    result = run_cli("run", str(tmp_path / "nope.py"), "--log-level", "debug")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.py'}: no such file"


@pytest.mark.parametrize("count", ["0", "-3", "100000"])
def test_workers_out_of_range_is_one_line_before_the_file_is_read(
    tmp_path: Path, count: str
) -> None:
    result = run_cli("run", str(tmp_path / "nope.py"), "--workers", count)
    assert result.returncode == 2
    limit = workers_limit()
    assert result.stderr == f"error: --workers must be between 1 and {limit}, not {count}\n"


def test_workers_limit_is_64_or_4_per_cpu() -> None:
    assert workers_limit(cpus=1) == 64
    assert workers_limit(cpus=16) == 64
    assert workers_limit(cpus=32) == 128


def test_more_workers_than_cpus_is_a_warning(tmp_path: Path) -> None:
    cpus = available_cpus()
    result = run_cli("run", str(tmp_path / "nope.py"), "--workers", str(cpus + 1))
    assert result.returncode == 2  # the file is missing: the count itself was accepted
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert f"--workers {cpus + 1} is more than the {cpus} CPU(s) available" in lines[0]
    assert lines[1].endswith("no such file")
