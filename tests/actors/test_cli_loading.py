"""`python -m actors`: loading a system from a module path or a package's file, --version,
every --help's description and exit statuses, `publish`, the log options, and --reload."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from actors import SystemFileError
from actors._loader import load_system
from actors._logs import configure_logging
from actors.client import Client

ROOT = Path(__file__).parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ACTORS_URL"}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "actors", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=_env(),
        check=False,
    )


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package `shop` with a system module importing a sibling relatively; the
    current directory is the package's parent, as in a project's root."""
    root = tmp_path / "project"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "messages.py").write_text("GREETING = 'hello'\n")
    (root / "shop" / "system.py").write_text(
        textwrap.dedent(
            """
            from actors import ActorSystem
            from .messages import GREETING

            system = ActorSystem("memory://")
            system.greeting = GREETING
            """
        )
    )
    monkeypatch.chdir(root)
    before = dict(sys.modules)
    yield root
    for name in set(sys.modules) - set(before):
        if name.startswith("shop"):
            del sys.modules[name]


def test_a_module_path_and_a_package_file_load_with_relative_imports(package: Path) -> None:
    assert load_system("shop.system:system").greeting == "hello"
    assert load_system("shop.system").greeting == "hello"
    # A file inside a package is imported as a module of it: relative imports work.
    assert load_system(str(package / "shop" / "system.py")).greeting == "hello"


def test_a_missing_module_and_a_failing_one_are_one_line_errors(package: Path) -> None:
    with pytest.raises(SystemFileError, match=r"^shop\.nothing: no such file or module$"):
        load_system("shop.nothing")
    with pytest.raises(SystemFileError, match="no such file or module"):
        load_system("nowhere.system")
    (package / "shop" / "broken.py").write_text("x = 1\nraise RuntimeError('boom')\n")
    with pytest.raises(SystemFileError, match=r"broken\.py:2: RuntimeError: boom") as info:
        load_system("shop.broken")
    assert info.value.lineno == 2
    with pytest.raises(SystemFileError, match="'other' is not an ActorSystem"):
        load_system("shop.system:other")


def test_run_takes_a_module_path(package: Path) -> None:
    # The module's system is memory://: it runs, so a bad --url is what stops it.
    result = run_cli("run", "shop.system:system", "--url", "kafka://x", cwd=package)
    assert result.returncode == 2, result.stderr
    assert "unsupported URL scheme 'kafka'" in result.stderr


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"actors \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["status"],
        ["publish"],
        ["dead-letters"],
        ["dead-letters", "list"],
        ["dead-letters", "replay"],
    ],
)
def test_every_help_has_a_description_and_the_exit_statuses(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    usage, description, *_ = result.stdout.split("\n\n")
    assert usage.startswith("usage: python -m actors")
    assert len(description) > 20 and not description.startswith(("positional", "options"))
    assert "exit status" in result.stdout
    assert re.search(r"\b0\b.*\b2\b", result.stdout.split("exit status")[1], re.S)


def test_publish_sends_an_envelope_that_reaches_the_first_fitting_handler(
    redis_url: str, tmp_path: Path
) -> None:
    plain = redis.Redis.from_url(redis_url)
    result = run_cli(
        "publish", "list:jobs", '{"a": 2, "b": 3}', "--header", "tenant=acme", "--url", redis_url
    )
    assert result.returncode == 0, result.stderr
    [raw] = plain.lrange("jobs", 0, -1)
    sent = json.loads(raw)
    assert sent["id"] == result.stdout.strip()
    assert (sent["actors"], sent["body"], sent["headers"]) == (
        1,
        {"a": 2, "b": 3},
        {"tenant": "acme"},
    )
    assert "type" not in sent  # no tag: the first handler whose type fits takes it
    result = run_cli("publish", "stream:events", '"hi"', "--type", "Greeting", "--url", redis_url)
    assert result.returncode == 0, result.stderr
    [(_, fields)] = plain.xrange("events")
    assert json.loads(fields[b"message"])["type"] == "Greeting"
    plain.close()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["list:jobs", "{oops"], "argument BODY: not JSON"),
        (["list:jobs", "1", "--header", "nothing"], "expected NAME=VALUE"),
        (["jobs", "1"], "bad mailbox address 'jobs'"),
    ],
)
def test_publish_usage_errors(args: list[str], expected: str) -> None:
    result = run_cli("publish", *args, "--url", "redis://127.0.0.1:1")
    assert result.returncode == 2
    assert expected in result.stderr


