"""Death watch: ``monitor`` / ``demonitor`` and ``Down`` messages, for instances on this
node and on others (node heartbeats), on the memory transport and on Redis (#16 item 3b).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
import trio
from trio.testing import MockClock

from actors import (
    Actor,
    ActorSystem,
    ConfigurationError,
    Down,
    Pool,
    Supervisor,
    _node,
    handler,
    list_mailbox,
)
from actors.testing import run_test_system
from transports.memory import MemoryTransport


@attrs.frozen
class Monitor:
    target: str
    node: str = ""


@attrs.frozen
class Demonitor:
    ref: str


def watcher(downs: list[Down]) -> type[Actor]:
    """An actor that monitors what it is told to, and records the Downs it gets."""

    class Watcher(Actor):
        mailbox = list_mailbox("watcher")

        @handler
        async def down(self, msg: Down) -> None:
            downs.append(msg)

        @handler
        async def watch(self, msg: Monitor) -> str:
            return await self.monitor(msg.target, node=msg.node or None)

        @handler
        async def unwatch(self, msg: Demonitor) -> None:
            self.demonitor(msg.ref)

    return Watcher


class Echo(Actor):
    mailbox = list_mailbox("echo")

    async def receive(self, msg: str) -> str:
        return msg


class Stopper(Actor):
    """Crashes on "crash": "stop" leaves it down, "restart" brings it back."""

    mailbox = list_mailbox("stopper")
    on_error = {RuntimeError: "stop", KeyError: "restart"}

    async def receive(self, msg: str) -> None:
        if msg == "stop":
            raise RuntimeError("stopped for good")
        raise KeyError("restarted")


async def _monitor(system: ActorSystem, target: str, node: str = "") -> str:
    ref = await system.ask("watcher", Monitor(target, node), reply_type=str)
    assert isinstance(ref, str)
    return ref


async def test_a_stopped_instance_sends_down_normal() -> None:
    downs: list[Down] = []
    system = ActorSystem(node="here")
    system.supervise(Supervisor([watcher(downs).spec(), Echo.spec()], name="root"))
    async with run_test_system(system) as probe:
        ref = await _monitor(system, "echo-0")
        await probe.drain()
        assert downs == []
        await system.supervisor("root").stop_child("echo-0")
        await probe.drain()
        assert downs == [Down("echo-0", "normal", "here", ref)]


async def test_a_crash_that_is_not_restarted_sends_down_with_the_error() -> None:
    downs: list[Down] = []
    system = ActorSystem(node="here")
    system.supervise(Supervisor([watcher(downs).spec(), Stopper.spec()], name="root"))
    async with run_test_system(system) as probe:
        await _monitor(system, "stopper")  # by actor name
        await system.tell("stopper", "restart")
        await probe.drain()
        assert downs == []  # a restart is not a death
        await system.tell("stopper", "stop")
        await probe.drain()
        assert [(d.who, d.reason) for d in downs] == [
            ("stopper", "RuntimeError('stopped for good')")
        ]


async def test_an_actor_name_is_down_when_its_last_instance_is() -> None:
    downs: list[Down] = []
    system = ActorSystem(node="here")
    pool = Pool(Echo)
    system.supervise(Supervisor([watcher(downs).spec(), pool], name="root"))
    async with run_test_system(system) as probe:
        await pool.spawn()
        await pool.spawn()
        await _monitor(system, "echo")
        await _monitor(system, "echo-pool")  # a supervisor, by its name
        await pool.stop_child("echo-0")
        await probe.drain()
        assert downs == []
        await pool.stop_child("echo-1")
        await probe.drain()
        assert [d.who for d in downs] == ["echo"]
        await system.supervisor("root").stop_child("echo-pool")
        await probe.drain()
        assert [d.who for d in downs] == ["echo", "echo-pool"]


async def test_monitoring_what_is_not_running_sends_noproc_at_once() -> None:
    downs: list[Down] = []
    system = ActorSystem(node="here")
    system.supervise(Supervisor([watcher(downs).spec()], name="root"))
    async with run_test_system(system) as probe:
        ref = await _monitor(system, "ghost")
        await probe.drain()
        assert downs == [Down("ghost", "noproc", "here", ref)]


async def test_demonitor_and_the_watchers_end_drop_the_monitor() -> None:
    downs: list[Down] = []
    system = ActorSystem(node="here")
    system.supervise(Supervisor([watcher(downs).spec(), Echo.spec(), Stopper.spec()], name="root"))
    async with run_test_system(system) as probe:
        ref = await _monitor(system, "echo-0")
        await system.tell("watcher", Demonitor(ref))
        await _monitor(system, "stopper-0")
        root = system.supervisor("root")
        await root.stop_child("watcher-0")  # its monitors end with it
        await root.stop_child("echo-0")
        await root.stop_child("stopper-0")
        await probe.drain()
        assert downs == []


async def test_stopping_the_system_sends_no_down() -> None:
    downs: list[Down] = []
    transport = MemoryTransport()
    system = ActorSystem(node="here")
    # The inner supervisor stops (and its echo with it) while the watcher still runs.
    inner = Supervisor([Echo.spec()], name="inner")
    system.supervise(Supervisor([watcher(downs).spec(), inner], name="root"))
    async with system.lifecycle.running(transport):
        await _monitor(system, "echo-0")
    # Nothing was left in the watcher's mailbox for the next run.
    stats = await transport.mailbox_stats(list_mailbox("watcher"))
    assert stats.depth == 0


def test_monitor_outside_an_instance_is_refused() -> None:
    from actors import ActorContext

    context = ActorContext(None, "p", "c")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="running actor instance"):
        trio.run(context.monitor, "x")


# -- other nodes ---------------------------------------------------------------------------


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    def set_heartbeat(seconds: float) -> None:
        monkeypatch.setattr(_node, "HEARTBEAT", seconds)

    return set_heartbeat


async def test_down_from_another_node_normal_then_noconnection(
    fast_heartbeat: Callable[[float], None], autojump_clock: MockClock
) -> None:
    fast_heartbeat(1.0)
    downs: list[Down] = []
    transport = MemoryTransport()
    async with trio.open_nursery() as nursery:
        b_done = trio.Event()
        b_stop = trio.Event()
        a = ActorSystem(node="a")
        a.supervise(Supervisor([watcher(downs).spec()], name="root"))
        b = ActorSystem(node="b")
        b.supervise(Supervisor([Echo.spec(instances=2)], name="root"))

        async def run_b(task_status: trio.TaskStatus[None]) -> None:
            async with b.lifecycle.running(transport):
                task_status.started()
                await b_stop.wait()
            b_done.set()

        await nursery.start(run_b)
        async with a.lifecycle.running(transport):
            await trio.sleep(2.0)  # b announced its instances
            first = await _monitor(a, "echo-0", "b")
            second = await _monitor(a, "echo-1", "b")
            await b.supervisor("root").stop_child("echo-0")
            await trio.sleep(3.0)  # b's next heartbeat, a's next look
            assert downs == [Down("echo-0", "normal", "b", first)]
            b_stop.set()
            await b_done.wait()  # b is gone: its record withdrawn
            await trio.sleep(3.0)
            assert downs[1:] == [Down("echo-1", "noconnection", "b", second)]
            # Monitoring on a node that is not alive: noconnection at once.
            gone = await _monitor(a, "echo-1", "b")
            await trio.sleep(0.1)
            assert downs[2:] == [Down("echo-1", "noconnection", "b", gone)]


async def test_a_node_that_stops_heartbeating_is_down_after_three_heartbeats(
    fast_heartbeat: Callable[[float], None], autojump_clock: MockClock
) -> None:
    fast_heartbeat(1.0)
    downs: list[Down] = []
    transport = MemoryTransport()
    # A killed node: its record was announced, and is never refreshed nor withdrawn.
    await transport.announce(
        "dead", {"alive": ["worker-0"], "down": {}}, 3 * _node.HEARTBEAT, instance="x"
    )
    a = ActorSystem(node="a")
    a.supervise(Supervisor([watcher(downs).spec()], name="root"))
    async with a.lifecycle.running(transport):
        started = trio.current_time()
        ref = await _monitor(a, "worker-0", "dead")
        missing = await _monitor(a, "worker-9", "dead")
        await trio.sleep(0.5)
        assert downs == [Down("worker-9", "noproc", "dead", missing)]
        with trio.fail_after(10):
            while len(downs) < 2:
                await trio.sleep(0.1)
        assert downs[1] == Down("worker-0", "noconnection", "dead", ref)
        assert trio.current_time() - started >= 3 * _node.HEARTBEAT - 0.5


async def test_a_remote_crash_reason_is_announced(
    fast_heartbeat: Callable[[float], None], autojump_clock: MockClock
) -> None:
    fast_heartbeat(1.0)
    downs: list[Down] = []
    transport = MemoryTransport()
    a = ActorSystem(node="a")
    a.supervise(Supervisor([watcher(downs).spec()], name="root"))
    b = ActorSystem(node="b")
    b.supervise(Supervisor([Stopper.spec()], name="root"))
    async with b.lifecycle.running(transport), a.lifecycle.running(transport):
        await trio.sleep(2.0)
        await _monitor(a, "stopper-0", "b")
        await b.tell("stopper", "stop")
        await trio.sleep(3.0)
        assert [(d.who, d.reason) for d in downs] == [
            ("stopper-0", "RuntimeError('stopped for good')")
        ]


@pytest.fixture
def autojump_clock() -> MockClock:
    return MockClock(autojump_threshold=0)


async def test_death_watch_across_nodes_on_redis(
    redis_url: str, fast_heartbeat: Callable[[float], None]
) -> None:
    fast_heartbeat(0.2)
    downs: list[Down] = []
    a = ActorSystem(redis_url, node="watch-a")
    a.supervise(Supervisor([watcher(downs).spec()], name="root"))
    b = ActorSystem(redis_url, node="watch-b")
    b.supervise(Supervisor([Echo.spec(instances=2)], name="root"))
    async with a:
        await a.redis.delete("watcher")
        async with b:
            await trio.sleep(0.5)
            first = await _monitor(a, "echo-0", "watch-b")
            second = await _monitor(a, "echo-1", "watch-b")
            await b.supervisor("root").stop_child("echo-0")
            with trio.fail_after(10):
                while not downs:
                    await trio.sleep(0.05)
            assert downs == [Down("echo-0", "normal", "watch-b", first)]
        with trio.fail_after(10):
            while len(downs) < 2:
                await trio.sleep(0.05)
        assert downs[1] == Down("echo-1", "noconnection", "watch-b", second)
