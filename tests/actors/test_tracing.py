"""OpenTelemetry tracing (#17 item 3): spans for send, ask and handle, the W3C
``traceparent`` carried in message headers; one trace across a two-hop pipeline whose
hops run in two ``python -m actors run`` processes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, StatusCode

from actors import Actor, ActorSystem, Backoff, list_mailbox
from actors.tracing import Tracing


@attrs.frozen
class Order:
    n: int


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def _parent(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def _trace(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


async def test_one_trace_follows_a_message_through_two_actors_and_an_ask(url: str) -> None:
    provider, exporter = _provider()
    headers: list[dict[str, str]] = []
    done = trio.Event()

    class Last(Actor):
        mailbox = list_mailbox("last")
        max_deliveries = 1

        async def receive(self, msg: Order) -> int:
            headers.append(dict(self.context.message.headers))
            done.set()
            if msg.n < 0:
                raise ValueError("negative")
            return msg.n

    class First(Actor):
        mailbox = list_mailbox("first")

        async def receive(self, msg: Order) -> None:
            await self.context.tell(Last, msg)

    system = ActorSystem(url, node="traced", middleware=[Tracing(provider)])
    system.actor(First)
    system.actor(Last)
    tracer = provider.get_tracer("test")
    async with system:
        with tracer.start_as_current_span("request"):
            await system.tell(First, Order(1))
        with trio.fail_after(10):
            await done.wait()
        with trio.fail_after(10):
            while len(exporter.get_finished_spans()) < 5:
                await trio.sleep(0.01)
        spans = _by_name(exporter.get_finished_spans())
        exporter.clear()
        assert await system.ask(Last, Order(7)) == 7
        asked = _by_name(exporter.get_finished_spans())
    assert set(spans) == {
        "request",
        "tell list:first",
        "handle first",
        "tell list:last",
        "handle last",
    }
    chain = ["request", "tell list:first", "handle first", "tell list:last", "handle last"]
    for parent, child in itertools.pairwise(chain):
        assert _parent(spans[child]) == _id(spans[parent]), (parent, child)
    assert len({_trace(span) for span in spans.values()}) == 1
    assert spans["tell list:first"].kind is SpanKind.PRODUCER
    assert spans["handle last"].kind is SpanKind.CONSUMER
    assert spans["handle last"].attributes is not None
    assert spans["handle last"].attributes["actors.path"] == "system/last-0"
    assert spans["handle last"].attributes["messaging.destination.name"] == "list:last"
    # The W3C header the last hop got names the span of the send that reached it.
    trace_id, span_id = _trace(spans["request"]), _id(spans["tell list:last"])
    assert headers[0]["traceparent"].startswith(f"00-{trace_id:032x}-{span_id:016x}-")
    # An ask: a CLIENT span until the reply, the handler's span its child.
    assert asked["ask list:last"].kind is SpanKind.CLIENT
    assert _parent(asked["handle last"]) == _id(asked["ask list:last"])
    assert asked["ask list:last"].end_time >= asked["handle last"].end_time  # type: ignore[operator]


async def test_a_failing_handler_s_span_records_the_error() -> None:
    provider, exporter = _provider()

    class Broken(Actor):
        mailbox = list_mailbox("broken")
        max_deliveries = 2
        retry_backoff = Backoff(min=0.01, max=0.01)

        async def receive(self, msg: Order) -> None:
            raise ValueError(f"broken {msg.n}")

    system = ActorSystem("memory://", node="traced", middleware=[Tracing(provider)])
    system.actor(Broken)
    async with system:
        await system.tell(Broken, Order(3))
        with trio.fail_after(10):
            while len([s for s in exporter.get_finished_spans() if s.name == "handle broken"]) < 2:
                await trio.sleep(0.01)
    handled = [s for s in exporter.get_finished_spans() if s.name == "handle broken"]
    assert [s.status.status_code for s in handled] == [StatusCode.ERROR] * 2
    assert [s.attributes["actors.attempt"] for s in handled if s.attributes] == [1, 2]
    assert handled[0].events[0].name == "exception"
    # Both attempts belong to the sender's trace.
    assert len({_trace(s) for s in exporter.get_finished_spans()}) == 1


@pytest.mark.parametrize("follow_unsampled", [True, False])
async def test_an_unsampled_trace_is_carried_on_without_spans(follow_unsampled: bool) -> None:
    exporter = InMemorySpanExporter()
    headers: list[dict[str, str]] = []

    class Last(Actor):
        mailbox = list_mailbox("last")

        async def receive(self, msg: Order) -> None:
            headers.append(dict(self.context.message.headers))

    class First(Actor):
        mailbox = list_mailbox("first")

        async def receive(self, msg: Order) -> None:
            await self.context.tell(Last, msg)

    # The SDK's default sampler (parent-based) follows the sender; one that samples
    # whatever the sender decided, asked about each message (follow_unsampled=False),
    # records the handlers' spans.
    sampler = ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)
    handlers = TracerProvider() if follow_unsampled else TracerProvider(sampler=sampler)
    handlers.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(handlers, follow_unsampled=follow_unsampled)
    system = ActorSystem("memory://", node="traced", middleware=[tracing])
    system.actor(First)
    system.actor(Last)
    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    async with system:
        with unsampled.get_tracer("test").start_as_current_span("request") as root:
            await system.tell(First, Order(1))
        with trio.fail_after(10):
            while not headers:
                await trio.sleep(0.01)
    trace_id = root.get_span_context().trace_id
    assert headers[0]["traceparent"].startswith(f"00-{trace_id:032x}-")
    names = sorted(span.name for span in exporter.get_finished_spans())
    if follow_unsampled:
        assert not int(headers[0]["traceparent"][-2:], 16) & 1, headers  # not sampled
        assert names == []
    else:
        assert names == ["handle first", "handle last", "tell list:last"]


APP = textwrap.dedent(
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from actors import Actor, ActorSystem, list_mailbox
    from actors.tracing import Tracing

    class ToFile(SpanExporter):
        # Each finished span, also kept in memory, appended to a file as a JSON line.
        def __init__(self, path):
            self.path = path
            self.memory = InMemorySpanExporter()

        def export(self, spans):
            self.memory.export(spans)
            with open(self.path, "a") as out:
                for span in spans:
                    out.write(span.to_json(indent=None) + "\\n")
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ToFile(SPANS)))
    system = ActorSystem(middleware=[Tracing(provider)])

    class Hop(Actor):
        mailbox = list_mailbox(SOURCE)

        async def receive(self, msg: dict) -> None:
            if TARGET:
                await self.context.tell(TARGET, {**msg, "via": SOURCE})
            else:
                await self.context.redis.rpush("arrived", str(msg))

    system.actor(Hop)
    """
)


