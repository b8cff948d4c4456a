"""Keys of the wrong type (issue 13, items 2 and 7).

Redis does not roll a script back: a script that removes a message and then fails to
write it where it goes loses it. Every script that moves a message checks the types
of the keys it touches before changing anything, so a failed move leaves the message
where it was and the error names the key and its type. Each test below gives one
key of a mailbox the wrong type, runs the operation that uses it, and checks both.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from actors import Actor, ActorSystem, Reject, Retry, Supervisor, list_mailbox, stream_mailbox
from transports import CommandError, Failure, MailboxSpec, Settlement
from transports.memory import MemoryTransport
from transports.redis import RedisTransport
from transports.redis.consumer import RedisConsumer
from transports.redis.list.scripts import LIST_TAKE
from transports.redis.scripts import Script
from transports.testing.conformance import fetch_within

LEASE = 0.5


@pytest.fixture
async def transport(redis_url: str) -> AsyncIterator[RedisTransport]:
    async with RedisTransport.from_url(redis_url) as opened:
        yield opened


async def spoil(transport: RedisTransport, key: str) -> str:
    """Replace ``key`` by a key of a type no mailbox key has here; return that type."""
    client = transport.client
    await client.delete(key)
    if key.endswith((":failures", ":epochs")):  # hashes: a string is wrong for them
        await client.set(key, "not a hash")
        return "string"
    await client.hset(key, "not", "mine")
    return "hash"


def assert_names(error: CommandError, spec: MailboxSpec, key: str, found: str, wanted: str) -> None:
    """The error says which mailbox, which key, what it holds and what it should."""
    assert error.code == "WRONGTYPE"
    assert str(error) == f"{spec}: WRONGTYPE key '{key}' holds a {found}, not a {wanted}"


# -- dead letters -----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "key", "wanted"), [
    ("list", "{dl}:dead", "stream"),
    ("list", "{dl}:failures", "hash"),
    ("stream", "{dl}:dead", "stream"),
    ("stream", "{dl}:failures", "hash"),
])  # fmt: skip
async def test_a_dead_letter_that_cannot_be_written_leaves_the_message_held(
    transport: RedisTransport, kind: str, key: str, wanted: str
) -> None:
    spec = MailboxSpec(kind, "dl", lease=30.0)  # type: ignore[arg-type]
    client = transport.client
    await transport.send(spec, [b"poison"])
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(1)
        await consumer.record_failure(delivery)
        found = await spoil(transport, key)
        with pytest.raises(CommandError) as caught:
            await consumer.dead_letter(delivery, Failure("poison"))
        assert_names(caught.value, spec, key, found, wanted)
        if kind == "list":
            assert await client.lrange("{dl}:processing:w1", 0, -1) == [b"poison"]
        else:
            assert (await client.xpending("dl", "dl"))["pending"] == 1
        await client.delete(key)  # fixed: the same call now works
        await consumer.dead_letter(delivery, Failure("poison"))
    [letter] = await transport.dead_letters(spec)
    assert letter.payload == b"poison"


# -- retries and releases -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
@pytest.mark.parametrize("how", ["retry_later", "release"])
async def test_a_retry_or_release_that_cannot_be_written_leaves_the_message_held(
    transport: RedisTransport, kind: str, how: str
) -> None:
    spec = MailboxSpec(kind, "rt", lease=30.0)  # type: ignore[arg-type]
    client = transport.client
    await transport.send(spec, [b"again"])
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(1)
        # A list retry goes to {rt}:delayed, a release back to the list; a stream's
        # both become due retries of the group, in {rt}:delayed:rt.
        if kind == "stream":
            key, wanted = "{rt}:delayed:rt", "zset"
        else:
            key, wanted = ("{rt}:delayed", "zset") if how == "retry_later" else ("rt", "list")
        found = await spoil(transport, key)

        async def move() -> None:
            if how == "retry_later":
                await consumer.retry_later(delivery, 0)
            else:
                await consumer.settle(Settlement(releases=[delivery]))

        with pytest.raises(CommandError) as caught:
            await move()
        assert_names(caught.value, spec, key, found, wanted)
        if kind == "list":
            assert await client.lrange("{rt}:processing:w1", 0, -1) == [b"again"]
        else:
            [entry] = await client.xpending_range("rt", "rt", "-", "+", 10)
            assert entry["consumer"] == b"w1"  # not handed to the pseudo-consumer {delayed}
        await client.delete(key)
        await move()
        [again] = await fetch_within(consumer, 5, 5.0)
    assert again.payload == b"again"


# -- fetching and acking a list ----------------------------------------------------------


@pytest.mark.parametrize(("key", "wanted"), [
    ("{tk}:processing:w1", "list"),
    ("{tk}:failures", "hash"),
    ("{tk}:delayed", "zset"),
    ("{tk}:consumers", "zset"),
    ("{tk}:closed", "set"),
    ("{tk}:epochs", "hash"),
    ("{tk}:processing:ghost", "list"),  # a dead consumer's, to take over
])  # fmt: skip
async def test_a_list_fetch_that_cannot_move_leaves_the_messages_in_the_list(
    transport: RedisTransport, key: str, wanted: str
) -> None:
    spec = MailboxSpec("list", "tk", lease=LEASE)
    client = transport.client
    async with transport.consumer(spec, "w1") as consumer:
        await client.zadd("{tk}:consumers", {"ghost": 0})  # died long ago
        await trio.sleep(LEASE / 2)  # the next fetch takes dead consumers over
        found = await spoil(transport, key)
        await transport.send(spec, [b"a", b"b"])
        with pytest.raises(CommandError) as caught:
            await consumer.fetch(5)
        assert_names(caught.value, spec, key, found, wanted)
        assert await client.lrange("tk", 0, -1) == [b"a", b"b"]
        await client.delete(key)
        got = await consumer.fetch(5)
        await consumer.ack(got)
    assert [d.payload for d in got] == [b"a", b"b"]


@pytest.mark.parametrize("how", ["fetch", "ack", "settle"])
async def test_a_list_ack_that_cannot_be_completed_acks_nothing(
    transport: RedisTransport, how: str
) -> None:
    """The ack empties the processing list, then deletes failure counts: with a
    wrong-typed ``{name}:failures``, half an ack would be made and reported failed."""
    spec = MailboxSpec("list", "ak", lease=30.0)
    client = transport.client
    await transport.send(spec, [b"a"])
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(1)
        await consumer.record_failure(delivery)  # the ack must delete its count
        found = await spoil(transport, "{ak}:failures")

        async def ack() -> None:
            if how == "fetch":
                await consumer.fetch(1, ack=[delivery])
            elif how == "ack":
                await consumer.ack([delivery])
            else:
                await consumer.settle(Settlement(acks=[delivery]))

        with pytest.raises(CommandError) as caught:
            await ack()
        assert_names(caught.value, spec, "{ak}:failures", found, "hash")
        assert await client.lrange("{ak}:processing:w1", 0, -1) == [b"a"]
        await client.delete("{ak}:failures")
        await consumer.ack([delivery])
        assert await client.llen("{ak}:processing:w1") == 0


async def test_closing_keeps_what_it_cannot_hand_back_to_a_wrong_typed_list(
    transport: RedisTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing hands what an interrupted fetch moved back to the list: into a list
    that is no longer one, it must keep them in the processing list (taken over
    after the lease) rather than delete them from there first."""
    spec = MailboxSpec("list", "cl", lease=30.0)
    client = transport.client
    run = Script.__call__

    async def reply_lost(self: Script, *args: Any) -> Any:
        reply = await run(self, *args)
        if self is LIST_TAKE:
            await trio.sleep_forever()
        return reply

    await transport.send(spec, [b"held", b"m1", b"m2"])
    async with transport.consumer(spec, "w1") as consumer:
        assert [d.payload for d in await consumer.fetch(1)] == [b"held"]
        monkeypatch.setattr(Script, "__call__", reply_lost)
        with trio.move_on_after(0.2):
            await consumer.fetch(2)  # moves m1, m2; the reply never comes
        monkeypatch.setattr(Script, "__call__", run)
        await spoil(transport, "cl")
    assert await client.lrange("{cl}:processing:w1", 0, -1) == [b"held", b"m1", b"m2"]


