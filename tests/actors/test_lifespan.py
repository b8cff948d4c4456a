"""Constructor arguments (``Actor.spec(args=, kwargs=, factory=)``) and the system's
lifespan (``@system.lifespan``, ``on_startup``, ``on_shutdown``): in-process on the
memory transport and on Redis, and under ``python -m actors run`` (#16 item 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
import trio

from actors import (
    Actor,
    ActorContext,
    ActorSystem,
    ClosedError,
    ConfigurationError,
    LifespanError,
    Supervisor,
    list_mailbox,
)
from actors.testing import run_test_system
from tests.conftest import wait_for


class Greeter(Actor):
    mailbox = list_mailbox("greet")

    def __init__(self, greeting: str, *, punctuation: str = ".") -> None:
        self.greeting = greeting
        self.punctuation = punctuation

    async def receive(self, name: str) -> str:
        return f"{self.greeting}, {name}{self.punctuation}"


async def test_spec_args_and_kwargs_reach_every_instance() -> None:
    system = ActorSystem()
    system.supervise(
        Supervisor(Greeter.spec(instances=2, args=("Hello",), kwargs={"punctuation": "!"}))
    )
    async with run_test_system(system):
        assert await system.ask("greet", "Ada", reply_type=str) == "Hello, Ada!"


async def test_a_restarted_instance_is_built_again_with_its_arguments() -> None:
    built: list[str] = []

    class Fragile(Actor):
        mailbox = list_mailbox("fragile")
        on_error = {RuntimeError: "restart"}

        def __init__(self, tag: str) -> None:
            built.append(tag)

        async def receive(self, msg: str) -> str:
            if msg == "crash":
                raise RuntimeError("boom")
            return msg

    system = ActorSystem()
    system.supervise(Supervisor(Fragile.spec(args=("t",)), backoff=None))
    async with run_test_system(system) as probe:
        await system.tell("fragile", "crash")
        await probe.drain()
        assert await system.ask("fragile", "ok", reply_type=str) == "ok"
    # Built at start, and again with the same arguments at each restart.
    assert len(built) >= 2 and set(built) == {"t"}


async def test_a_factory_gets_the_context_and_its_resources() -> None:
    system = ActorSystem()

    @system.lifespan
    async def open_things() -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "Hi"}

    def make(context: ActorContext) -> Greeter:
        return Greeter(context.resources["greeting"], punctuation=f" ({context.path})")

    system.supervise(Supervisor(Greeter.spec(factory=make)))
    async with run_test_system(system):
        assert await system.ask("greet", "Bo", reply_type=str) == "Hi, Bo (root/greeter-0)"


async def test_a_factory_that_returns_something_else_fails_the_start() -> None:
    system = ActorSystem()
    system.supervise(Supervisor(Greeter.spec(factory=lambda context: object())))  # type: ignore[arg-type, return-value]
    with pytest.raises(Exception, match="returned <object"):
        async with run_test_system(system):
            pass


def test_factory_and_args_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        Greeter.spec(args=("x",), factory=lambda context: Greeter("x"))
    with pytest.raises(ConfigurationError, match="callable"):
        Greeter.spec(factory="nope")  # type: ignore[arg-type]


def test_hooks_must_be_async() -> None:
    system = ActorSystem()
    with pytest.raises(ConfigurationError, match="async def"):
        system.on_startup(lambda: None)  # type: ignore[arg-type, return-value]
    with pytest.raises(ConfigurationError, match="async def"):
        system.on_shutdown(print)  # type: ignore[arg-type]


class Reader(Actor):
    mailbox = list_mailbox("reader")

    async def receive(self, key: str) -> Any:
        return self.context.resources.get(key)


def _hooked_system(events: list[str]) -> ActorSystem:
    system = ActorSystem()
    system.supervise(Supervisor(Reader.spec()))

    @system.on_shutdown
    async def last() -> None:
        events.append("shutdown-declared-first")

    @system.lifespan
    async def pool() -> AsyncIterator[dict[str, Any]]:
        events.append("open pool")
        try:
            yield {"pool": "the pool"}
        finally:
            events.append("close pool")

    @system.on_startup
    async def warm() -> None:
        events.append("startup")
        system.resources["cache"] = "warm"

    return system


async def test_hooks_run_in_order_around_the_actors_and_share_resources() -> None:
    events: list[str] = []
    system = _hooked_system(events)

    class Watcher(Actor):
        mailbox = list_mailbox("watcher")

        async def on_start(self) -> None:
            events.append(f"actor sees {sorted(self.context.resources)}")

        async def on_stop(self) -> None:
            events.append("actor stops")

        async def receive(self, msg: str) -> None:
            pass

    system.supervise(Supervisor(Watcher.spec(), name="more"))
    async with run_test_system(system):
        assert await system.ask("reader", "pool") == "the pool"
        assert await system.ask("reader", "cache") == "warm"
        assert system.resources == {"pool": "the pool", "cache": "warm"}
    assert events == [
        "open pool",
        "startup",
        "actor sees ['cache', 'pool']",
        "actor stops",
        "close pool",
        "shutdown-declared-first",
    ]
    with pytest.raises(ClosedError):
        system.resources  # noqa: B018
    # A second run opens them again, from empty resources.
    events.clear()
    async with run_test_system(system):
        assert await system.ask("reader", "cache") == "warm"
    assert events[0] == "open pool"


async def test_a_failing_startup_hook_fails_the_start_and_closes_what_opened() -> None:
    events: list[str] = []
    system = _hooked_system(events)

    @system.on_startup
    async def broken() -> None:
        raise OSError("database down")

    @system.on_shutdown
    async def never() -> None:
        events.append("never")  # declared after the failure: not reached

    with pytest.raises(LifespanError, match=r"startup hook .*broken failed at start") as info:
        async with system.lifecycle.running(_memory()):
            pytest.fail("the body must not run")
    assert isinstance(info.value.__cause__, OSError)
    assert events == ["open pool", "startup", "close pool", "shutdown-declared-first"]


async def test_a_lifespan_yielding_a_non_mapping_fails_the_start() -> None:
    system = ActorSystem(url="memory://")

    @system.lifespan
    async def odd() -> AsyncIterator[int]:
        yield 3

    with pytest.raises(LifespanError, match="yield a mapping"):
        await system.run()


async def test_a_failing_shutdown_hook_runs_the_others_and_fails_the_run() -> None:
    events: list[str] = []
    system = ActorSystem(url="memory://")

    @system.on_shutdown
    async def fine() -> None:
        events.append("fine")

    @system.on_shutdown
    async def bad() -> None:
        raise ValueError("flush failed")

    with pytest.raises(LifespanError, match="bad failed at stop"):
        async with system:
            pass
    assert events == ["fine"]


async def test_shutdown_hooks_run_even_when_the_run_is_cancelled() -> None:
    events: list[str] = []
    system = ActorSystem(url="memory://")

    @system.on_shutdown
    async def close() -> None:
        await trio.sleep(0.01)  # would raise Cancelled if not shielded
        events.append("closed")

    with trio.move_on_after(0.05):
        await system.run()
    assert events == ["closed"]


async def test_lifespan_on_redis(redis_url: str) -> None:
    system = ActorSystem(redis_url)
    system.supervise(Supervisor(Reader.spec()))

    @system.lifespan
    async def counter() -> AsyncIterator[dict[str, Any]]:
        # The store is open at both ends of the lifespan.
        await system.redis.set("lifespan:opened", 1)
        yield {"redis-ok": True}
        await system.redis.set("lifespan:closed", 1)

    async with system:
        assert await system.ask("reader", "redis-ok") is True
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.get("lifespan:opened") == b"1" and client.get("lifespan:closed") == b"1"
    finally:
        client.close()


def _memory() -> Any:
    from transports.memory import MemoryTransport

    return MemoryTransport()


CLI_SYSTEM = textwrap.dedent(
    """
    import os, sys
    from actors import ActorSystem

    system = ActorSystem()

    @system.actor(list="jobs")
    async def work(n: int) -> None:
        pass

    @system.on_startup
    async def hello() -> None:
        if os.environ.get("FAIL_START"):
            raise RuntimeError("cannot reach the database")
        await system.redis.sadd("started", os.getpid())

    @system.on_shutdown
    async def bye() -> None:
        await system.redis.sadd("stopped", os.getpid())
    """
)


@pytest.fixture
def db(redis_url: str) -> Any:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_run_runs_the_hooks_in_every_worker(
    tmp_path: Path, redis_url: str, db: redis.Redis
) -> None:
    path = tmp_path / "hooks.py"
    path.write_text(CLI_SYSTEM)
    proc = subprocess.Popen(
        [sys.executable, "-m", "actors", "run", str(path), "--workers", "2"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ACTORS_URL": redis_url},
    )
    try:
        wait_for(lambda: db.scard("started") == 2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert db.smembers("stopped") == db.smembers("started")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def test_a_failing_startup_hook_exits_run_with_status_1(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "hooks.py"
    path.write_text(CLI_SYSTEM)
    result = subprocess.run(
        [sys.executable, "-m", "actors", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ACTORS_URL": redis_url, "FAIL_START": "1"},
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "error: startup hook" in result.stderr
    assert "cannot reach the database" in result.stderr