def _start(app: Path, url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "actors", "run", str(app), "--url", url],
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "ACTORS_URL"},
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "actor system running" in line:
            return proc
    status = proc.wait()
    proc.stderr.close()
    raise AssertionError(f"never started; exit {status}")


def _spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def test_one_trace_across_two_processes(tmp_path: Path, redis_url: str) -> None:
    import redis

    files = {name: tmp_path / f"{name}.jsonl" for name in ("one", "two")}
    apps = {}
    for name, source, target in (("one", "hop1", "list:hop2"), ("two", "hop2", "")):
        apps[name] = tmp_path / f"{name}.py"
        apps[name].write_text(
            f"SPANS = {str(files[name])!r}\nSOURCE = {source!r}\nTARGET = {target!r}\n" + APP
        )
    procs = [_start(apps["one"], redis_url), _start(apps["two"], redis_url)]
    db = redis.Redis.from_url(redis_url)
    try:
        provider, exporter = _provider()
        client = ActorSystem(redis_url, node="client", middleware=[Tracing(provider)])
        async with client:
            with provider.get_tracer("test").start_as_current_span("request"):
                await client.tell("list:hop1", {"order": 1})
        with trio.fail_after(30):
            while not (db.llen("arrived") and _spans(files["two"])):
                await trio.sleep(0.05)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.kill()
                assert proc.stderr is not None
                proc.stderr.close()
        db.close()
    ours = _by_name(exporter.get_finished_spans())
    one = {span["name"]: span for span in _spans(files["one"])}
    two = {span["name"]: span for span in _spans(files["two"])}
    assert set(ours) == {"request", "tell list:hop1"}
    assert set(one) == {"handle hop", "tell list:hop2"}
    assert set(two) == {"handle hop"}
    trace_id = f"0x{_trace(ours['request']):032x}"
    assert {span["context"]["trace_id"] for span in (*one.values(), *two.values())} == {trace_id}
    # The chain of parents crosses both processes: ours -> one -> two.
    assert one["handle hop"]["parent_id"] == f"0x{_id(ours['tell list:hop1']):016x}"
    assert one["tell list:hop2"]["parent_id"] == one["handle hop"]["context"]["span_id"]
    assert two["handle hop"]["parent_id"] == one["tell list:hop2"]["context"]["span_id"]
