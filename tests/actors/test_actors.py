"""The runtime on the memory transport: actors, dispatch, ask, fates, crashes, dead letters."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

from actors import (
    Actor,
    ActorContext,
    ActorSystem,
    AskTimeout,
    BrokenConnectionError,
    ClosedError,
    ConfigurationError,
    Drop,
    Reject,
    RemoteError,
    Retry,
    Supervisor,
    channel_mailbox,
    handler,
    list_mailbox,
    stream_mailbox,
)
from actors._codec import encode
from actors._lifecycle import SystemState
from actors._messenger import Messenger
from actors.testing import RecordingTransport, run_test_system
from transports import (
    ActorsError,
    Consumer,
    Delivery,
    FailedAttempt,
    Failure,
    MailboxSpec,
    Outcome,
    Settlement,
)


def _messenger(system: ActorSystem) -> Messenger:
    """The messenger of ``system``'s current run."""
    run = system.lifecycle.run
    assert run is not None, "the system is not running"
    return run.messenger


@attrs.frozen
class Deposit:
    account: str
    amount: int


@attrs.frozen
class GetBalance:
    account: str


@attrs.frozen
class Balance:
    account: str
    total: int


class Ledger(Actor):
    mailbox = stream_mailbox("ledger")

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}

    @handler
    async def deposit(self, msg: Deposit) -> Balance:
        self.totals[msg.account] = self.totals.get(msg.account, 0) + msg.amount
        return Balance(msg.account, self.totals[msg.account])

    @handler
    async def balance(self, msg: GetBalance) -> Balance:
        return Balance(msg.account, self.totals.get(msg.account, 0))


def new_system() -> ActorSystem:
    return ActorSystem("memory://", node="test")


async def test_function_actor_publishes_its_return_value() -> None:
    system = new_system()

    @system.actor(channel="in-channel")
    @system.publisher(list="out")
    async def echo(msg: str) -> str:
        return f"Received: {msg}"

    async with run_test_system(system) as probe:
        await system.tell("in-channel", "hi")
        await probe.drain()
        assert probe.sent("list:out") == ["Received: hi"]


async def test_publisher_above_actor_works_too() -> None:
    system = new_system()

    @system.publisher(list="out")
    @system.actor(list="in")
    async def double(n: int) -> int:
        return 2 * n

    async with run_test_system(system) as probe:
        await system.tell_many("in", [1, 2, 3])
        await probe.drain()
        assert probe.sent("list:out") == [2, 4, 6]


async def test_class_actor_dispatches_by_type_and_answers_ask() -> None:
    system = new_system()
    system.supervise(Supervisor([Ledger.spec()]))
    async with run_test_system(system):
        assert await system.ask("ledger", Deposit("a", 5)) == Balance("a", 5)
        assert await system.ask(Ledger, Deposit("a", 7)) == Balance("a", 12)
        assert await system.ask("stream:ledger", GetBalance("a")) == Balance("a", 12)
        assert await system.ask("ledger", GetBalance("a"), reply_type=Balance) == Balance("a", 12)
        # Replies are taken for good: nothing piles up in the asker's reply mailbox.
        stats = await system.transport.mailbox_stats(_messenger(system).reply_box)
        assert (stats.depth, stats.pending) == (0, 0)


async def test_foreign_payload_reaches_the_handler_as_its_type() -> None:
    system = new_system()
    got: list[Deposit] = []

    @system.actor(list="deposits")
    async def record(msg: Deposit) -> None:
        got.append(msg)

    async with run_test_system(system) as probe:
        await system.transport.send(list_mailbox("deposits"), [b'{"account":"x","amount":"3"}'])
        await probe.drain()
    assert got == [Deposit("x", 3)]


async def test_a_foreign_payload_tries_the_handlers_in_declaration_order() -> None:
    """A body that validates as both Deposit and GetBalance (extra fields are ignored)
    goes to ``deposit``, declared first, not to ``balance``, first alphabetically."""
    system = new_system()
    system.actor(Ledger)
    assert [name for _, name in Ledger.handlers().entries] == ["deposit", "balance"]
    async with run_test_system(system) as probe:
        await system.transport.send(stream_mailbox("ledger"), [b'{"account":"x","amount":3}'])
        await probe.drain()
        assert await system.ask("ledger", GetBalance("x"), reply_type=Balance) == Balance("x", 3)