# -- streams -----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "wanted"), [
    ("{st}:failures", "hash"),
    ("{st}:delayed:st", "zset"),
])  # fmt: skip
async def test_a_stream_fetch_names_a_wrong_typed_key_and_delivers_nothing(
    transport: RedisTransport, key: str, wanted: str
) -> None:
    spec = MailboxSpec("stream", "st", lease=LEASE)
    client = transport.client
    await transport.send(spec, [b"a"])
    async with transport.consumer(spec, "w1") as consumer:
        found = await spoil(transport, key)
        with pytest.raises(CommandError) as caught:
            await consumer.fetch(5)
        assert_names(caught.value, spec, key, found, wanted)
        assert (await client.xpending("st", "st"))["pending"] == 0
        await client.delete(key)
        [delivery] = await fetch_within(consumer, 5, 5.0)
        await consumer.ack([delivery])
    assert delivery.payload == b"a"


@pytest.mark.parametrize(("kind", "wanted"), [("list", "list"), ("stream", "stream")])
async def test_a_mailbox_key_of_the_wrong_type_is_named_at_open(
    transport: RedisTransport, kind: str, wanted: str
) -> None:
    spec = MailboxSpec(kind, "mb", lease=LEASE)  # type: ignore[arg-type]
    found = await spoil(transport, "mb")
    with pytest.raises(CommandError) as caught:
        async with transport.consumer(spec, "w1"):
            pass  # pragma: no cover
    assert_names(caught.value, spec, "mb", found, wanted)


