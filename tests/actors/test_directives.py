"""What a handler's exception means: ``on_error`` directives, per-message retry backoff,
restarts that do not pay for a poison message, and a burst of poison messages that
costs those messages only. On the memory transport, with MockClock where time matters.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, strategies as st

from actors import (
    Actor,
    ActorContext,
    ActorSystem,
    Backoff,
    ChildState,
    ConfigurationError,
    Retry,
    Supervisor,
    SupervisorError,
    list_mailbox,
    stream_mailbox,
)
from actors._actor import DEFAULT_RETRY_BACKOFF, Directive
from actors.testing import RecordingTransport, run_test_system
from transports import Consumer, FailedAttempt, MailboxSpec, Outcome

DIRECTIVES: list[Directive] = ["retry", "restart", "stop", "escalate"]
#: Virtual seconds after which a wait is a deadlock (MockClock jumps there and fails).
DEADLOCK = 10_000.0


def new_system() -> ActorSystem:
    return ActorSystem("memory://", node="test")


class Poison(Exception):
    """What the handlers under test raise."""


# -- the directive table --------------------------------------------------------------


@st.composite
def hierarchies(draw: st.DrawFn) -> tuple[list[type[Exception]], dict[int, int | None]]:
    """Exception classes in a tree under Exception (some under ValueError): classes,
    and each one's parent index (None: a root class of the generated tree)."""
    count = draw(st.integers(1, 8))
    classes: list[type[Exception]] = []
    parents: dict[int, int | None] = {}
    for i in range(count):
        parent = draw(st.none() | st.integers(0, i - 1)) if i else None
        base: type[Exception] = ValueError if parent is None and i % 2 else Exception
        if parent is not None:
            base = classes[parent]
        classes.append(type(f"E{i}", (base,), {}))
        parents[i] = parent
    return classes, parents


@given(data=st.data(), tree=hierarchies())
def test_the_most_specific_class_decides(
    data: st.DataObject, tree: tuple[list[type[Exception]], dict[int, int | None]]
) -> None:
    classes, parents = tree
    candidates: list[type[Exception]] = [*classes, Exception, ValueError, LookupError]
    table = data.draw(
        st.dictionaries(st.sampled_from(candidates), st.sampled_from(DIRECTIVES), max_size=6)
    )

    class Decider(Actor):
        mailbox = list_mailbox("decider")
        on_error = table

    for leaf in range(len(classes)):
        # The oracle walks the generated parents, then the built-in bases, by hand.
        chain: list[type[BaseException]] = []
        node: int | None = leaf
        while node is not None:
            chain.append(classes[node])
            node = parents[node]
        chain.extend(c for c in chain[-1].__mro__[1:] if c is not object)
        expected = next((table[c] for c in chain if c in table), "retry")
        assert Decider.directive_for(classes[leaf]("x")) == expected


def test_the_default_is_retry_for_any_exception_and_can_be_overridden() -> None:
    class Plain(Actor):
        mailbox = list_mailbox("plain")

    class Strict(Actor):
        mailbox = list_mailbox("strict")
        on_error = {Exception: "restart", KeyError: "stop"}

    assert Plain.directive_for(ValueError()) == "retry"
    assert Plain.retry_backoff == DEFAULT_RETRY_BACKOFF
    assert Strict.directive_for(ValueError()) == "restart"
    assert Strict.directive_for(KeyError()) == "stop"
    assert Strict.directive_for(LookupError()) == "restart"


@pytest.mark.parametrize(
    ("on_error", "message"),
    [
        ({ValueError: "resume"}, "on_error[ValueError] must be one of retry, restart"),
        ({"ValueError": "retry"}, "on_error keys must be exception classes, not 'ValueError'"),
        ({int: "retry"}, "on_error keys must be exception classes"),
        ({KeyboardInterrupt: "stop"}, "on_error keys must be exception classes"),
        ({Retry: "retry"}, "on_error cannot name Retry"),
        ([(ValueError, "retry")], "on_error must be a mapping"),
    ],
)
def test_a_bad_table_fails_at_the_class_statement(on_error: Any, message: str) -> None:
    table = on_error
    with pytest.raises(ConfigurationError, match="actor Broken: ") as info:

        class Broken(Actor):
            mailbox = list_mailbox("broken")
            on_error = table

    assert message in str(info.value)