async def test_an_actor_asks_with_the_same_options_as_the_system() -> None:
    """``self.ask`` and ``context.ask`` take ``reply_type=`` and ``headers=`` too."""
    system = new_system()
    system.actor(Ledger)
    seen: list[tuple[Balance, Balance]] = []

    class Teller(Actor):
        mailbox = list_mailbox("teller")

        async def receive(self, msg: Deposit) -> None:
            await self.tell("ledger", msg)
            by_self = await self.ask("ledger", GetBalance(msg.account), reply_type=Balance)
            by_context = await self.context.ask(
                "ledger", GetBalance(msg.account), reply_type=Balance, headers={"via": "ctx"}
            )
            seen.append((by_self, by_context))

    system.actor(Teller)
    async with run_test_system(system) as probe:
        await system.tell("teller", Deposit("y", 4))
        await probe.drain()
    assert seen == [(Balance("y", 4), Balance("y", 4))]


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_message_id_is_stable_across_redeliveries(autojump_clock: Any, kind: str) -> None:
    """``context.message.id``: the sender's envelope id, else (a payload from another
    client) the delivery's id, the same at every attempt."""
    system = new_system()
    seen: list[tuple[int, str]] = []

    @system.actor(**{kind: "box"})  # type: ignore[arg-type]
    async def flaky(n: int, context: ActorContext) -> None:
        seen.append((n, context.message.id))
        if context.message.attempt == 1:
            raise ValueError("first try fails")

    spec = MailboxSpec(kind, "box")  # type: ignore[arg-type]
    async with run_test_system(system) as probe:
        await system.transport.send(spec, [encode(1, id="sender-made"), b"2"])
        with trio.fail_after(60):
            while len(seen) < 4:
                await probe.drain()
                await trio.sleep(1)
    # A failed attempt is retried after the next message (on_error's default "retry"),
    # each after its own jittered backoff.
    assert [n for n, _ in seen[:2]] == [1, 2]
    assert sorted(n for n, _ in seen[2:]) == [1, 2]
    ids = {n: {id_ for m, id_ in seen if m == n} for n in (1, 2)}
    assert ids[1] == {"sender-made"}
    assert len(ids[2]) == 1 and ids[2] != {"sender-made"}


async def test_ask_times_out_and_a_late_reply_is_discarded(autojump_clock: Any) -> None:
    system = new_system()

    @system.actor(list="slow")
    async def slow(n: int) -> int:
        await trio.sleep(10)
        return n

    async with run_test_system(system) as probe:
        with pytest.raises(AskTimeout, match="no reply from list:slow within 1"):
            await system.ask("slow", 1, timeout=1)
        await trio.sleep(20)  # the reply arrives now, with nobody waiting
        await probe.drain()
        assert _messenger(system).waiters == {}
        assert await system.ask("slow", 2, timeout=30) == 2


async def test_crash_redelivers_the_message_to_a_fresh_instance() -> None:
    system = new_system()
    seen: list[tuple[int, int, int]] = []
    instances: list[object] = []

    class Flaky(Actor):
        mailbox = list_mailbox("flaky")
        on_error = {ValueError: "restart"}  # not the default "retry"

        def __init__(self) -> None:
            instances.append(self)

        async def receive(self, n: int) -> None:
            seen.append((n, self.context.message.attempt, len(instances)))
            if n == 2 and self.context.message.attempt == 1:
                raise ValueError("first try fails")

    system.supervise(Supervisor([Flaky.spec()], backoff=None))
    async with run_test_system(system) as probe:
        await system.tell_many(Flaky, [1, 2, 3])
        await probe.drain()
        # Message 3 was fetched in the crashed batch, never started, and released:
        # it comes back after 2, as a first attempt.
        assert [s[:2] for s in seen] == [(1, 1), (2, 1), (2, 2), (3, 1)]
        assert seen[2][2] == 2  # handled by the restarted, fresh instance
        assert system.tree().children[0].restarts == 1
        assert await system.dead_letters(Flaky) == []