@pytest.mark.parametrize(("kind", "wanted"), [("list", "list"), ("stream", "stream")])
async def test_a_mailbox_key_spoiled_under_a_waiting_consumer_is_named(
    transport: RedisTransport, kind: str, wanted: str
) -> None:
    """A blocking read (``BLMOVE``, ``XREADGROUP``) fails with Redis's own WRONGTYPE,
    which names no key: the consumer finds it."""
    spec = MailboxSpec(kind, "mb", lease=30.0)  # type: ignore[arg-type]
    async with transport.consumer(spec, "w1") as consumer:
        assert await fetch_within(consumer, 5, 0.1) == []  # opens its blocking connection
        found = await spoil(transport, "mb")
        with pytest.raises(CommandError) as caught, trio.fail_after(10):
            await consumer.fetch(5)
    assert_names(caught.value, spec, "mb", found, wanted)


# -- failure counts, replays, stats, the node registry -------------------------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_recording_a_failure_names_a_wrong_typed_failures_key(
    transport: RedisTransport, kind: str
) -> None:
    spec = MailboxSpec(kind, "rf", lease=30.0)  # type: ignore[arg-type]
    await transport.send(spec, [b"a"])
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(1)
        found = await spoil(transport, "{rf}:failures")
        with pytest.raises(CommandError) as caught:
            await consumer.record_failure(delivery)
    assert_names(caught.value, spec, "{rf}:failures", found, "hash")


@pytest.mark.parametrize(("key", "wanted"), [("rp", "list"), ("{rp}:failures", "hash")])
async def test_a_replay_that_cannot_be_completed_keeps_the_letter_and_sends_nothing(
    transport: RedisTransport, key: str, wanted: str
) -> None:
    spec = MailboxSpec("list", "rp", lease=30.0)
    client = transport.client
    await transport.send(spec, [b"a"])
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(1)
        await consumer.dead_letter(delivery, Failure("poison"))
    found = await spoil(transport, key)
    with pytest.raises(CommandError) as caught:
        await transport.replay_dead_letters(spec)
    assert "WRONGTYPE" in str(caught.value) and f"key '{key}' holds a {found}" in str(caught.value)
    assert len(await transport.dead_letters(spec)) == 1
    if key != "rp":
        assert await client.llen("rp") == 0  # not sent while the letter stays
    await client.delete(key)
    assert await transport.replay_dead_letters(spec) == 1
    assert await client.lrange("rp", 0, -1) == [b"a"]


