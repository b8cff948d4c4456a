"""Per-actor timers (issue 16 item 2): ``start_timer``/``cancel_timer``, keyed, owned by the
instance (a restart neither loses nor duplicates a timer started in ``on_start``)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import attrs
import pytest
import trio
import trio.testing

from actors import (
    Actor,
    ActorContext,
    ActorSystem,
    ConfigurationError,
    Supervisor,
    handler,
    list_mailbox,
)
from actors._timers import Timers
from actors.testing import run_test_system


@attrs.frozen
class Tick:
    label: str


@attrs.frozen
class Control:
    action: str  # "start-fast", "once", "cancel", "crash"


class Clock(Actor):
    mailbox = list_mailbox("clock")
    ticks: list[tuple[str, float]] = []
    starts = 0

    async def on_start(self) -> None:
        Clock.starts += 1
        self.start_timer("beat", 1.0, Tick("beat"))

    @handler
    async def tick(self, msg: Tick) -> None:
        Clock.ticks.append((msg.label, round(trio.current_time(), 3)))

    @handler
    async def control(self, msg: Control) -> None:
        if msg.action == "start-fast":
            self.start_timer("beat", timedelta(seconds=0.25), Tick("fast"))  # replaces "beat"
        elif msg.action == "once":
            self.start_timer("once", 0.5, Tick("once"), repeat=False)
        elif msg.action == "cancel":
            assert self.cancel_timer("beat")
            assert not self.cancel_timer("beat")
        elif msg.action == "crash":
            raise RuntimeError("crash")


@pytest.fixture
def clock_actor() -> type[Clock]:
    Clock.ticks = []
    Clock.starts = 0
    return Clock


def new_system() -> ActorSystem:
    system = ActorSystem("memory://", node="test")
    system.supervise(Supervisor([Clock.spec()]))
    return system


def since(start: float) -> list[tuple[str, float]]:
    return [(label, round(at - start, 3)) for label, at in Clock.ticks]


async def test_a_timer_ticks_until_cancelled(
    autojump_clock: trio.testing.MockClock, clock_actor: type[Clock]
) -> None:
    system = new_system()
    async with run_test_system(system) as probe:
        start = trio.current_time()
        await trio.sleep(3.5)
        await system.tell(Clock, Control("cancel"))
        await trio.sleep(5)
        await probe.drain()
    assert since(start) == [("beat", 1.0), ("beat", 2.0), ("beat", 3.0)]


async def test_starting_a_key_again_replaces_the_timer(
    autojump_clock: trio.testing.MockClock, clock_actor: type[Clock]
) -> None:
    system = new_system()
    async with run_test_system(system) as probe:
        start = trio.current_time()
        await trio.sleep(1.5)
        await system.tell(Clock, Control("start-fast"))
        await system.tell(Clock, Control("once"))
        await trio.sleep(1.1)
        await probe.drain()
        system.stop()
    got = since(start)
    assert got[0] == ("beat", 1.0)
    # One timer of key "beat" now, every 0.25 s; the one-shot fires once.
    assert [at for label, at in got if label == "beat"] == [1.0]
    assert [at for label, at in got if label == "fast"] == [1.75, 2.0, 2.25, 2.5]
    assert [at for label, at in got if label == "once"] == [2.0]


async def test_timers_die_with_the_instance_and_on_start_brings_them_back(
    autojump_clock: trio.testing.MockClock, clock_actor: type[Clock]
) -> None:
    class Restarting(Clock):
        mailbox = list_mailbox("clock2")
        on_error = {RuntimeError: "restart"}

    system = ActorSystem("memory://", node="test")
    system.supervise(Supervisor([Restarting.spec()]))
    async with run_test_system(system) as probe:
        start = trio.current_time()
        await trio.sleep(2.5)
        await system.tell(Restarting, Control("crash"))
        await trio.sleep(3)
        await probe.drain()
    assert Clock.starts >= 2  # restarted
    ticks = [at - start for _, at in Clock.ticks]
    # Never two ticks closer than the period: the old instance's timer did not survive.
    assert all(b - a >= 0.999 for a, b in itertools.pairwise(ticks))
    assert len(ticks) >= 4


async def test_timers_refuse_a_bad_interval_and_need_a_running_instance(
    autojump_clock: trio.testing.MockClock,
) -> None:
    system = ActorSystem("memory://", node="test")
    errors: list[BaseException] = []

    @system.actor(list="in")
    async def use(msg: str, context: ActorContext) -> None:
        if msg != "go":
            return
        for interval in (0, -1.0, float("nan")):
            try:
                context.start_timer("k", interval, "x")
            except ConfigurationError as exc:
                errors.append(exc)
        context.start_timer("k", 0.5, "from timer", repeat=False)
        assert not context.cancel_timer("other")

    async with run_test_system(system) as probe:
        await system.tell("in", "go")
        await trio.sleep(1)
        await probe.drain()
        assert probe.sent("in") == ["go", "from timer"]
    assert len(errors) == 3
    with pytest.raises(RuntimeError, match="on_start"):
        Timers().start("k", 1, Tick("x"))  # as in an actor's __init__
