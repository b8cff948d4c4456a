"""Supervision trees: start/stop order, strategies, restart types, intensity, backoff, tree().

Every timed test runs on trio's MockClock with autojump, so "seconds" cost nothing.
"""

from __future__ import annotations

import logging
import math

import attrs
import pytest
import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from actors import Backoff, ConfigurationError, Supervisor, SupervisorError, current_child_path
from actors._tree import ChildInfo, ChildSpec, ChildState, ExitDirective, Restart, direct

# Virtual seconds after which a wait is a deadlock: on the autojump clock a stuck test
# jumps straight here and fails with TooSlowError instead of hanging.
DEADLOCK = 10_000.0


class Boom(Exception):
    """What scripted workers crash with."""


class Worker:
    """A scripted child: records its lifecycle in ``events``, crashes or exits on command.

    Each incarnation takes ``startup`` seconds to start (failing the first
    ``start_failures`` times), then waits for its stop event or a command; told to
    stop, it takes ``finish`` seconds to "finish its current message", then returns.
    """

    def __init__(
        self,
        name: str,
        events: list[tuple[str, str]],
        *,
        restart: Restart = "permanent",
        shutdown: float = 5.0,
        startup: float = 0.0,
        finish: float = 0.0,
        start_failures: int = 0,
    ) -> None:
        self.name = name
        self.events = events
        self.restart: Restart = restart
        self.shutdown = shutdown
        self.startup = startup
        self.finish = finish
        self.start_failures = start_failures
        self.incarnations = 0
        self.up_times: list[float] = []
        self.paths: list[str | None] = []
        self._scope: trio.CancelScope | None = None
        self._error: Exception | None = None
        self.next_up = trio.Event()  # set when the next incarnation is up

    def spec(self) -> ChildSpec:
        return ChildSpec(self.name, self.run, restart=self.restart, shutdown=self.shutdown)

    def crash(self, error: Exception | None = None) -> None:
        """Make the running incarnation raise ``error`` (a Boom by default)."""
        assert self._scope is not None, f"{self.name} is not running"
        self._error = error or Boom(f"{self.name} crashed")
        self._scope.cancel()

    async def crash_and_wait(self, *, quiet: float = 0.0) -> float:
        """Run ``quiet`` seconds, crash, and return how long the restart took."""
        await trio.sleep(quiet)
        crashed_at = trio.current_time()
        up = self.next_up
        self.crash()
        with trio.fail_after(DEADLOCK):
            await up.wait()
        return self.up_times[-1] - crashed_at

    def exit(self) -> None:
        """Make the running incarnation return normally."""
        assert self._scope is not None, f"{self.name} is not running"
        self._error = None
        self._scope.cancel()

    async def run(
        self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.incarnations += 1
        self.events.append(("call", self.name))
        self.paths.append(current_child_path())
        try:
            await trio.sleep(self.startup)
            if self.start_failures:
                self.start_failures -= 1
                raise Boom(f"{self.name} cannot start")
            self._scope = trio.CancelScope()
            self.events.append(("up", self.name))
            self.up_times.append(trio.current_time())
            self.next_up.set()
            self.next_up = trio.Event()
            task_status.started()
            with self._scope:
                await stop.wait()
            self._scope = None
            if not stop.is_set():  # a command cancelled our scope
                error, self._error = self._error, None
                self.events.append(("crash" if error else "exit", self.name))
                if error:
                    raise error
                return
            await trio.sleep(self.finish)
            self.events.append(("stopped", self.name))
        except trio.Cancelled:
            self.events.append(("cancelled", self.name))
            raise


def only(events: list[tuple[str, str]], what: str) -> list[str]:
    """The names of the children that did ``what``, in order."""
    return [name for kind, name in events if kind == what]


@attrs.define
class Running:
    """A supervisor running in a test nursery, its SupervisorError captured."""

    supervisor: Supervisor
    stop: trio.Event = attrs.Factory(trio.Event)
    done: trio.Event = attrs.Factory(trio.Event)
    error: SupervisorError | None = None

    async def main(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self.supervisor.run(self.stop, task_status=task_status)
        except SupervisorError as exc:
            self.error = exc
        finally:
            self.done.set()

    async def failure(self) -> SupervisorError:
        with trio.fail_after(DEADLOCK):
            await self.done.wait()
        assert self.error is not None, "the supervisor did not fail"
        return self.error

    async def shutdown(self) -> None:
        self.stop.set()
        with trio.fail_after(DEADLOCK):
            await self.done.wait()
        assert self.error is None


async def start(nursery: trio.Nursery, supervisor: Supervisor) -> Running:
    running = Running(supervisor)
    await nursery.start(running.main)
    return running


def workers(events: list[tuple[str, str]], *names: str, **options: object) -> list[Worker]:
    return [Worker(name, events, **options) for name in names]  # type: ignore[arg-type]


# -- start and stop order -------------------------------------------------------------------


async def test_children_start_in_order_each_after_the_previous_started(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    # A startup delay makes a concurrent start visible: b would be called before a is up.
    a, b, c = workers(events, "a", "b", "c", startup=1.0)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([a.spec(), b.spec(), c.spec()]))
        # run() reported started only once every child was up.
        assert events == [
            ("call", "a"), ("up", "a"), ("call", "b"), ("up", "b"), ("call", "c"), ("up", "c"),
        ]  # fmt: skip
        await running.shutdown()
    assert only(events, "stopped") == ["c", "b", "a"]


async def test_stop_lets_each_child_finish_in_reverse_order(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    a, b = workers(events, "a", "b", finish=1.0)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([a.spec(), b.spec()]))
        before = trio.current_time()
        await running.shutdown()
        # Sequential, not concurrent: b finished its second, then a its own.
        assert trio.current_time() - before == pytest.approx(2.0)
    assert events[-2:] == [("stopped", "b"), ("stopped", "a")]
    # Returning when asked to stop is a normal exit that is never restarted.
    assert (a.incarnations, b.incarnations) == (1, 1)
    assert "cancelled" not in {kind for kind, _ in events}


async def test_a_pool_of_siblings_stops_together_within_one_shutdown(
    autojump_clock: MockClock,
) -> None:
    """The instances of one actor (a pool) stop together, each within its own shutdown;
    the order between the pool and the other children stays the reverse start order."""
    events: list[tuple[str, str]] = []
    first, last = workers(events, "first", "last", finish=1.0)
    pool = workers(events, "w0", "w1", "w2", "w3", finish=1.0)
    stuck = Worker("w4", events, finish=100.0, shutdown=3.0)
    specs = [attrs.evolve(w.spec(), pool="w") for w in [*pool, stuck]]
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([first.spec(), *specs, last.spec()]))
        before = trio.current_time()
        await running.shutdown()
        # last (1 s), then the pool at once (cut at w4's 3 s shutdown), then first (1 s).
        assert trio.current_time() - before == pytest.approx(5.0)
    assert events[-7] == ("stopped", "last")
    assert set(events[-6:-1]) == {
        *[("stopped", w.name) for w in pool],
        ("cancelled", "w4"),
    }
    assert events[-1] == ("stopped", "first")


async def test_shutdown_timeout_cancels_a_slow_child_then_stops_the_next(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    first = Worker("first", events)
    slow = Worker("slow", events, finish=100.0, shutdown=2.0)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([first.spec(), slow.spec()]))
        before = trio.current_time()
        await running.shutdown()
        assert trio.current_time() - before == pytest.approx(2.0)
    assert events[-2:] == [("cancelled", "slow"), ("stopped", "first")]


async def test_infinite_shutdown_waits_for_the_child(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    (slow,) = workers(events, "slow", finish=1000.0, shutdown=math.inf)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([slow.spec()]))
        await running.shutdown()
    assert events[-1] == ("stopped", "slow")


async def test_a_child_that_crashes_while_stopping_is_not_restarted(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []

    async def crash_on_stop(
        stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        events.append(("up", "x"))
        task_status.started()
        await stop.wait()
        raise Boom("cleanup failed")

    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([ChildSpec("x", crash_on_stop)]))
        await running.shutdown()
    assert events == [("up", "x")]


async def test_cancelling_the_supervisor_cancels_children_in_reverse_and_propagates(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    a, b, c = workers(events, "a", "b", "c")
    supervisor = Supervisor([a.spec(), b.spec(), c.spec()])
    returned = False
    with trio.move_on_after(10) as scope:
        await supervisor.run(trio.Event())
        returned = True
    assert scope.cancelled_caught
    assert not returned
    assert only(events, "cancelled") == ["c", "b", "a"]
    assert supervisor.tree().state is ChildState.STOPPED


async def test_cancelling_the_supervisor_while_a_child_starts_is_prompt(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    a = Worker("a", events)
    hangs = Worker("hangs", events, startup=math.inf)
    with trio.move_on_after(3) as scope:
        await Supervisor([a.spec(), hangs.spec()]).run(trio.Event())
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(3.0)
    assert only(events, "cancelled") == ["hangs", "a"]


async def test_stop_set_before_run_starts_nothing(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    stop = trio.Event()
    stop.set()
    with trio.fail_after(DEADLOCK):
        await Supervisor([a.spec()]).run(stop)
    assert events == []


# -- start failure and rollback -------------------------------------------------------------


async def test_start_failure_stops_started_children_in_reverse_and_raises(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    a, b = workers(events, "a", "b")
    broken = Worker("broken", events, start_failures=1)
    never = Worker("never", events)
    supervisor = Supervisor([a.spec(), b.spec(), broken.spec(), never.spec()], name="bank")
    async with trio.open_nursery() as nursery:
        with pytest.raises(SupervisorError, match=r"could not start child 'bank/broken'") as info:
            with trio.fail_after(DEADLOCK):
                await nursery.start(supervisor.run, trio.Event())
    assert isinstance(info.value.__cause__, Boom)
    assert info.value.child == "bank/broken"
    assert only(events, "stopped") == ["b", "a"]
    assert never.incarnations == 0
    tree = supervisor.tree()
    assert tree.state is ChildState.FAILED
    assert [(c.name, c.state) for c in tree.children] == [
        ("a", ChildState.STOPPED),
        ("b", ChildState.STOPPED),
        ("broken", ChildState.FAILED),
        ("never", ChildState.STOPPED),
    ]


async def test_a_child_returning_before_started_is_a_start_failure(
    autojump_clock: MockClock,
) -> None:
    async def lazy(
        stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        return

    with pytest.raises(SupervisorError, match="lazy") as info:
        with trio.fail_after(DEADLOCK):
            await Supervisor([ChildSpec("lazy", lazy)]).run(trio.Event())
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "before calling task_status.started()" in str(info.value.__cause__)


# -- strategies -----------------------------------------------------------------------------


async def test_one_for_one_restarts_only_the_crashed_child(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    a, b, c = workers(events, "a", "b", "c")
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([a.spec(), b.spec(), c.spec()], backoff=None))
        events.clear()
        b.crash()
        await wait_all_tasks_blocked()
        assert events == [("crash", "b"), ("call", "b"), ("up", "b")]
        assert (a.incarnations, b.incarnations, c.incarnations) == (1, 2, 1)
        await running.shutdown()


async def test_one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    a, b, c = workers(events, "a", "b", "c")
    supervisor = Supervisor([a.spec(), b.spec(), c.spec()], strategy="one_for_all", backoff=None)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        events.clear()
        b.crash()
        await wait_all_tasks_blocked()
        assert events == [
            ("crash", "b"), ("stopped", "c"), ("stopped", "a"),
            ("call", "a"), ("up", "a"), ("call", "b"), ("up", "b"), ("call", "c"), ("up", "c"),
        ]  # fmt: skip
        assert [child.restarts for child in supervisor.tree().children] == [1, 1, 1]
        await running.shutdown()


async def test_rest_for_one_restarts_the_crashed_child_and_those_after_it(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    a, b, c, d = workers(events, "a", "b", "c", "d")
    supervisor = Supervisor(
        [a.spec(), b.spec(), c.spec(), d.spec()], strategy="rest_for_one", backoff=None
    )
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        events.clear()
        b.crash()
        await wait_all_tasks_blocked()
        assert events == [
            ("crash", "b"), ("stopped", "d"), ("stopped", "c"),
            ("call", "b"), ("up", "b"), ("call", "c"), ("up", "c"), ("call", "d"), ("up", "d"),
        ]  # fmt: skip
        assert a.incarnations == 1
        await running.shutdown()


async def test_one_for_all_does_not_restart_a_temporary_sibling(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    helper = Worker("helper", events, restart="temporary")
    main = Worker("main", events)
    supervisor = Supervisor([helper.spec(), main.spec()], strategy="one_for_all", backoff=None)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        main.crash()
        await wait_all_tasks_blocked()
        assert (helper.incarnations, main.incarnations) == (1, 2)
        assert [child.name for child in supervisor.tree().children] == ["main"]
        await running.shutdown()
    assert only(events, "stopped") == ["helper", "main"]


async def test_one_for_all_restarts_a_transient_sibling_that_had_exited_normally(
    autojump_clock: MockClock,
) -> None:
    # As OTP's terminate_children/start_children: only temporary children are left out.
    events: list[tuple[str, str]] = []
    done = Worker("done", events, restart="transient")
    main = Worker("main", events)
    supervisor = Supervisor([done.spec(), main.spec()], strategy="one_for_all", backoff=None)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        done.exit()
        await wait_all_tasks_blocked()
        assert done.incarnations == 1
        main.crash()
        await wait_all_tasks_blocked()
        assert (done.incarnations, main.incarnations) == (2, 2)
        await running.shutdown()


async def test_a_crash_does_not_disturb_siblings_under_one_for_one(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    a, b = workers(events, "a", "b")
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([a.spec(), b.spec()], backoff=None))
        for _ in range(3):
            a.crash()
            await wait_all_tasks_blocked()
        assert b.incarnations == 1
        assert ("cancelled", "b") not in events
        await running.shutdown()


# -- restart types --------------------------------------------------------------------------


async def test_permanent_child_is_restarted_after_a_normal_exit(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([a.spec()], backoff=None))
        a.exit()
        await wait_all_tasks_blocked()
        assert a.incarnations == 2
        await running.shutdown()


async def test_transient_child_is_restarted_after_a_crash_only(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a", restart="transient")
    supervisor = Supervisor([a.spec()], backoff=None)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        a.crash()
        await wait_all_tasks_blocked()
        assert a.incarnations == 2
        a.exit()
        await wait_all_tasks_blocked()
        assert a.incarnations == 2
        (info,) = supervisor.tree().children
        assert (info.state, info.restarts) == (ChildState.STOPPED, 1)
        await running.shutdown()


async def test_temporary_child_is_never_restarted_and_does_not_count(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    once = Worker("once", events, restart="temporary")
    (other,) = workers(events, "other")
    # max_restarts=1: if the temporary crash counted, other's one restart would be
    # one too many.
    supervisor = Supervisor([once.spec(), other.spec()], max_restarts=1, backoff=None)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        once.crash()
        await wait_all_tasks_blocked()
        assert once.incarnations == 1
        assert [child.name for child in supervisor.tree().children] == ["other"]
        other.crash()
        await wait_all_tasks_blocked()
        assert other.incarnations == 2
        assert not running.done.is_set()
        await running.shutdown()


# -- restart intensity ----------------------------------------------------------------------


async def test_exactly_max_restarts_within_the_window_is_fine(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([a.spec()], max_restarts=3, within=5.0))
        for _ in range(3):
            a.crash()
            await trio.sleep(1.0)  # backoff delays are 0.1, 0.2, 0.4 at most
        assert a.incarnations == 4
        assert not running.done.is_set()
        await running.shutdown()


async def test_one_restart_too_many_stops_everything_and_raises(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    first, flaky, last = workers(events, "first", "flaky", "last")
    supervisor = Supervisor(
        [first.spec(), flaky.spec(), last.spec()], max_restarts=3, within=5.0, name="bank"
    )
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        for _ in range(4):
            await trio.sleep(1.0)
            flaky.crash(Boom(f"boom {flaky.incarnations}"))
        error = await running.failure()
    assert flaky.incarnations == 4
    assert error.child == "bank/flaky"
    assert error.restarts == 3
    assert isinstance(error.__cause__, Boom)
    assert str(error.__cause__) == "boom 4"
    assert "bank/flaky" in str(error)
    assert "3 restarts within 5.0s" in str(error)
    assert only(events, "stopped") == ["last", "first"]
    tree = supervisor.tree()
    assert tree.state is ChildState.FAILED
    assert [c.state for c in tree.children] == [
        ChildState.STOPPED,
        ChildState.FAILED,
        ChildState.STOPPED,
    ]


async def test_restarts_spaced_wider_than_the_window_never_escalate(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([a.spec()], max_restarts=1, within=5.0))
        for _ in range(10):
            a.crash()
            await trio.sleep(5.01)
        assert a.incarnations == 11
        assert not running.done.is_set()
        await running.shutdown()


async def test_a_permanent_child_that_keeps_exiting_normally_escalates(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([a.spec()], max_restarts=1, backoff=None))
        a.exit()
        await wait_all_tasks_blocked()
        a.exit()
        error = await running.failure()
    assert error.__cause__ is None
    assert "exited normally" in str(error)


async def test_a_restart_that_fails_to_start_counts_as_a_crash(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    supervisor = Supervisor([a.spec()], max_restarts=2, backoff=None)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        a.start_failures = 1
        a.crash()
        await wait_all_tasks_blocked()
        # crash -> restart 1 fails to start -> restart 2 succeeds
        assert a.incarnations == 3
        assert supervisor.tree().children[0].state is ChildState.RUNNING
        a.start_failures = 5
        a.crash()  # restart 3 is one too many
        error = await running.failure()
    assert error.child == "root/a"
    assert str(error.__cause__) == "a crashed"


# -- nesting --------------------------------------------------------------------------------


async def test_nested_escalation_restarts_the_child_supervisor_with_fresh_children(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    (front,) = workers(events, "front")
    ledger, audit = workers(events, "ledger", "audit")
    bank = Supervisor([ledger.spec(), audit.spec()], name="bank", max_restarts=1, backoff=None)
    root = Supervisor([front.spec(), bank], backoff=None)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, root)
        ledger.crash()
        await wait_all_tasks_blocked()
        assert root.tree().find("root/bank/ledger") == ChildInfo(
            "ledger", "root/bank/ledger", "worker", ChildState.RUNNING, 1
        )
        events.clear()
        ledger.crash()  # one too many for bank, which stops audit and fails
        await wait_all_tasks_blocked()
        assert events == [
            ("crash", "ledger"), ("stopped", "audit"),
            ("call", "ledger"), ("up", "ledger"), ("call", "audit"), ("up", "audit"),
        ]  # fmt: skip
        tree = root.tree()
        bank_info = tree.find("root/bank")
        assert bank_info is not None
        assert (bank_info.kind, bank_info.state, bank_info.restarts) == (
            "supervisor",
            ChildState.RUNNING,
            1,
        )
        # bank runs afresh: its children's restart counts start over.
        assert [(c.path, c.restarts) for c in bank_info.children] == [
            ("root/bank/ledger", 0),
            ("root/bank/audit", 0),
        ]
        assert front.incarnations == 1
        await running.shutdown()
    assert ledger.paths == ["root/bank/ledger"] * 3


async def test_escalation_reaches_the_root_with_the_chain_of_causes(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    (ledger,) = workers(events, "ledger")
    bank = Supervisor([ledger.spec()], name="bank", max_restarts=0, backoff=None)
    root = Supervisor([bank], max_restarts=0, backoff=None)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, root)
        ledger.crash()
        error = await running.failure()
    assert error.child == "root/bank"
    inner = error.__cause__
    assert isinstance(inner, SupervisorError)
    assert inner.child == "root/bank/ledger"
    assert isinstance(inner.__cause__, Boom)


async def test_a_supervisor_cannot_appear_twice_in_a_running_tree(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    shared = Supervisor([a.spec()], name="shared")
    root = Supervisor([shared, Supervisor([shared], name="again")])
    with pytest.raises(SupervisorError, match="could not start child 'root/again'") as info:
        with trio.fail_after(DEADLOCK):
            await root.run(trio.Event())
    cause = info.value.__cause__
    assert isinstance(cause, SupervisorError)
    assert isinstance(cause.__cause__, ConfigurationError)
    assert "already running" in str(cause.__cause__)


# -- backoff --------------------------------------------------------------------------------


async def test_backoff_delays_grow_per_consecutive_restart(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="actors")
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    backoff = Backoff(min=1.0, max=4.0, jitter=0.0, reset_after=100.0)
    supervisor = Supervisor([a.spec()], max_restarts=100, within=1.0, backoff=backoff)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        delays = [await a.crash_and_wait() for _ in range(4)]
        assert delays == pytest.approx([1.0, 2.0, 4.0, 4.0])
        await running.shutdown()
    # The log counts the restarts (it said "attempt 0" for every message-tied one).
    restarts = [r.getMessage() for r in caplog.records if "restarting" in r.getMessage()]
    assert [line.split(", restart ")[1].split(")")[0] for line in restarts] == list("1234")


async def test_backoff_resets_after_a_quiet_period(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    backoff = Backoff(min=1.0, max=8.0, jitter=0.0, reset_after=30.0)
    supervisor = Supervisor([a.spec()], max_restarts=100, within=1.0, backoff=backoff)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        assert await a.crash_and_wait(quiet=1.0) == pytest.approx(1.0)
        assert await a.crash_and_wait(quiet=1.0) == pytest.approx(2.0)
        assert await a.crash_and_wait(quiet=1.0) == pytest.approx(4.0)
        # It ran 30 s without crashing: counting starts over.
        assert await a.crash_and_wait(quiet=30.0) == pytest.approx(1.0)
        # 29 s is not quiet enough: the count goes on.
        assert await a.crash_and_wait(quiet=29.0) == pytest.approx(2.0)
        await running.shutdown()


async def test_no_backoff_restarts_immediately(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([a.spec()], backoff=None))
        before = trio.current_time()
        a.crash()
        await wait_all_tasks_blocked()
        assert a.incarnations == 2
        assert a.up_times[-1] == before
        await running.shutdown()


async def test_child_is_restarting_during_the_backoff_and_stop_ends_the_wait(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    backoff = Backoff(min=60.0, max=60.0, jitter=0.0)
    supervisor = Supervisor([a.spec()], backoff=backoff)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        a.crash()
        await trio.sleep(1.0)
        assert supervisor.tree().children[0].state is ChildState.RESTARTING
        before = trio.current_time()
        await running.shutdown()
        assert trio.current_time() == before
    assert a.incarnations == 1
    assert supervisor.tree().children[0].state is ChildState.STOPPED


# -- tree() and logging ---------------------------------------------------------------------


async def test_tree_reports_kinds_paths_states_and_restarts(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    a, b = workers(events, "a", "b")
    ledgers = [Worker(f"ledger-{i}", events).spec() for i in range(2)]
    bank = Supervisor([ledgers, b.spec()], name="bank", backoff=None)
    root = Supervisor([a.spec(), bank], backoff=None)
    stopped = ChildState.STOPPED
    assert root.tree() == ChildInfo(
        "root", "root", "supervisor", stopped, 0,
        (
            ChildInfo("a", "root/a", "worker", stopped, 0),
            ChildInfo("bank", "root/bank", "supervisor", stopped, 0, (
                ChildInfo("ledger-0", "root/bank/ledger-0", "worker", stopped, 0),
                ChildInfo("ledger-1", "root/bank/ledger-1", "worker", stopped, 0),
                ChildInfo("b", "root/bank/b", "worker", stopped, 0),
            )),
        ),
    )  # fmt: skip
    async with trio.open_nursery() as nursery:
        running = await start(nursery, root)
        b.crash()
        await wait_all_tasks_blocked()
        tree = root.tree()
        assert tree.state is ChildState.RUNNING
        assert {node.path: (node.state, node.restarts) for node in _walk(tree)} == {
            "root": (ChildState.RUNNING, 0),
            "root/a": (ChildState.RUNNING, 0),
            "root/bank": (ChildState.RUNNING, 0),
            "root/bank/ledger-0": (ChildState.RUNNING, 0),
            "root/bank/ledger-1": (ChildState.RUNNING, 0),
            "root/bank/b": (ChildState.RUNNING, 1),
        }
        assert bank.tree().path == "root/bank"
        await running.shutdown()
    assert {node.state for node in _walk(root.tree())} == {ChildState.STOPPED}


def _walk(node: ChildInfo) -> list[ChildInfo]:
    return [node, *(n for child in node.children for n in _walk(child))]


async def test_children_know_their_path(autojump_clock: MockClock) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "ledger-2")
    root = Supervisor([Supervisor([a.spec()], name="bank")])
    async with trio.open_nursery() as nursery:
        running = await start(nursery, root)
        assert current_child_path() is None  # it does not leak into the caller
        await running.shutdown()
    assert a.paths == ["root/bank/ledger-2"]


async def test_every_event_is_logged_with_its_path(
    caplog: pytest.LogCaptureFixture, autojump_clock: MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="actors.supervision")
    events: list[tuple[str, str]] = []
    (ledger,) = workers(events, "ledger-2")
    bank = Supervisor([ledger.spec()], name="bank", max_restarts=1, backoff=Backoff(jitter=0))
    async with trio.open_nursery() as nursery:
        running = await start(nursery, Supervisor([bank], backoff=None, max_restarts=0))
        ledger.crash()
        await trio.sleep(1.0)
        ledger.crash()
        await running.failure()
    seen = [(r.event, r.path) for r in caplog.records]  # type: ignore[attr-defined]
    assert seen == [
        ("start", "root/bank/ledger-2"),
        ("start", "root/bank"),
        ("crash", "root/bank/ledger-2"),
        ("restart", "root/bank/ledger-2"),
        ("start", "root/bank/ledger-2"),
        ("crash", "root/bank/ledger-2"),
        ("escalate", "root/bank"),
        ("crash", "root/bank"),
        ("escalate", "root"),
    ]
    crash = caplog.records[2]
    assert crash.levelno == logging.ERROR
    assert crash.exc_info is not None
    assert "root/bank/ledger-2 crashed" in crash.getMessage()
    restart = caplog.records[3]
    assert (restart.attempt, restart.delay) == (1, 0.1)  # type: ignore[attr-defined]
    escalate = caplog.records[6]
    assert (escalate.child, escalate.restarts) == ("root/bank/ledger-2", 1)  # type: ignore[attr-defined]


async def test_rollback_and_kill_are_logged(
    caplog: pytest.LogCaptureFixture, autojump_clock: MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="actors.supervision")
    events: list[tuple[str, str]] = []
    slow = Worker("slow", events, finish=10.0, shutdown=1.0)
    broken = Worker("broken", events, start_failures=1)
    with pytest.raises(SupervisorError):
        with trio.fail_after(DEADLOCK):
            await Supervisor([slow.spec(), broken.spec()]).run(trio.Event())
    seen = [(r.event, r.path) for r in caplog.records]  # type: ignore[attr-defined]
    assert seen == [
        ("start", "root/slow"),
        ("start_failed", "root/broken"),
        ("rollback", "root"),
        ("kill", "root/slow"),
        ("stop", "root/slow"),
    ]


# -- configuration --------------------------------------------------------------------------


async def _noop(
    stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    task_status.started()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "one_for_some"}, "strategy must be one of"),
        ({"restart": "sometimes"}, "restart must be one of"),
        ({"max_restarts": -1}, "max_restarts must be an int >= 0"),
        ({"max_restarts": 1.5}, "max_restarts must be an int >= 0"),
        ({"within": 0}, "within must be > 0"),
        ({"within": -1.0}, "within must be > 0"),
        ({"within": math.nan}, "within must be a number"),
        ({"shutdown": -1}, "shutdown must be >= 0"),
        ({"name": ""}, "supervisor name must be a non-empty string"),
        ({"name": "a/b"}, "must not contain '/'"),
        ({"backoff": 1.0}, "backoff must be a Backoff or None"),
        ({"children": ChildSpec("a", _noop)}, "children must be an iterable"),
        ({"children": ["a"]}, "children must be an iterable"),
        ({"children": [ChildSpec("a", _noop), [ChildSpec("a", _noop)]]}, "two children named 'a'"),
    ],
)
def test_bad_supervisor_arguments_raise_configuration_error(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Supervisor(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "child name must be a non-empty string"),
        ({"name": "x/y"}, "must not contain '/'"),
        ({"run": "not callable"}, "child run must be an async callable"),
        ({"restart": "forever"}, "restart must be one of"),
        ({"shutdown": -0.5}, "shutdown must be >= 0"),
        ({"shutdown": True}, "shutdown must be a number"),
    ],
)
def test_bad_child_specs_raise_configuration_error(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"name": "ok", "run": _noop, **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        ChildSpec(**arguments)  # type: ignore[arg-type]


def test_children_lists_are_flattened_and_supervisors_become_specs() -> None:
    inner = Supervisor(name="inner", restart="transient", shutdown=3.0)
    group = [ChildSpec(f"w-{i}", _noop) for i in range(3)]
    supervisor = Supervisor([group, inner, ChildSpec("last", _noop)])
    assert [spec.name for spec in supervisor.children] == ["w-0", "w-1", "w-2", "inner", "last"]
    assert supervisor.children[3] == inner.spec()
    assert (inner.spec().restart, inner.spec().shutdown) == ("transient", 3.0)
    assert Supervisor().spec().shutdown == math.inf


# -- crashes a child marks: a message's fault, stop, escalate --------------------------------


def marked(directive: ExitDirective) -> Boom:
    error = Boom(f"marked {directive}")
    direct(error, directive)
    return error


async def test_a_crash_caused_by_a_message_restarts_at_once_and_leaves_the_backoff(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    (a,) = workers(events, "a")
    backoff = Backoff(min=1.0, max=8.0, jitter=0.0, reset_after=100.0)
    supervisor = Supervisor([a.spec()], max_restarts=100, within=1.0, backoff=backoff)
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        assert await a.crash_and_wait() == pytest.approx(1.0)  # a plain crash: backoff
        for _ in range(3):  # the message's fault: at once, and the backoff does not grow
            crashed_at = trio.current_time()
            up = a.next_up
            a.crash(marked("restart"))
            with trio.fail_after(DEADLOCK):
                await up.wait()
            assert a.up_times[-1] == crashed_at
        assert await a.crash_and_wait() == pytest.approx(2.0)  # the next plain crash
        await running.shutdown()


@pytest.mark.parametrize("restart", ["permanent", "transient"])
async def test_a_child_that_says_stop_is_not_restarted_whatever_its_restart_type(
    autojump_clock: MockClock, restart: Restart
) -> None:
    events: list[tuple[str, str]] = []
    a, b = workers(events, "a", "b", restart=restart)
    supervisor = Supervisor(
        [a.spec(), b.spec()], strategy="one_for_all", max_restarts=1, within=100.0
    )
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        a.crash(marked("stop"))
        await trio.sleep(60)
        assert (a.incarnations, b.incarnations) == (1, 1)  # b was not touched either
        states = [(c.name, c.state, c.restarts) for c in supervisor.tree().children]
        assert states == [("a", ChildState.STOPPED, 0), ("b", ChildState.RUNNING, 0)]
        # It counted toward the intensity: with max_restarts=1, one more is too many.
        b.crash()
        error = await running.failure()
    assert error.child == "root/b" and isinstance(error.__cause__, Boom)


async def test_a_child_that_escalates_fails_its_supervisor_at_once(
    autojump_clock: MockClock,
) -> None:
    events: list[tuple[str, str]] = []
    first, flaky = workers(events, "first", "flaky", restart="temporary")
    supervisor = Supervisor([first.spec(), flaky.spec()], max_restarts=100, name="bank")
    async with trio.open_nursery() as nursery:
        running = await start(nursery, supervisor)
        flaky.crash(marked("escalate"))
        error = await running.failure()
    assert flaky.incarnations == 1
    assert error.child == "bank/flaky"
    assert str(error.__cause__) == "marked escalate"
    assert "escalated" in str(error)
    assert only(events, "stopped") == ["first"]
    assert supervisor.tree().state is ChildState.FAILED
