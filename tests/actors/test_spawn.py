"""Children started and stopped at run time: ``start_child``, ``stop_child``, ``Pool``,
``system.supervisor(name)`` (#16 item 3a), on the memory transport and on Redis."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from actors import (
    Actor,
    ActorSystem,
    ChildSpec,
    ChildState,
    ClosedError,
    Pool,
    SpawnError,
    Supervisor,
    SupervisorError,
    list_mailbox,
)
from actors.testing import run_test_system


class Echo(Actor):
    mailbox = list_mailbox("echo")

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    async def receive(self, msg: str) -> str:
        return f"{self.prefix}{msg} from {self.context.path}"


class Other(Actor):
    mailbox = list_mailbox("other")

    async def receive(self, msg: str) -> str:
        return f"other {msg}"


class FailsToStart(Actor):
    mailbox = list_mailbox("fails")

    async def on_start(self) -> None:
        raise OSError("no database")

    async def receive(self, msg: str) -> None:
        pass


def _states(system: ActorSystem, path: str) -> dict[str, ChildState]:
    node = system.tree().find(path)
    assert node is not None
    return {child.name: child.state for child in node.children}


async def test_start_child_and_stop_child_on_a_running_supervisor() -> None:
    system = ActorSystem()
    system.supervise(Supervisor([Echo.spec()], name="root"))
    async with run_test_system(system) as probe:
        root = system.supervisor("root")
        # Other was declared nowhere: started at run time, it becomes addressable by name.
        await root.start_child(Other.spec())
        assert _states(system, "root") == {
            "echo-0": ChildState.RUNNING,
            "other-0": ChildState.RUNNING,
        }
        assert await system.ask("other", "hi", reply_type=str) == "other hi"
        await root.stop_child("other-0")
        assert _states(system, "root") == {"echo-0": ChildState.RUNNING}
        # Nobody consumes its mailbox any more: a message waits there.
        await system.tell("other", "later")
        await probe.drain()
        assert Other.mailbox is not None
        assert (await system.transport.mailbox_stats(Other.mailbox)).depth == 1
        # And a declared child can be stopped and removed too.
        await root.stop_child("echo-0")
        assert _states(system, "root") == {}


async def test_a_bad_spawn_is_a_spawn_error_and_the_supervisor_goes_on() -> None:
    system = ActorSystem()
    system.supervise(Supervisor([Echo.spec()], name="root"))
    async with run_test_system(system):
        root = system.supervisor("root")
        with pytest.raises(SpawnError, match="runs already"):
            await root.start_child(Echo.spec())  # echo-0 is taken
        with pytest.raises(SpawnError, match="failed to start") as info:
            await root.start_child(FailsToStart.spec(instances=2))
        assert isinstance(info.value.__cause__, OSError)
        with pytest.raises(SpawnError, match="no child named 'nope'"):
            await root.stop_child("nope")
        with pytest.raises(SpawnError, match="no running supervisor named 'nope'"):
            system.supervisor("nope")
        assert _states(system, "root") == {"echo-0": ChildState.RUNNING}
        assert await system.ask("echo", "still", reply_type=str) == "still from root/echo-0"


async def test_an_instance_name_running_elsewhere_on_the_node_is_refused() -> None:
    system = ActorSystem()
    system.supervise(Supervisor([Echo.spec(), Supervisor([], name="inner")], name="root"))
    async with run_test_system(system):
        inner = system.supervisor("root/inner")
        assert inner is system.supervisor("inner")
        with pytest.raises(SpawnError, match="two instances would consume under one name"):
            await inner.start_child(Echo.spec())
        assert _states(system, "root/inner") == {}


async def test_start_child_needs_a_running_supervisor() -> None:
    supervisor = Supervisor([], name="idle")
    with pytest.raises(SpawnError, match="not running"):
        await supervisor.start_child(Echo.spec())
    with pytest.raises(SpawnError, match="not running"):
        await supervisor.stop_child("echo-0")
    with pytest.raises(ClosedError):
        ActorSystem().supervisor("system")


async def test_a_pool_spawns_instances_with_their_own_arguments() -> None:
    system = ActorSystem()
    pool = Pool(Echo, max_restarts=2)
    system.supervise(Supervisor([pool], name="root"))
    async with run_test_system(system):
        assert system.supervisor("echo-pool") is pool
        assert _states(system, "root/echo-pool") == {}
        first = await pool.spawn(args=("A:",))
        second = await pool.spawn(kwargs={"prefix": "B:"})
        assert (first, second) == ("echo-0", "echo-1")
        replies = {await system.ask("echo", str(n), reply_type=str) for n in range(20)}
        # Both instances share the mailbox, each built with its own arguments.
        assert {r.split(" from ")[0][:2] for r in replies} <= {"A:", "B:"}
        await pool.stop_child(first)
        assert _states(system, "root/echo-pool") == {"echo-1": ChildState.RUNNING}
        assert await system.ask("echo", "x", reply_type=str) == "B:x from root/echo-pool/echo-1"
        assert await pool.spawn(factory=lambda context: Echo("C:")) == "echo-2"


async def test_a_pool_of_an_actor_is_addressable_before_any_spawn() -> None:
    system = ActorSystem()
    system.supervise(Supervisor([Pool(Echo)], name="root"))
    assert system.resolve("echo") == Echo.mailbox


class Crasher(Actor):
    mailbox = list_mailbox("crash")
    on_error = {RuntimeError: "restart"}

    async def receive(self, msg: str) -> None:
        raise RuntimeError(msg)


async def test_restart_intensity_counts_dynamic_children(autojump_clock: MockClock) -> None:
    system = ActorSystem()
    pool = Pool(Crasher, max_restarts=1, within=60.0, backoff=None)
    system.supervise(Supervisor([pool], name="root", max_restarts=0))
    with pytest.raises(SupervisorError, match=r"crasher-pool.*crasher-0"):  # noqa: PT012
        async with run_test_system(system) as probe:
            await pool.spawn()
            # Each delivery crashes it: a restart, then one too many within the window.
            await system.tell("crash", "boom")
            await probe.drain()
            await trio.sleep(math.inf)  # the failing root ends the run


@pytest.fixture
def autojump_clock() -> MockClock:
    return MockClock(autojump_threshold=0)


async def test_start_child_takes_any_child_spec() -> None:
    started = trio.Event()

    async def ticker(stop: trio.Event, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        started.set()
        await stop.wait()

    supervisor = Supervisor([], name="plain")
    async with trio.open_nursery() as nursery:
        stop = trio.Event()
        await nursery.start(supervisor.run, stop)
        await supervisor.start_child([ChildSpec("ticker", ticker), Supervisor([], name="sub")])
        assert started.is_set()
        assert [c.name for c in supervisor.tree().children] == ["ticker", "sub"]
        assert supervisor.find("sub") is not None
        stop.set()
    with pytest.raises(SpawnError, match="not running"):
        await supervisor.start_child(ChildSpec("late", ticker))


async def test_a_pool_on_redis(redis_url: str) -> None:
    system = ActorSystem(redis_url)
    pool = Pool(Echo, name="echoes")
    system.supervise(Supervisor([pool], name="root"))
    async with system:
        await system.redis.delete("echo")
        for prefix in ("A:", "B:", "C:"):
            await pool.spawn(args=(prefix,))
        replies = [await system.ask(Echo, str(n), reply_type=str) for n in range(10)]
        assert all(" from root/echoes/echo-" in r for r in replies)
        await pool.stop_child("echo-1")
        assert [c.name for c in system.tree().children[0].children] == ["echo-0", "echo-2"]