@pytest.mark.parametrize(("kind", "key", "wanted"), [
    ("list", "sx", "list"),
    ("list", "{sx}:dead", "stream"),
    ("list", "{sx}:consumers", "zset"),
    ("stream", "sx", "stream"),
    ("stream", "{sx}:delayed:sx", "zset"),
])  # fmt: skip
async def test_mailbox_stats_name_a_wrong_typed_key(
    transport: RedisTransport, kind: str, key: str, wanted: str
) -> None:
    spec = MailboxSpec(kind, "sx")  # type: ignore[arg-type]
    found = await spoil(transport, key)
    with pytest.raises(CommandError) as caught:
        await transport.mailbox_stats(spec)
    assert f"key '{key}' holds a {found}, not a {wanted}" in str(caught.value)


@pytest.mark.parametrize(("key", "wanted"), [
    ("{actors:nodes}", "hash"),
    ("{actors:nodes}:expiry", "zset"),
])  # fmt: skip
async def test_the_node_registry_names_a_wrong_typed_key(
    transport: RedisTransport, key: str, wanted: str
) -> None:
    await transport.client.set(key, "x")
    with pytest.raises(CommandError) as caught:
        await transport.announce("n1", {"pid": 1}, 15.0, instance="i")
    assert f"key '{key}' holds a string, not a {wanted}" in str(caught.value)
    with pytest.raises(CommandError, match="holds a string"):
        await transport.nodes()


# -- the runtime: a mailbox with a key of the wrong type waits, says so, and recovers ---------


def faults_said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and "WRONGTYPE" in r.getMessage()
    ]


async def test_a_wrong_typed_mailbox_is_said_every_30_s_while_the_rest_runs(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "actors")
    transport = MemoryTransport()
    await transport.send(MailboxSpec("stream", "jobs"), [b"1"])  # "jobs" holds a stream
    system = ActorSystem(node="n")
    handled: list[int] = []

    class Work(Actor):
        mailbox = list_mailbox("jobs")

        async def receive(self, n: int) -> None:
            handled.append(n)

    @system.actor(list="other")
    async def other(n: int) -> None:
        handled.append(-n)

    system.supervise(Supervisor([Work.spec(instances=3)], name="root"))
    async with system.lifecycle.running(transport):
        began = trio.current_time()
        await system.tell("list:other", 1)
        # Said at once, then every 30 s (plus up to one retry's backoff, 5 s), one line
        # however many instances and retries.
        for until, lines in [(1, 1), (29, 1), (36, 2), (59, 2), (71, 3)]:
            await trio.sleep_until(began + until)
            assert len(faults_said(caplog)) == lines, (until, faults_said(caplog))
        assert handled == [-1]  # the rest of the system runs
        assert faults_said(caplog)[0] == (
            "system/root/work-0: WRONGTYPE key 'jobs' holds a stream, not a list;"
            " handling nothing until the key is deleted or given that type"
            " (said again every 30 s while it lasts)"
        )
        assert "WRONGTYPE key 'jobs'" in system.node_info()["actors"]["work"]["error"]
        assert "error" not in system.node_info()["actors"]["other"]
        assert all(child.restarts == 0 for child in system.tree().children[1].children)
        del transport._store._keys["jobs"]  # fixed: deleted
        await system.tell("list:jobs", 7)
        await trio.sleep(10)
        assert handled == [-1, 7]
        assert "error" not in system.node_info()["actors"]["work"]
    # Said once, when the last instance got past it.
    assert len([r for r in caplog.records if "mailbox usable again" in r.getMessage()]) == 1
    assert len(faults_said(caplog)) == 3