FAILING = textwrap.dedent(
    """
    from actors import Actor, ActorSystem, list_mailbox

    VERSION = "v1"

    class Work(Actor):
        mailbox = list_mailbox("work")
        max_deliveries = 1

        async def receive(self, n: int) -> str:
            if n < 0:
                raise ValueError("negative")
            return VERSION

    system = ActorSystem()
    system.actor(Work)
    """
)


def _start(args: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "actors", "run", *args],
            stderr=out,
            cwd=cwd,
            env=_env(),
        )


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(2)  # SIGINT
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_json_logs_carry_the_structured_fields(redis_url: str, tmp_path: Path) -> None:
    (tmp_path / "work.py").write_text(FAILING)
    log = tmp_path / "run.log"
    proc = _start([str(tmp_path / "work.py"), "--url", redis_url, "--log-format", "json"], log)
    try:
        _wait_for(log, "actor system running", proc)
        with Client(redis_url) as client:
            client.tell("list:work", -1)
        _wait_for(log, "dead_letter", proc)
    finally:
        assert _stop(proc) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # every line: JSON
    assert {"time", "level", "logger", "message", "node"} <= set(lines[0])
    [dead] = [line for line in lines if line.get("event") == "dead_letter"]
    assert dead["level"] == "ERROR" and dead["logger"] == "actors.actor"
    assert (dead["path"], dead["mailbox"]) == ("system/work-0", "list:work")
    assert dead["dead_letter_id"] in dead["message"]
    assert 'raise ValueError("negative")' in dead["exception"]


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_log_config_file_is_applied(redis_url: str, tmp_path: Path, suffix: str) -> None:
    (tmp_path / "work.py").write_text(FAILING)
    config = {
        "version": 1,
        "formatters": {"plain": {"format": "CUSTOM %(levelname)s %(message)s"}},
        "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"level": "INFO", "handlers": ["err"]},
    }
    path = tmp_path / f"logging{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(config))
    else:
        path.write_text(
            textwrap.dedent(
                """
                version = 1
                [formatters.plain]
                format = "CUSTOM %(levelname)s %(message)s"
                [handlers.err]
                class = "logging.StreamHandler"
                formatter = "plain"
                [root]
                level = "INFO"
                handlers = ["err"]
                """
            )
        )
    log = tmp_path / "run.log"
    proc = _start([str(tmp_path / "work.py"), "--url", redis_url, "--log-config", str(path)], log)
    try:
        _wait_for(log, "CUSTOM INFO actor system running", proc)
    finally:
        assert _stop(proc) == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid json"),
        ('{"version": 1, "root": {"handlers": ["missing"]}}', "rejected by logging.config"),
        ("[1, 2]", "a logging config is a table/object"),
    ],
)
def test_a_bad_log_config_is_a_one_line_usage_error(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "logging.json"
    path.write_text(content)
    result = run_cli("run", "nope.py", "--log-config", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    result = run_cli("run", "nope.py", "--log-config", str(tmp_path / "absent.json"))
    assert result.returncode == 2 and "absent.json" in result.stderr


def test_reload_restarts_the_system_when_its_file_changes(redis_url: str, tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    system_file = tmp_path / "work.py"
    system_file.write_text(FAILING)
    log = tmp_path / "run.log"
    proc = _start([str(system_file), "--url", redis_url, "--reload"], log, cwd=tmp_path)
    try:
        _wait_for(log, "actor system running", proc)
        with Client(redis_url) as client:
            assert client.ask("list:work", 1) == "v1"
            system_file.write_text(FAILING.replace('"v1"', '"v2"'))
            deadline = time.monotonic() + 30
            while client.ask("list:work", 1, timeout=10) != "v2":
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert "reloading:" in log.read_text()
    finally:
        assert _stop(proc) == 0


def test_the_json_formatter_is_usable_in_a_dict_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logging.json"
    path.write_text(
        json.dumps(
            {
                "formatters": {"json": {"()": "actors.JsonFormatter"}},
                "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "json"}},
                "loggers": {"probe": {"level": "INFO", "handlers": ["err"]}},
            }
        )
    )
    configure_logging("INFO", config=str(path))
    logging.getLogger("probe").info("hello %s", "there", extra={"event": "probe", "attempt": 2})
    line = json.loads(capsys.readouterr().err)
    assert (line["message"], line["event"], line["attempt"]) == ("hello there", "probe", 2)
    logging.getLogger("probe").handlers.clear()