def test_a_bad_table_fails_at_registration_too() -> None:
    system = new_system()
    with pytest.raises(ConfigurationError, match=r"actor work: on_error\[ValueError\]"):

        @system.actor(list="work", on_error={ValueError: "ignore"})  # type: ignore[dict-item]
        async def work(n: int) -> None: ...

    with pytest.raises(ConfigurationError, match="actor work: retry_backoff must be a Backoff"):

        @system.actor(list="work", retry_backoff=0.5)  # type: ignore[arg-type]
        async def work(n: int) -> None: ...

    class Late(Actor):
        mailbox = list_mailbox("late")

        async def receive(self, n: int) -> None: ...

    Late.on_error = {ValueError: "later"}  # type: ignore[dict-item]  # set after the class
    with pytest.raises(ConfigurationError, match="actor Late: "):
        system.actor(Late)
    with pytest.raises(ConfigurationError, match="declare on_error, retry_backoff and middleware"):
        system.actor(on_error={ValueError: "stop"})(Late)


# -- retry: the message waits, the instance goes on with its state ---------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_retry_keeps_the_instance_and_its_state_and_backs_off_per_message(
    autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    system = new_system()
    instances: list[Counting] = []
    seen: list[tuple[int, int, int, float]] = []  # message, attempt, count, time

    class Counting(Actor):
        mailbox = list_mailbox("counting") if kind == "list" else stream_mailbox("counting")
        max_deliveries = 4
        retry_backoff = Backoff(min=1.0, max=10.0, jitter=0.0)

        def __init__(self) -> None:
            self.count = 0
            instances.append(self)

        async def receive(self, n: int) -> None:
            self.count += 1
            attempt = self.context.message.attempt
            seen.append((n, attempt, self.count, trio.current_time()))
            if n == 1 and attempt < 3:
                raise Poison(f"not yet: {attempt}")

    system.actor(Counting)
    async with run_test_system(system) as probe:
        start = trio.current_time()
        await system.tell_many(Counting, [1, 2, 3])
        with trio.fail_after(DEADLOCK):
            while len(seen) < 5:  # the retries wait on the clock
                await trio.sleep(0.5)
        await probe.drain()
        restarts = system.tree().children[0].restarts
        dead = await system.dead_letters(Counting)
    assert len(instances) == 1 and restarts == 0  # never restarted: its state went on
    # The retried message went behind the later ones (the ordering the README states),
    # and waited retry_backoff.delay(n - 1) after its n-th failure: 1 s, then 2 s.
    assert [(n, attempt, count) for n, attempt, count, _ in seen] == [
        (1, 1, 1),
        (2, 1, 2),
        (3, 1, 3),
        (1, 2, 4),
        (1, 3, 5),
    ]
    times = {(n, attempt): at - start for n, attempt, _, at in seen}
    assert times[1, 2] == pytest.approx(1.0)
    assert times[1, 3] == pytest.approx(3.0)
    assert dead == []


async def test_an_explicit_retry_keeps_its_own_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    system = new_system()
    times: list[float] = []

    @system.actor(list="explicit", retry_backoff=Backoff(min=100.0, max=100.0, jitter=0.0))
    async def explicit(n: int, context: ActorContext) -> None:
        times.append(trio.current_time())
        if context.message.attempt == 1:
            raise Retry(delay=7.0)

    async with run_test_system(system) as probe:
        await system.tell("explicit", 1)
        with trio.fail_after(DEADLOCK):
            while len(times) < 2:
                await trio.sleep(1)
        await probe.drain()
    assert times[1] - times[0] == pytest.approx(7.0)