async def status(url: str) -> dict[str, Any]:
    result = await trio.run_process(
        [sys.executable, "-m", "actors", "status", "--json", "--url", url],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


async def error_in_status(url: str, mailbox: str) -> str | None:
    report = await status(url)
    [row] = [row for row in report["mailboxes"] if row["mailbox"].startswith(mailbox)]
    error: str | None = row.get("error")
    return error


def redis_system(
    url: str,
    kind: str,
    handled: list[int],
    before_fate: Callable[[], Awaitable[None]] | None = None,
) -> ActorSystem:
    """Actors on ``<kind>:jobs`` (-1 is rejected, -2 retried) and ``list:other``."""
    system = ActorSystem(url, node="n")

    box = list_mailbox if kind == "list" else stream_mailbox

    @system.actor(mailbox=box("jobs", lease=1.0))
    async def work(n: int) -> None:
        if n < 0:
            if before_fate is not None:
                await before_fate()
            raise Reject("negative") if n == -1 else Retry(0.1)
        handled.append(n)

    @system.actor(list="other")
    async def other(n: int) -> None:
        handled.append(1000 + n)

    return system


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nodes announce themselves every 0.2 s, so that status sees changes soon."""
    monkeypatch.setattr("actors._node.HEARTBEAT", 0.2)


@pytest.mark.usefixtures("fast_heartbeat")
@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_a_wrong_typed_mailbox_key_at_start_is_waited_out_and_shown_in_status(
    redis_url: str, transport: RedisTransport, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = transport.client
    await client.hset("jobs", "not", "mine")
    handled: list[int] = []
    system = redis_system(redis_url, kind, handled)
    async with system:  # starts: the rest of the system runs
        await system.tell("list:other", 1)
        with trio.fail_after(10):
            while not (handled and faults_said(caplog)):
                await trio.sleep(0.05)
        assert handled == [1001]
        said = faults_said(caplog)
        assert said[0].startswith(
            f"system/work-0: {kind}:jobs: WRONGTYPE key 'jobs' holds a hash, not a {kind};"
        )
        assert f"WRONGTYPE key 'jobs' holds a hash, not a {kind}" in str(
            await error_in_status(redis_url, f"{kind}:jobs")
        )
        table = await trio.run_process(
            [sys.executable, "-m", "actors", "status", "--url", redis_url], capture_stdout=True
        )
        assert f"error: {kind}:jobs: WRONGTYPE key 'jobs' holds a hash" in table.stdout.decode()
        await client.delete("jobs")  # fixed
        await system.tell(f"{kind}:jobs", 7)
        with trio.fail_after(15):
            while 7 not in handled:
                await trio.sleep(0.05)
            while await error_in_status(redis_url, f"{kind}:jobs") is not None:
                await trio.sleep(0.1)
        tree = system.tree()
    assert all(child.restarts == 0 for child in tree.children)


@pytest.mark.usefixtures("fast_heartbeat")
@pytest.mark.parametrize("kind", ["list", "stream"])
@pytest.mark.parametrize("when", ["start", "running"])
async def test_a_wrong_typed_failures_key_stops_nothing_for_good(
    redis_url: str,
    transport: RedisTransport,
    kind: str,
    when: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wrong-typed ``{jobs}:failures`` makes fetches fail (a list's every fetch, a
    stream's every ``lease/2``): said, shown in status (which only the node can tell:
    the stats do not read that key), and recovered from."""
    client = transport.client
    handled: list[int] = []
    system = redis_system(redis_url, kind, handled)
    if when == "start":
        await client.set("{jobs}:failures", "not a hash")
    async with system:
        await system.tell(f"{kind}:jobs", 1)
        if when == "running":
            with trio.fail_after(10):
                while handled != [1]:
                    await trio.sleep(0.05)
            await client.set("{jobs}:failures", "not a hash")
        await system.tell(f"{kind}:jobs", 2)
        with trio.fail_after(10):
            while not faults_said(caplog):
                await trio.sleep(0.05)
            while (error := await error_in_status(redis_url, f"{kind}:jobs")) is None:
                await trio.sleep(0.1)
        assert "WRONGTYPE key '{jobs}:failures' holds a string, not a hash" in error
        if when == "start":
            assert handled == []
        elif kind == "list":
            assert handled == [1]  # a stream may handle 2 before its next look at the key
        await client.delete("{jobs}:failures")
        with trio.fail_after(15):
            while sorted(handled) != [1, 2]:
                await trio.sleep(0.05)
        tree = system.tree()
    assert all(child.restarts == 0 for child in tree.children)


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of ``RedisConsumer.<name>``."""
    calls: list[int] = []
    method: Callable[..., Awaitable[Any]] = getattr(RedisConsumer, name)

    async def counted(self: RedisConsumer, *args: Any) -> Any:
        calls.append(1)
        return await method(self, *args)

    monkeypatch.setattr(RedisConsumer, name, counted)
    return calls


@pytest.mark.parametrize("kind", ["list", "stream"])
@pytest.mark.parametrize("fate", ["reject", "retry"])
async def test_a_fate_that_cannot_be_recorded_keeps_the_message_without_spinning(
    redis_url: str,
    transport: RedisTransport,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    fate: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = transport.client
    if fate == "reject":
        key, calls = "{jobs}:dead", counting(monkeypatch, "fail")  # one script
    else:
        key = "{jobs}:delayed" if kind == "list" else "{jobs}:delayed:jobs"
        calls = counting(monkeypatch, "fail")  # count and schedule, one script
    spoiled: list[str] = []

    async def spoil_once() -> None:  # after the fetch, which uses the delayed retries
        if not spoiled:
            spoiled.append(await spoil(transport, key))

    handled: list[int] = []
    system = redis_system(redis_url, kind, handled, spoil_once)
    async with system:
        await system.tell(f"{kind}:jobs", -1 if fate == "reject" else -2)
        with trio.fail_after(10):
            while not faults_said(caplog):
                await trio.sleep(0.05)
        await trio.sleep(3)
        assert 2 <= len(calls) <= 15  # retried with backoff, not in a hot loop
        assert not any("dead-lettered" in r.getMessage() for r in caplog.records)
        assert f"WRONGTYPE key '{key}' holds a hash" in faults_said(caplog)[0]
        if kind == "list":  # still held, at-least-once
            assert await client.llen("{jobs}:processing:n/work-0") == 1
        else:
            assert (await client.xpending("jobs", "jobs"))["pending"] == 1
        await client.delete(key)
        with trio.fail_after(15):  # a retry comes back until max_deliveries: dead too
            while not await system.dead_letters(f"{kind}:jobs"):
                await trio.sleep(0.05)
        tree = system.tree()
    assert all(child.restarts == 0 for child in tree.children)
    assert any("dead-lettered" in r.getMessage() for r in caplog.records)


@pytest.mark.usefixtures("fast_heartbeat")
@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_a_fixed_key_is_seen_fixed_by_an_idle_actor(
    redis_url: str, transport: RedisTransport, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Once the key is fixed, the fault ends (said once, gone from status) though no
    message comes: the instance waiting for one looks again every second."""
    caplog.set_level(logging.INFO, "actors")
    client = transport.client
    await client.set("{jobs}:failures", "not a hash")  # a stream reads it at maintenance
    system = redis_system(redis_url, kind, [])
    async with system:
        with trio.fail_after(10):
            while not faults_said(caplog):
                await trio.sleep(0.05)
        await client.delete("{jobs}:failures")  # fixed; no message is sent
        with trio.fail_after(10):
            while await error_in_status(redis_url, f"{kind}:jobs") is not None:
                await trio.sleep(0.1)
    assert [r for r in caplog.records if "mailbox usable again" in r.getMessage()]