async def test_poison_message_is_dead_lettered_and_the_rest_flows(autojump_clock: Any) -> None:
    system = new_system()
    handled: list[int] = []

    class Picky(Actor):
        mailbox = stream_mailbox("picky")
        max_deliveries = 3

        async def receive(self, n: int) -> None:
            if n == 13:
                raise RuntimeError("unlucky")
            handled.append(n)

    system.supervise(Supervisor([Picky.spec()], backoff=None, max_restarts=3))
    async with run_test_system(system) as probe:
        await system.tell_many(Picky, [12, 13, 14])
        with trio.fail_after(60):  # retried after 0.1 s, then 0.2 s (retry_backoff)
            while not await system.dead_letters(Picky):
                await trio.sleep(0.1)
        await probe.drain()
        dead = await system.dead_letters(Picky)
        assert system.tree().children[0].restarts == 0
    assert handled == [12, 14]
    assert len(dead) == 1
    letter = dead[0]
    assert letter.attempts == 3
    assert letter.failure.error_type == "RuntimeError"
    assert letter.failure.error == "unlucky"
    assert "raise RuntimeError" in letter.failure.traceback
    assert letter.failure.actor == "root/picky-0"


async def test_ask_of_a_poison_message_raises_remote_error() -> None:
    system = new_system()

    @system.actor(list="broken", max_deliveries=1)
    async def broken(n: int) -> int:
        raise KeyError(n)

    async with run_test_system(system):
        with pytest.raises(RemoteError, match="KeyError") as info:
            await system.ask("broken", 1)
        assert info.value.error_type == "KeyError"


async def test_undecodable_payloads_are_dead_lettered_once() -> None:
    system = new_system()
    got: list[Deposit] = []

    @system.actor(list="strict")
    async def strict(msg: Deposit) -> None:
        got.append(msg)

    junk = [b"\xff\xfe", b'{"account": 1}', b"not json", b'{"actors":1,"body":1,"id":5}']
    async with run_test_system(system) as probe:
        await system.transport.send(list_mailbox("strict"), junk)
        await system.tell("strict", Deposit("ok", 1))
        await probe.drain()
        dead = await system.dead_letters("strict")
        assert system.tree().children[0].restarts == 0
    assert got == [Deposit("ok", 1)]
    assert [d.payload for d in dead] == junk
    assert all(d.failure.reason.startswith("undecodable") for d in dead)


async def test_fates_drop_reject_and_retry(autojump_clock: Any) -> None:
    system = new_system()
    calls: list[tuple[str, int]] = []

    @system.actor(list="fates", max_deliveries=3)
    async def decide(cmd: str, context: ActorContext) -> None:
        calls.append((cmd, context.message.attempt))
        if cmd == "drop":
            raise Drop()
        if cmd == "reject":
            raise Reject("not today")
        if cmd == "retry" and context.message.attempt < 2:
            raise Retry(delay=5)
        if cmd == "always-retry":
            raise Retry(delay=1)

    async with run_test_system(system) as probe:
        await system.tell_many("fates", ["drop", "reject", "retry", "always-retry"])
        start = trio.current_time()
        await trio.sleep(30)
        await probe.drain()
        dead = await system.dead_letters("fates")
    assert trio.current_time() - start >= 5
    assert ("retry", 2) in calls
    assert calls.count(("drop", 1)) == 1
    assert [(d.failure.reason, d.attempts) for d in dead] == [
        ("rejected: not today", 1),
        ("failed 3 times", 3),
    ]


async def test_instances_share_a_list_without_duplicates() -> None:
    system = new_system()
    seen: list[tuple[int, str]] = []

    @system.actor(list="work", instances=3)
    async def work(n: int, context: ActorContext) -> None:
        await trio.lowlevel.checkpoint()
        seen.append((n, context.path))

    async with run_test_system(system) as probe:
        await system.tell_many("work", list(range(300)))
        await probe.drain()
    assert sorted(n for n, _ in seen) == list(range(300))
    assert len({path for _, path in seen}) == 3


async def test_pubsub_broadcasts_to_every_instance() -> None:
    system = new_system()
    seen: list[str] = []

    @system.actor(channel="news", instances=2)
    async def listener(msg: str, context: ActorContext) -> None:
        seen.append(f"{context.path}:{msg}")

    async with run_test_system(system) as probe:
        await system.tell("pubsub:news", "hello")
        await probe.drain()
    assert sorted(seen) == ["system/listener-0:hello", "system/listener-1:hello"]