async def test_a_poison_message_under_the_defaults_is_dead_lettered_and_logged_once(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Defaults: retry after 0.1 s, then 0.2 s (with jitter), then the dead letter with
    one ERROR and its traceback; each retry is one INFO line without a traceback; the
    actor is never restarted."""
    caplog.set_level(logging.INFO)
    system = new_system()
    handled: list[int] = []

    @system.actor(list="jobs")
    async def work(n: int) -> None:
        if n % 2:
            raise Poison(f"poison {n}")
        handled.append(n)

    async with run_test_system(system) as probe:
        await system.tell_many("jobs", list(range(6)))
        with trio.fail_after(DEADLOCK):
            while len(await system.dead_letters("jobs")) < 3:
                await trio.sleep(0.05)
        await probe.drain()
        dead = await system.dead_letters("jobs")
        restarts = system.tree().children[0].restarts
    assert handled == [0, 2, 4]
    assert restarts == 0
    assert sorted(d.failure.error for d in dead) == ["poison 1", "poison 3", "poison 5"]
    assert all(d.attempts == 3 and "raise Poison" in d.failure.traceback for d in dead)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 3
    assert all(r.exc_info and "dead-lettered" in r.getMessage() for r in errors)
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 6  # two per poison message
    assert all(r.levelno == logging.INFO and not r.exc_info for r in retries)
    assert not any("crashed" in r.getMessage() for r in caplog.records)


async def test_ask_of_a_message_that_keeps_failing_gets_the_error_after_the_retries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from actors import RemoteError

    system = new_system()
    attempts: list[int] = []

    @system.actor(list="asked")
    async def asked(n: int, context: ActorContext) -> int:
        attempts.append(context.message.attempt)
        raise KeyError(n)

    async with run_test_system(system):
        with pytest.raises(RemoteError, match="KeyError") as info:
            await system.ask("asked", 1, timeout=60)
    assert info.value.error_type == "KeyError"
    assert attempts == [1, 2, 3]


# -- restart: fresh state, at once --------------------------------------------------


async def test_restart_gives_a_fresh_instance_at_once_and_dead_letters_at_the_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A restart caused by a message is not delayed by the supervisor's backoff (0.1 s,
    then 0.2 s, by default), and the actor is not left in that backoff afterwards."""
    system = new_system()
    seen: list[tuple[int, int, int, float]] = []  # message, attempt, instance, time
    instances: list[object] = []

    class Fresh(Actor):
        mailbox = list_mailbox("fresh")
        on_error = {Poison: "restart"}

        def __init__(self) -> None:
            instances.append(self)
            self.count = 0

        async def receive(self, n: int) -> None:
            self.count += 1
            seen.append((n, self.context.message.attempt, self.count, trio.current_time()))
            if n == 1:
                raise Poison("always")

    system.supervise(Supervisor([Fresh.spec()], name="root"))  # default backoff
    async with run_test_system(system) as probe:
        start = trio.current_time()
        await system.tell_many(Fresh, [1, 2])
        with trio.fail_after(DEADLOCK):
            while len(seen) < 4:
                await trio.sleep(0.01)
        await probe.drain()
        restarts = system.tree().children[0].restarts
        dead = await system.dead_letters(Fresh)
    assert [(n, attempt, count) for n, attempt, count, _ in seen] == [
        (1, 1, 1),  # crash: a fresh instance...
        (1, 2, 1),  # ...with fresh state; crash again
        (1, 3, 1),  # the last attempt: dead-lettered, this instance goes on
        (2, 1, 2),
    ]
    assert all(at == start for *_, at in seen)  # no backoff at any restart
    assert restarts == 2 and len(instances) == 3
    assert [(d.attempts, d.failure.error_type) for d in dead] == [(3, "Poison")]


# -- intensity: only actor failures count -------------------------------------------


async def test_retries_never_count_toward_the_restart_intensity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    system = new_system()
    handled: list[int] = []

    class Tolerant(Actor):
        mailbox = list_mailbox("tolerant")

        async def receive(self, n: int) -> None:
            if n % 2:
                raise Poison(n)
            handled.append(n)

    # Not a single restart allowed: any crash would end the system.
    system.supervise(Supervisor([Tolerant.spec()], max_restarts=0))
    async with run_test_system(system) as probe:
        await system.tell_many(Tolerant, list(range(40)))
        with trio.fail_after(DEADLOCK):
            while len(await system.dead_letters(Tolerant, count=100)) < 20:
                await trio.sleep(0.1)
        await probe.drain()
        assert system.tree().state is ChildState.RUNNING
    assert handled == list(range(0, 40, 2))


@pytest.mark.parametrize("directive", ["restart", "stop"])
async def test_restart_and_stop_count_toward_the_restart_intensity(
    autojump_clock: trio.testing.MockClock, directive: Directive
) -> None:
    system = new_system()

    class Fragile(Actor):
        mailbox = list_mailbox("fragile")
        on_error = {Poison: directive}
        max_deliveries = 10

        async def receive(self, n: int) -> None:
            raise Poison(n)

    system.supervise(Supervisor([Fragile.spec(instances=2)], max_restarts=1, name="root"))
    with pytest.raises(SupervisorError, match="gave up"):  # noqa: PT012
        async with run_test_system(system):
            await system.tell_many(Fragile, [1, 2])
            with trio.fail_after(DEADLOCK):
                await trio.sleep_forever()


# -- stop and escalate ----------------------------------------------------------------


async def test_stop_stops_the_instance_for_good_and_hands_the_message_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    system = new_system()
    seen: list[tuple[int, int, str]] = []

    class Stopping(Actor):
        mailbox = list_mailbox("stopping")
        on_error = {Poison: "stop"}

        async def receive(self, n: int) -> None:
            seen.append((n, self.context.message.attempt, self.context.path))
            if self.context.message.attempt == 1:
                raise Poison("this instance is done")

    # permanent, and the supervisor would restart a plain crash: stop wins.
    system.supervise(Supervisor([Stopping.spec(instances=2)], name="root"))
    async with run_test_system(system) as probe:
        await system.tell(Stopping, 7)
        with trio.fail_after(DEADLOCK):
            while len(seen) < 2:
                await trio.sleep(0.01)
        await trio.sleep(60)  # time for any (wrong) restart
        await probe.drain()
        tree = system.tree()
        dead = await system.dead_letters(Stopping)
    states = {c.path: (c.state, c.restarts) for c in tree.children}
    first, second = seen
    assert (first[0], first[1], second[0], second[1]) == (7, 1, 7, 2)
    assert first[2] != second[2]  # handed back at once: the other instance took it
    assert states[first[2]] == (ChildState.STOPPED, 0)
    assert states[second[2]] == (ChildState.RUNNING, 0)
    assert tree.state is ChildState.RUNNING
    assert dead == []


async def test_escalate_fails_the_supervisor_at_once_and_its_parent_restarts_it(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    system = new_system()
    seen: list[tuple[int, int]] = []

    class Escalating(Actor):
        mailbox = list_mailbox("escalating")
        on_error = {MemoryError: "escalate"}

        async def receive(self, n: int) -> None:
            seen.append((n, self.context.message.attempt))
            if self.context.message.attempt == 1:
                raise MemoryError("beyond this actor")

    media = Supervisor([Escalating.spec()], name="media", max_restarts=100)
    system.supervise(Supervisor([media], name="root", max_restarts=100))
    async with run_test_system(system) as probe:
        await system.tell(Escalating, 1)
        with trio.fail_after(DEADLOCK):
            while len(seen) < 2:
                await trio.sleep(0.01)
        await probe.drain()
        tree = system.tree()
    assert seen == [(1, 1), (1, 2)]  # the message came back to the restarted subtree
    (media_info,) = tree.children
    assert media_info.restarts == 1  # the parent restarted the supervisor...
    assert media_info.children[0].restarts == 0  # ...not the child: media never tried
    assert any("escalated MemoryError" in r.getMessage() for r in caplog.records)


# -- a burst of poison: it costs those messages, not the system -----------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_a_poison_burst_with_the_defaults_costs_only_the_poison(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.INFO)
    system = new_system()
    handled: list[int] = []
    count = 1000

    @system.actor(**{kind: "burst"})  # type: ignore[arg-type]
    async def burst(n: int) -> None:
        if n < 0:
            raise Poison(f"poison {n}")
        handled.append(n)

    messages = [m for i in range(count) for m in (i, -i - 1)]
    async with run_test_system(system) as probe:
        await system.tell_many("burst", messages)
        with trio.fail_after(DEADLOCK):
            while len(await system.dead_letters("burst", count=2 * count)) < count:
                await trio.sleep(1)
        await probe.drain()
        dead = await system.dead_letters("burst", count=2 * count)
        tree = system.tree()
    assert sorted(handled) == list(range(count))  # each good one exactly once
    assert sorted(d.failure.error for d in dead) == sorted(f"poison {-i - 1}" for i in range(count))
    assert {d.attempts for d in dead} == {3}
    assert tree.state is ChildState.RUNNING and tree.children[0].restarts == 0
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == count  # one per dead letter, none per attempt


# -- what a batch's failures cost -----------------------------------------------------


@attrs.define
class _SlowFates(RecordingTransport):
    """A store that takes ``latency`` (virtual) seconds for each call storing failures,
    and records how many failures each call stored."""

    latency: float = 0.001
    sizes: list[int] = attrs.Factory(list)

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        return self._open(spec, name)

    @asynccontextmanager
    async def _open(self, spec: MailboxSpec, name: str) -> AsyncIterator[Consumer]:
        async with self.inner.consumer(spec, name) as consumer:
            fail = consumer.fail

            async def slow_fail(attempts: Sequence[FailedAttempt]) -> Sequence[Outcome]:
                self.sizes.append(len(attempts))
                await trio.sleep(self.latency)
                return await fail(attempts)

            consumer.fail = slow_fail  # type: ignore[method-assign]
            yield consumer


async def test_a_batchs_failures_are_stored_together_not_one_after_another(
    autojump_clock: Any,
) -> None:
    """Poison messages in one batch: their failures are stored in one call, so the
    batch waits about one store round trip for all of them, not one each."""
    system = new_system()
    transport = _SlowFates()
    handled: list[int] = []

    @system.actor(list="jobs", max_deliveries=1_000)
    async def work(n: int) -> None:
        if n % 2:
            raise Poison(n)
        handled.append(n)

    async with system.lifecycle.running(transport):
        await system.tell_many("jobs", list(range(20)))
        while len(handled) < 10:
            await trio.sleep(0.01)
        # Batches grow from one message (pacing): 1, then up to 8, then the rest.
        assert max(transport.sizes) >= 4
        assert len(transport.sizes) < sum(transport.sizes)
