"""Helpers of the fault-injection suite: a report of what each fault cost, runtime
processes to kill, and message bookkeeping that survives the faults it measures.

Every fault test counts every message id: ids are known up front (or counted when
Redis acknowledged the send), handlers record what they handled somewhere the fault
does not touch (a file for runtime processes, memory for in-process systems), and
the test compares the two. :func:`chaos_report` writes one JSON line per fault to
``$CHAOS_REPORT`` when set, else to ``chaos-report.jsonl`` in pytest's base temp dir.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis

from actors import ChildInfo, ChildState
from actors._codec import encode
from tests.conftest import wait_for as wait_for  # the chaos tests import it from here
from transports.testing import PrivateRedis

Report = Callable[..., dict[str, Any]]


@attrs.frozen
class Tally:
    """What became of the messages of one fault test."""

    sent: int
    handled: int  # distinct ids handled at least once
    duplicated: int  # extra handlings beyond the first
    lost: int  # acknowledged as sent, never handled
    lost_ids: tuple[int, ...]

    @classmethod
    def of(cls, sent: Collection[int], handled: Counter[int]) -> Tally:
        lost = sorted(set(sent) - set(handled))
        return cls(
            sent=len(sent),
            handled=len(set(handled) & set(sent)),
            duplicated=sum(handled.values()) - len(handled),
            lost=len(lost),
            lost_ids=tuple(lost[:20]),
        )


@pytest.fixture(scope="session")
def chaos_report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where fault reports go: ``$CHAOS_REPORT``, else the session's temp dir."""
    env = os.environ.get("CHAOS_REPORT")
    return Path(env) if env else tmp_path_factory.getbasetemp() / "chaos-report.jsonl"


@pytest.fixture
def chaos_report(chaos_report_path: Path, request: pytest.FixtureRequest) -> Report:
    """``chaos_report(fault, tally, recover_s=..., **extra)``: append one JSON line."""

    def record(fault: str, tally: Tally, recover_s: float | None, **extra: Any) -> dict[str, Any]:
        row = {
            "fault": fault,
            "test": request.node.nodeid,
            "sent": tally.sent,
            "handled": tally.handled,
            "duplicated": tally.duplicated,
            "lost": tally.lost,
            "recover_s": None if recover_s is None else round(recover_s, 3),
            **extra,
        }
        with chaos_report_path.open("a") as out:
            out.write(json.dumps(row) + "\n")
        return row

    return record


def failed_nodes(tree: ChildInfo) -> list[str]:
    """Paths of the nodes of a tree snapshot that failed (an actor that gave up)."""
    found = [tree.path] if tree.state is ChildState.FAILED else []
    for child in tree.children:
        found += failed_nodes(child)
    return found


def total_restarts(tree: ChildInfo) -> int:
    return tree.restarts + sum(total_restarts(c) for c in tree.children)


# -- runtime processes -------------------------------------------------------------------

#: A system for ``python -m actors run``: one actor on a list or stream mailbox named
#: ``jobs`` that logs ``start``/``done`` lines (id, pid, time) to ``$CHAOS_LOG``.
WORKER_SYSTEM = textwrap.dedent(
    """
    import os
    import random
    import time

    import trio

    from actors import Actor, ActorSystem, list_mailbox, stream_mailbox

    LEASE = float(os.environ.get("CHAOS_LEASE", "1.0"))
    DELAY = float(os.environ.get("CHAOS_DELAY", "0.02"))
    LOG = os.open(os.environ["CHAOS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    system = ActorSystem(node=os.environ.get("CHAOS_NODE") or None)


    def note(event, n):
        os.write(LOG, f"{event} {n} {os.getpid()} {time.time():.6f}\\n".encode())


    class Worker(Actor):
        if os.environ["CHAOS_KIND"] == "list":
            mailbox = list_mailbox("jobs", lease=LEASE)
        else:
            mailbox = stream_mailbox("jobs", lease=LEASE)
        batch_size = int(os.environ.get("CHAOS_BATCH", "10"))

        async def receive(self, n: int) -> None:
            note("start", n)
            await trio.sleep(DELAY * random.uniform(0.5, 1.5))  # out of lockstep
            note("done", n)


    system.actor(instances=int(os.environ.get("CHAOS_INSTANCES", "3")))(Worker)
    """
)


@attrs.frozen
class Event:
    kind: str  # "start" or "done"
    id: int
    pid: int
    at: float


class WorkLog:
    """The ``start``/``done`` lines the runtime processes append to one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def events(self) -> list[Event]:
        out = []
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:  # a line cut by SIGKILL has fewer parts
                out.append(Event(parts[0], int(parts[1]), int(parts[2]), float(parts[3])))
        return out

    def done(self) -> Counter[int]:
        return Counter(e.id for e in self.events() if e.kind == "done")

    def started(self) -> Counter[int]:
        return Counter(e.id for e in self.events() if e.kind == "start")


class Runtime:
    """``python -m actors run FILE --url URL`` as a child process we can kill."""

    def __init__(self, file: Path, url: str, env: dict[str, str], args: Sequence[str] = ()) -> None:
        self.file = file
        self.url = url
        self.env = env
        self.args = tuple(args)  # more options for `run`, such as --workers 2
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._drain: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 20.0) -> Runtime:
        env = {k: v for k, v in os.environ.items() if k != "ACTORS_URL"}
        env.update(self.env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "actors", "run", str(self.file), "--url", self.url, *self.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        started = threading.Event()
        lines = self.lines = []
        stderr = self.process.stderr
        assert stderr is not None

        def drain() -> None:  # keep the pipe flowing, and remember what was said
            for line in stderr:
                lines.append(line)
                if "actor system running" in line:
                    started.set()
            started.set()

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        if not started.wait(timeout) or self.process.poll() is not None:
            self.stop_now()
            raise AssertionError(f"runtime did not start: {''.join(lines)}")
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown at all."""
        self.stop_now()

    def stop_now(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self._reap()

    def terminate(self, timeout: float = 30.0, signum: int = signal.SIGTERM) -> int:
        """SIGTERM (or ``signum``), then wait for the exit status."""
        assert self.process is not None
        self.process.send_signal(signum)
        status = self.process.wait(timeout)
        self._reap()
        return status

    def _reap(self) -> None:
        if self.process is None:
            return
        self.process.wait(10)
        if self._drain is not None:
            self._drain.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def worker_file(tmp_path: Path) -> Path:
    path = tmp_path / "chaos_worker.py"
    path.write_text(WORKER_SYSTEM)
    return path


@pytest.fixture
def runtimes() -> Iterator[list[Runtime]]:
    """Runtime processes made by a test; any left running are killed after it."""
    made: list[Runtime] = []
    yield made
    for runtime in made:
        runtime.stop_now()


def feed(db: redis.Redis, kind: str, ids: Iterable[int], name: str = "jobs") -> None:
    """Put ``ids`` (as actors envelopes) into a list or stream mailbox, in order."""
    payloads = [encode(n) for n in ids]
    if kind == "list":
        for i in range(0, len(payloads), 500):
            db.rpush(name, *payloads[i : i + 500])
        return
    with db.pipeline(transaction=False) as pipe:
        for payload in payloads:
            pipe.xadd(name, {"message": payload})
        pipe.execute()


@pytest.fixture
def db_url(private_redis: PrivateRedis) -> str:
    """The URL of a private redis-server of the test's own."""
    return private_redis().url


@pytest.fixture
def db(db_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client of :func:`db_url`'s server, to look at what is stored."""
    client = redis.Redis.from_url(db_url)
    yield client
    client.close()
