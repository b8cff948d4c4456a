"""``tell(..., delay=/at=)`` (issue 16 item 2): the message reaches the actor at its due
time, from the system, a handler, and across a stop of every system (Redis)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing

from actors import (
    Actor,
    ActorSystem,
    ConfigurationError,
    Middleware,
    Sending,
    Supervisor,
    handler,
    list_mailbox,
)
from actors.testing import run_test_system
from transports.redis import RedisTransport


def new_system() -> ActorSystem:
    return ActorSystem("memory://", node="test")


async def test_tell_with_a_delay_arrives_when_due(autojump_clock: trio.testing.MockClock) -> None:
    system = new_system()
    got: list[tuple[str, float]] = []

    @system.actor(list="in")
    async def record(msg: str) -> None:
        got.append((msg, trio.current_time()))

    async with run_test_system(system) as probe:
        start = trio.current_time()
        await system.tell("in", "in 3s", delay=3)
        await system.tell("in", "in 1s", delay=timedelta(seconds=1))
        await system.tell_many("in", ["a", "b"], delay=2.0)
        await system.tell("in", "now")
        await trio.sleep(5)
        await probe.drain()
    assert [msg for msg, _ in got] == ["now", "in 1s", "a", "b", "in 3s"]
    assert [round(at - start, 3) for _, at in got] == [0.0, 1.0, 2.0, 2.0, 3.0]


async def test_tell_at_a_time(autojump_clock: trio.testing.MockClock) -> None:
    system = new_system()
    got: list[float] = []

    @system.actor(list="in")
    async def record(msg: str) -> None:
        got.append(trio.current_time())

    async with run_test_system(system) as probe:
        start = trio.current_time()
        await system.tell("in", "x", at=datetime.now(UTC) + timedelta(seconds=4))
        await system.tell("in", "past", at=datetime.now(UTC) - timedelta(days=1))
        await trio.sleep(5)
        await probe.drain()
    assert got[0] == pytest.approx(start, abs=0.01)
    assert got[1] - start == pytest.approx(4.0, abs=0.1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delay": 1, "at": datetime.now(UTC)}, "not both"),
        ({"delay": -1}, "delay"),
        ({"delay": "soon"}, "delay"),
        ({"at": datetime(2030, 1, 1)}, "time zone"),
    ],
)
async def test_a_bad_delay_or_time_is_refused(kwargs: dict[str, object], match: str) -> None:
    system = new_system()

    @system.actor(list="in")
    async def record(msg: str) -> None:
        pass

    async with run_test_system(system):
        with pytest.raises(ConfigurationError, match=match):
            await system.tell("in", "x", **kwargs)  # type: ignore[arg-type]


class Reminder(Actor):
    mailbox = list_mailbox("reminders")
    seen: list[tuple[str, float]] = []

    @handler
    async def remind(self, msg: str) -> None:
        Reminder.seen.append((msg, trio.current_time()))
        if msg == "start":
            await self.tell(Reminder, "again", delay=2.5)


async def test_a_handler_tells_itself_later(autojump_clock: trio.testing.MockClock) -> None:
    Reminder.seen = []
    system = new_system()
    system.supervise(Supervisor([Reminder.spec()]))
    async with run_test_system(system) as probe:
        start = trio.current_time()
        await system.tell(Reminder, "start")
        await trio.sleep(3)
        await probe.drain()
    assert [(msg, round(at - start, 3)) for msg, at in Reminder.seen] == [
        ("start", 0.0),
        ("again", 2.5),
    ]


async def test_a_delayed_tell_survives_a_stop_of_every_system(redis_url: str) -> None:
    sender = ActorSystem(redis_url, node="sender")
    async with sender:
        await sender.tell("list:later", "durable", delay=0.3)
    await trio.sleep(0.5)  # due while nothing runs
    receiver = ActorSystem(redis_url, node="receiver")
    got = trio.Event()

    @receiver.actor(list="later")
    async def record(msg: str) -> None:
        assert msg == "durable"
        got.set()

    async with receiver:
        with trio.fail_after(5):
            await got.wait()
    async with RedisTransport.from_url(redis_url) as transport:
        assert await transport.client.execute_command(b"ZCARD", "{actors:scheduled}") == 0


async def test_middleware_sees_the_delay(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[float] = []

    class Spy(Middleware):
        async def send(self, sending: Sending, call_next: Callable[[], Awaitable[Any]]) -> Any:
            seen.append(sending.delay)
            return await call_next()

    system = ActorSystem("memory://", node="test", middleware=[Spy()])
    got: list[float] = []

    @system.actor(list="in")
    async def record(msg: str) -> None:
        got.append(trio.current_time())

    async with run_test_system(system) as probe:
        start = trio.current_time()
        await system.tell("in", "x", delay=1.5)
        await system.tell_many("in", ["y"])
        await trio.sleep(2)
        await probe.drain()
    assert seen == [1.5, 0.0]
    assert sorted(round(at - start, 3) for at in got) == [0.0, 1.5]
