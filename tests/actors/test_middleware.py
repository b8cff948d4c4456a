"""Middleware (#17 item 1): around handling and sending, on the system and per actor,
in order; fates and fetches told; each message's fate logged at DEBUG with its id and
attempt. On the memory transport and on Redis."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
import trio

from actors import (
    Actor,
    ActorSystem,
    Backoff,
    ConfigurationError,
    Drop,
    Fate,
    Fetch,
    Handling,
    JsonFormatter,
    Middleware,
    RemoteError,
    Sending,
    list_mailbox,
    stream_mailbox,
)


@attrs.frozen
class Job:
    n: int


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


class Recorder(Middleware):
    """Records what it sees in ``log`` (shared), tagged with its ``name``."""

    def __init__(self, name: str, log: list[Any]) -> None:
        self.name = name
        self.log = log

    async def handle(self, handling: Handling, call_next: Callable[[], Awaitable[Any]]) -> Any:
        info = handling.context.message
        self.log.append((self.name, "in", handling.actor, handling.message, info.attempt))
        try:
            result = await call_next()
        except Exception as exc:
            self.log.append((self.name, "raised", type(exc).__name__))
            raise
        self.log.append((self.name, "out", result))
        return result

    async def send(self, sending: Sending, call_next: Callable[[], Awaitable[Any]]) -> Any:
        sending.headers[f"seen-{self.name}"] = "yes"
        self.log.append((self.name, "send", sending.kind, str(sending.target), sending.sender))
        reply = await call_next()
        self.log.append((self.name, "sent", reply))
        return reply

    def on_fate(self, fate: Fate) -> None:
        self.log.append((self.name, "fate", fate.outcome, fate.attempt, fate.message_id))

    def on_fetch(self, fetch: Fetch) -> None:
        self.log.append((self.name, "fetch", fetch.actor, fetch.size))


async def _until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_handling_runs_through_the_system_s_then_the_actor_s_middleware(url: str) -> None:
    log: list[Any] = []
    seen_headers: list[dict[str, str]] = []

    class Doubler(Actor):
        mailbox = list_mailbox("doubler")
        middleware = [Recorder("actor", log)]

        async def receive(self, msg: Job) -> int:
            log.append(("handler", msg.n))
            seen_headers.append(dict(self.context.message.headers))
            return msg.n * 2

    system = ActorSystem(url, node="mw", middleware=[Recorder("outer", log)])
    system.use(Recorder("inner", log))
    system.actor(Doubler)
    async with system:
        assert await system.ask(Doubler, Job(21)) == 42
        await _until(lambda: any(entry[1] == "fate" for entry in log))
    handling = [entry for entry in log if entry[1] in ("in", "out") or entry[0] == "handler"]
    assert handling == [
        ("outer", "in", "doubler", Job(21), 1),
        ("inner", "in", "doubler", Job(21), 1),
        ("actor", "in", "doubler", Job(21), 1),
        ("handler", 21),
        ("actor", "out", 42),
        ("inner", "out", 42),
        ("outer", "out", 42),
    ]
    # The ask went through the system's middleware (not the actor's: it was not sent
    # from the actor), whose headers reached the handler.
    sends = [entry for entry in log if entry[1] in ("send", "sent")]
    assert sends[0] == ("outer", "send", "ask", "list:doubler", None)
    assert sends[1] == ("inner", "send", "ask", "list:doubler", None)
    assert sends[-1] == ("outer", "sent", 42)
    assert not any(entry[0] == "actor" for entry in sends)
    assert seen_headers == [{"seen-outer": "yes", "seen-inner": "yes"}]
    fates = [entry[:4] for entry in log if entry[1] == "fate"]
    assert fates == [(name, "fate", "handled", 1) for name in ("outer", "inner", "actor")]
    assert ("outer", "fetch", "doubler", 1) in log


async def test_a_middleware_short_circuits_replaces_and_swallows(url: str) -> None:
    called: list[int] = []

    class Gate(Middleware):
        async def handle(self, handling: Handling, call_next: Callable[[], Awaitable[Any]]) -> Any:
            if handling.message.n < 0:
                return -1  # short-circuit: the handler never runs
            try:
                return await call_next() + 1000
            except ValueError:
                return 0  # the handler's exception, swallowed: the message is handled

    class Worker(Actor):
        mailbox = stream_mailbox("gated")
        middleware = [Gate()]

        async def receive(self, msg: Job) -> int:
            called.append(msg.n)
            if msg.n == 13:
                raise ValueError("unlucky")
            return msg.n

    system = ActorSystem(url, node="mw")
    system.actor(Worker)
    async with system:
        assert await system.ask(Worker, Job(-5)) == -1
        assert await system.ask(Worker, Job(7)) == 1007
        assert await system.ask(Worker, Job(13)) == 0
    assert called == [7, 13]


async def test_a_middleware_sees_failures_retries_and_dead_letters(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[Any] = []

    class Flaky(Actor):
        mailbox = list_mailbox("flaky")
        max_deliveries = 2
        retry_backoff = Backoff(min=0.01, max=0.01)

        async def receive(self, msg: Job) -> None:
            if msg.n == 0:
                raise Drop
            raise RuntimeError(f"boom {msg.n}")

    system = ActorSystem(url, node="mw", middleware=[Recorder("m", log)])
    system.actor(Flaky)
    with caplog.at_level(logging.DEBUG, logger="actors.actor"):
        async with system:
            await system.tell(Flaky, Job(0))
            with pytest.raises(RemoteError, match="boom 1"):
                await system.ask(Flaky, Job(1))
            await _until(lambda: sum(entry[1] == "fate" for entry in log) == 3)
    raised = [entry[2] for entry in log if entry[1] == "raised"]
    assert raised == ["Drop", "RuntimeError", "RuntimeError"]
    fates = [entry[2:4] for entry in log if entry[1] == "fate"]
    # A retry is told with the attempt that failed.
    assert fates == [("dropped", 1), ("retried", 1), ("dead_lettered", 2)]
    # At DEBUG, each fate is one line with the message id and attempt as extras.
    lines = [r for r in caplog.records if getattr(r, "event", None) in ("dropped", "dead_lettered")]
    assert [(r.event, r.attempt) for r in lines] == [("dropped", 1), ("dead_lettered", 2)]  # type: ignore[attr-defined]
    ids = {entry[4] for entry in log if entry[1] == "fate"}
    assert {r.message_id for r in lines} == ids  # type: ignore[attr-defined]
    assert "dead-lettered (attempt 2): RuntimeError: boom 1" in lines[1].getMessage()
    # --log-format json shows them.
    shown = json.loads(JsonFormatter().format(lines[1]))
    assert shown["event"] == "dead_lettered" and shown["attempt"] == 2
    assert shown["message_id"] in ids and shown["path"] == "system/flaky-0"
    assert shown["mailbox"] == "list:flaky"
    retry = [r for r in caplog.records if getattr(r, "event", None) == "retry"]
    assert [r.attempt for r in retry] == [1]  # type: ignore[attr-defined]


async def test_an_actor_s_sends_go_through_its_own_middleware_inside_the_system_s(
    url: str,
) -> None:
    log: list[Any] = []
    got: list[dict[str, str]] = []

    class Sink(Actor):
        mailbox = list_mailbox("sink")

        async def receive(self, msg: Job) -> None:
            got.append(dict(self.context.message.headers))

    class Source(Actor):
        mailbox = list_mailbox("source")
        middleware = [Recorder("source", log)]

        async def receive(self, msg: Job) -> None:
            await self.context.tell(Sink, msg, headers={"given": "1"})

    system = ActorSystem(url, node="mw", middleware=[Recorder("system", log)])
    system.actor(Sink)
    system.actor(Source)
    async with system:
        await system.tell_many(Source, [Job(1)])
        await _until(lambda: got)
    assert got == [{"given": "1", "seen-system": "yes", "seen-source": "yes"}]
    sends = [entry for entry in log if entry[1] == "send"]
    assert sends == [
        ("system", "send", "tell", "list:source", None),
        ("system", "send", "tell", "list:sink", "system/source-0"),
        ("source", "send", "tell", "list:sink", "system/source-0"),
    ]


async def test_only_middleware_is_accepted() -> None:
    system = ActorSystem("memory://")
    with pytest.raises(ConfigurationError, match=r"actors\.Middleware"):
        system.use(object())  # type: ignore[arg-type]
    mw = Middleware()
    assert system.use(mw) is mw
    assert system.middleware == (mw,)