async def test_two_hop_pipeline_from_inside_a_handler() -> None:
    system = new_system()
    out: list[int] = []

    class First(Actor):
        mailbox = list_mailbox("first")

        async def receive(self, n: int) -> None:
            await self.tell("second", n + 1)

    @system.actor(stream="second")
    async def second(n: int) -> None:
        out.append(n * 10)

    system.actor(First)
    async with run_test_system(system) as probe:
        await system.tell_many(First, [1, 2])
        await probe.drain()
    assert out == [20, 30]


async def test_graceful_stop_finishes_the_message_in_flight(autojump_clock: Any) -> None:
    system = new_system()
    started = trio.Event()
    finished: list[int] = []

    @system.actor(list="long")
    async def long(n: int) -> None:
        started.set()
        await trio.sleep(2)
        finished.append(n)

    async with run_test_system(system) as probe:
        await system.tell_many("long", [1, 2])
        await started.wait()
        system.stop()
    assert finished == [1]
    # Message 2 was never started: it stays in the mailbox for the next run.
    async with run_test_system(system) as probe:
        pass
    assert probe.sent("long") == []


async def test_on_start_failure_fails_the_start() -> None:
    system = new_system()

    class Broken(Actor):
        mailbox = list_mailbox("broken")

        async def on_start(self) -> None:
            raise OSError("no disk")

        async def receive(self, n: int) -> None:
            pass

    system.supervise(Supervisor([Broken.spec()]))
    with pytest.raises(BaseException) as info:  # a group from the nursery
        async with run_test_system(system):
            pass
    assert "no disk" in repr(info.value) or "broken" in repr(info.value)


def test_declaration_errors_are_clear() -> None:
    system = new_system()
    with pytest.raises(ConfigurationError, match="exactly one of"):
        system.actor(list="a", stream="b")(_noop)
    with pytest.raises(ConfigurationError, match="must be async def"):
        system.actor(list="a")(lambda x: x)

    class NoHandler(Actor):
        mailbox = list_mailbox("x")

    with pytest.raises(ConfigurationError, match="no handler"):
        NoHandler.spec()

    class NoMailbox(Actor):
        async def receive(self, n: int) -> None:
            pass

    with pytest.raises(ConfigurationError, match="declares no mailbox"):
        NoMailbox.spec()
    with pytest.raises(ConfigurationError, match="unknown target 'nobody'"):
        system.resolve("nobody")
    assert system.resolve("pubsub:x") == channel_mailbox("x")


async def _noop(msg: int) -> None:
    pass


class _FlakyAcks(Consumer):
    """A consumer whose first ``failures`` acks fail as if the store were down."""

    def __init__(self, inner: Consumer, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def fetch(self, max_count: int, *, ack: Sequence[Delivery] = ()) -> Sequence[Delivery]:
        if ack:
            await self.ack(ack)
        return await self.inner.fetch(max_count)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if self.failures:
            self.failures -= 1
            raise BrokenConnectionError("connection lost (test)")
        await self.inner.ack(deliveries)

    async def settle(self, settlement: Settlement) -> dict[MailboxSpec, ActorsError]:
        if settlement.acks and self.failures:
            self.failures -= 1
            raise BrokenConnectionError("connection lost (test)")
        return await self.inner.settle(settlement)

    async def fail(self, attempts: Sequence[FailedAttempt]) -> Sequence[Outcome]:
        return await self.inner.fail(attempts)

    async def record_failure(self, delivery: Delivery) -> int:
        return await self.inner.record_failure(delivery)

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> str | None:
        return await self.inner.dead_letter(delivery, failure)

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        await self.inner.retry_later(delivery, delay)


@asynccontextmanager
async def _wrapped(
    transport: RecordingTransport,
    spec: MailboxSpec,
    name: str,
    wrap: Callable[[Consumer], Consumer],
) -> AsyncIterator[Consumer]:
    """The inner transport's consumer, as ``wrap`` makes it."""
    async with transport.inner.consumer(spec, name) as consumer:
        yield wrap(consumer)


class _FlakyTransport(RecordingTransport):
    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        return _wrapped(
            self,
            spec,
            name,
            lambda consumer: _FlakyAcks(consumer, 2) if spec.name == "acks" else consumer,
        )


async def test_a_failed_ack_is_retried_until_it_lands(autojump_clock: Any) -> None:
    """An ack lost to an outage is retried; it must not leave the message held forever."""
    system = new_system()
    handled: list[int] = []

    @system.actor(list="acks")
    async def record(n: int) -> None:
        handled.append(n)

    transport = _FlakyTransport()
    async with system.lifecycle.running(transport):
        await system.tell_many("acks", [1, 2])
        await trio.sleep(10)
        await trio.testing.wait_all_tasks_blocked()
        stats = await system.transport.mailbox_stats(list_mailbox("acks"))
    assert handled == [1, 2]
    assert (stats.depth, stats.pending) == (0, 0)


class _DownAtFirst(RecordingTransport):
    """Refuses to open consumers of ``outage`` while ``down`` is set, as a dead store would."""

    down = False

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        if self.down and spec.name == "outage":
            raise BrokenConnectionError("connection refused (test)")
        return self.inner.consumer(spec, name)


async def test_a_restart_during_an_outage_waits_for_the_store(autojump_clock: Any) -> None:
    system = new_system()
    transport = _DownAtFirst()
    seen: list[tuple[int, int]] = []

    @system.actor(list="outage", on_error={ValueError: "restart"})
    async def fragile(n: int, context: ActorContext) -> None:
        seen.append((n, context.message.attempt))
        if context.message.attempt == 1:
            transport.down = True  # the store goes away as we crash
            raise ValueError("crash")

    async with system.lifecycle.running(transport):
        await system.tell("outage", 7)
        await trio.sleep(30)  # the restart keeps waiting for the store...
        assert system.tree().children[0].restarts == 1
        transport.down = False  # ...and goes on once it is back
        await trio.sleep(30)
        await trio.testing.wait_all_tasks_blocked()
        assert system.tree().children[0].restarts == 1
    assert seen == [(7, 1), (7, 2)]


async def test_a_result_that_cannot_be_encoded_is_dead_lettered_once() -> None:
    system = new_system()
    calls: list[int] = []

    @system.actor(list="unencodable")
    @system.publisher(list="out")
    async def bad(n: int) -> object:
        calls.append(n)
        return object()  # not JSON data

    async with run_test_system(system) as probe:
        await system.tell("unencodable", 1)
        await probe.drain()
        dead = await system.dead_letters("unencodable")
        assert system.tree().children[0].restarts == 0
    assert calls == [1]
    assert [(d.failure.reason, d.failure.error_type) for d in dead] == [
        ("result not encodable", "CodecError")
    ]


async def test_a_reply_to_that_refuses_does_not_wedge_the_actor() -> None:
    # Allowed, so that the store is what refuses it.
    system = ActorSystem("memory://", node="test", reply_to_allowed=("stream:victim",))
    done: list[int] = []

    @system.actor(list="jobs")
    async def work(n: int) -> int:
        done.append(n)
        return n

    async with run_test_system(system) as probe:
        await system.tell("list:victim", 0)  # 'victim' is a list...
        poison = encode(1, correlation_id="c", reply_to="stream:victim")  # ...not a stream
        await system.transport.send(list_mailbox("jobs"), [poison])
        await system.tell("jobs", 2)
        await probe.drain()
        stats = await system.transport.mailbox_stats(list_mailbox("jobs"))
    assert done == [1, 2]
    assert (stats.depth, stats.pending) == (0, 0)


async def test_errors_in_the_body_of_a_running_system_are_not_wrapped() -> None:
    system = new_system()

    @system.actor(list="idle")
    async def idle(n: int) -> None:
        pass

    with pytest.raises(KeyError):
        async with system:
            raise KeyError("mine")
    with pytest.raises(KeyError):
        async with run_test_system(system):
            raise KeyError("mine")


async def test_bytes_bodies_round_trip() -> None:
    system = new_system()
    got: list[bytes] = []

    @system.actor(list="bin")
    async def keep(data: bytes) -> None:
        got.append(data)

    async with run_test_system(system) as probe:
        await system.tell("bin", b"\x00hello\xff")
        await system.transport.send(list_mailbox("bin"), [b"raw text"])  # another client
        await probe.drain()
    assert got == [b"\x00hello\xff", b"raw text"]


class _AckBug(_FlakyAcks):
    """A consumer whose acks fail with a bug (not a store failure) while its
    transport has ``bugs`` left."""

    def __init__(self, inner: Consumer, transport: _BuggyAckTransport) -> None:
        super().__init__(inner, failures=0)
        self.transport = transport

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if self.transport.bugs:
            self.transport.bugs -= 1
            raise RuntimeError("ack bug (test)")
        await self.inner.ack(deliveries)


@attrs.define
class _BuggyAckTransport(RecordingTransport):
    bugs: int = 1

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        @asynccontextmanager
        async def open_buggy() -> AsyncIterator[Consumer]:
            async with self.inner.consumer(spec, name) as consumer:
                yield _AckBug(consumer, self)

        return open_buggy()


async def test_an_error_in_an_ack_crashes_the_instance_with_that_error(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The acks of a batch go with the next fetch; an error there (not a store failure)
    is the instance's crash (its own exception, not a group), and the message comes back."""
    system = new_system()
    handled: list[int] = []

    @system.actor(list="buggy")
    async def record(n: int) -> None:
        handled.append(n)

    async with system.lifecycle.running(_BuggyAckTransport()):
        await system.tell("buggy", 1)
        await trio.sleep(10)
        await trio.testing.wait_all_tasks_blocked()
        stats = await system.transport.mailbox_stats(list_mailbox("buggy"))
        restarts = system.tree().children[0].restarts
    assert handled == [1, 1]  # handled, its ack crashed, redelivered and handled again
    assert restarts == 1
    assert (stats.depth, stats.pending) == (0, 0)
    crashes = [r for r in caplog.records if "ack bug" in r.getMessage()]
    assert crashes, "the crash names the error"
    assert not any("ExceptionGroup" in r.getMessage() for r in caplog.records)


class _HangingSends(RecordingTransport):
    """A store that accepts connections but never answers a send to ``hang``."""

    async def send(self, spec: MailboxSpec, payloads: Sequence[bytes]) -> None:
        if spec.name == "hang":
            await trio.sleep_forever()
        await super().send(spec, payloads)


async def test_ask_timeout_bounds_the_send_too(autojump_clock: Any) -> None:
    system = new_system()

    @system.actor(list="hang")
    async def never(n: int) -> int:
        return n

    async with system.lifecycle.running(_HangingSends()):
        start = trio.current_time()
        with trio.fail_after(10), pytest.raises(AskTimeout):  # fail_after: a regression hangs
            await system.ask("hang", 1, timeout=2)
        assert trio.current_time() - start == pytest.approx(2)
        assert _messenger(system).waiters == {}


@attrs.define
class _FlakyFailureCounts(RecordingTransport):
    """A store whose first ``outages`` fate writes (a failure counted, a dead letter)
    are lost to a broken connection."""

    outages: int = 2

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        transport = self

        def lose_one() -> None:
            if transport.outages:
                transport.outages -= 1
                raise BrokenConnectionError("connection lost (test)")

        class Flaky(_FlakyAcks):
            async def fail(self, attempts: Sequence[FailedAttempt]) -> Sequence[Outcome]:
                lose_one()
                return await self.inner.fail(attempts)

        return _wrapped(self, spec, name, lambda consumer: Flaky(consumer, failures=0))


async def test_a_store_outage_while_deciding_a_fate_is_waited_out_not_a_crash(
    autojump_clock: Any,
) -> None:
    system = new_system()

    @system.actor(list="poison", max_deliveries=1)
    async def poison(n: int) -> None:
        raise ValueError(f"bad {n}")

    transport = _FlakyFailureCounts()
    async with system.lifecycle.running(transport):
        await system.tell("poison", 1)
        await trio.sleep(10)
        await trio.testing.wait_all_tasks_blocked()
        dead = await system.dead_letters("poison")
        restarts = system.tree().children[0].restarts
    assert transport.outages == 0
    assert restarts == 0  # the lost failure counts were retried, not a crash each
    assert [d.failure.error_type for d in dead] == ["ValueError"]


class _CountingFetches(RecordingTransport):
    """Records the ``max_count`` of every fetch from the ``paced`` mailbox, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: list[int] = []

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        transport = self

        class Counting(_FlakyAcks):
            async def fetch(
                self, max_count: int, *, ack: Sequence[Delivery] = ()
            ) -> Sequence[Delivery]:
                if spec.name == "paced":
                    transport.counts.append(max_count)
                return await super().fetch(max_count, ack=ack)

        return _wrapped(self, spec, name, lambda consumer: Counting(consumer, failures=0))


def _paced_system() -> ActorSystem:
    """A system whose actor ``paced`` sleeps as many seconds as each message says."""
    system = new_system()

    @system.actor(list="paced")
    async def paced(seconds: float) -> None:
        await trio.sleep(seconds)

    return system


async def test_fetches_grow_to_the_batch_size_for_fast_work_and_shrink_for_slow(
    autojump_clock: Any,
) -> None:
    """An instance starts with one message, grows while handling is fast, and fetches
    only what it handles in about 50 ms once it is slow."""
    system = _paced_system()
    transport = _CountingFetches()
    async with system.lifecycle.running(transport):
        await trio.testing.wait_all_tasks_blocked()
        await system.tell_many("paced", [0.0] * 300)
        await trio.sleep(1)
        assert transport.counts[:5] == [1, 8, 64, 100, 100]
        # 20 ms per message: 0.05 s of handling holds 2 of them.
        await system.tell_many("paced", [0.02] * 10)
        await trio.sleep(5)
        await trio.testing.wait_all_tasks_blocked()
    assert transport.counts[-1] == 2
    stats = await transport.mailbox_stats(list_mailbox("paced"))
    assert (stats.depth, stats.pending) == (0, 0)


async def test_slow_work_spreads_over_instances(autojump_clock: Any) -> None:
    """A backlog of slow messages is shared by the instances, not held in one's batch."""
    system = new_system()
    handled: list[tuple[str, float]] = []

    @system.actor(list="slow", instances=2)
    async def slow(n: int, context: ActorContext) -> None:
        await trio.sleep(1)
        handled.append((context.path, trio.current_time()))

    async with run_test_system(system):
        await trio.testing.wait_all_tasks_blocked()
        begun = trio.current_time()
        await system.tell_many("slow", list(range(20)))
        await trio.sleep(60)
    assert sorted(collections.Counter(path for path, _ in handled).values()) == [10, 10]
    assert max(at for _, at in handled) - begun < 11


async def test_a_trickle_of_fast_messages_does_not_open_a_full_batch(
    autojump_clock: Any,
) -> None:
    """Fetches grow from what the last batch held: after single fast messages, a burst
    of slow ones is taken eight at most, then one at a time."""
    system = _paced_system()
    transport = _CountingFetches()
    async with system.lifecycle.running(transport):
        for _ in range(5):
            await system.tell("paced", 0.0)
            await trio.testing.wait_all_tasks_blocked()
        await system.tell_many("paced", [1.0] * 20)
        await trio.sleep(60)
    assert transport.counts[:8] == [1, 8, 8, 8, 8, 8, 1, 1]


async def test_messaging_a_system_that_is_not_running() -> None:
    """tell says the system is not running; ask checks its target first."""
    system = new_system()

    @system.actor(list="jobs")
    async def work(n: int) -> int:
        return n

    for target in ("nope", "jobs"):
        with pytest.raises(ClosedError, match="not running"):
            await system.tell(target, 1)
    with pytest.raises(ConfigurationError, match="unknown target 'nope'"):
        await system.ask("nope", 1)
    with pytest.raises(ClosedError, match="not running"):
        await system.ask("jobs", 1)


async def test_entering_a_running_system_again_is_refused_and_the_first_run_goes_on() -> None:
    """A second ``async with system`` inside the first fails with ConfigurationError;
    the first run keeps working and stops cleanly (it used to lose its run block)."""
    system = ActorSystem("memory://", node="test")
    seen: list[int] = []

    @system.actor(list="jobs")
    async def work(n: int) -> None:
        seen.append(n)

    async with system:

        async def enter_again() -> None:
            async with system:
                pass  # pragma: no cover (refused)

        with pytest.raises(ConfigurationError, match="already running"):
            await enter_again()
        await system.tell("jobs", 1)
        with trio.fail_after(5):
            while seen != [1]:
                await trio.sleep(0.01)
    assert system.lifecycle.state is SystemState.CLOSED
