"""Keyed (virtual) actors on the memory transport (issue 16 item 1): one activation
per key, activated on first message, passivated when idle or too many, per-key
order, partitions spread over owners and handed over as owners come and go."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, ClassVar

import attrs
import pytest
import trio
import trio.testing

from actors import (
    ActorSystem,
    BrokenConnectionError,
    ConfigurationError,
    KeyedActor,
    Supervisor,
    handler,
    stream_mailbox,
)
from actors.testing import RecordingTransport, run_test_system
from transports import PartitionLeases
from transports.memory import MemoryStore, MemoryTransport


@attrs.frozen
class Deposit:
    amount: int


@attrs.frozen
class Step:
    account: str
    seq: int


@attrs.frozen
class GetBalance:
    pass


class Account(KeyedActor):
    """A bank account per key; records what happens to the class (reset per test)."""

    partitions = 8
    idle_timeout = 60.0
    lease = 2.0

    started: ClassVar[list[str]] = []
    stopped: ClassVar[list[str]] = []
    handled: ClassVar[dict[str, list[int]]] = defaultdict(list)
    active: ClassVar[Counter[str]] = Counter()
    overlaps: ClassVar[list[str]] = []
    pause: ClassVar[float] = 0.0
    systems: ClassVar[set[int]] = set()  # the system messengers (one per run) that handled

    def __init__(self) -> None:
        self.balance = 0

    async def on_start(self) -> None:
        Account.started.append(self.key)

    async def on_stop(self) -> None:
        Account.stopped.append(self.key)

    @classmethod
    def key_of(cls, msg: Any) -> str:
        if isinstance(msg, Step):
            return msg.account
        return super().key_of(msg)

    @handler
    async def deposit(self, msg: Deposit) -> int:
        self.balance += msg.amount
        return self.balance

    @handler
    async def step(self, msg: Step) -> None:
        Account.active[self.key] += 1
        if Account.active[self.key] > 1:
            Account.overlaps.append(self.key)
        try:
            await trio.sleep(Account.pause)
            Account.handled[self.key].append(msg.seq)
            Account.systems.add(id(self.context.messenger.messenger))  # type: ignore[attr-defined]
        finally:
            Account.active[self.key] -= 1

    @handler
    async def get(self, msg: GetBalance) -> int:
        return self.balance


@pytest.fixture(autouse=True)
def _reset() -> None:
    Account.started = []
    Account.stopped = []
    Account.handled = defaultdict(list)
    Account.active = Counter()
    Account.overlaps = []
    Account.pause = 0.0
    Account.systems = set()
    Account.idle_timeout = 60.0
    Account.max_activations = 10_000


def new_system(instances: int = 2, node: str = "test") -> ActorSystem:
    system = ActorSystem("memory://", node=node)
    system.actor(Account, instances=instances)
    return system


async def test_one_activation_per_key_keeps_its_state(autojump_clock: Any) -> None:
    system = new_system()
    async with run_test_system(system):
        for key in ("alice", "bob"):
            await system.tell(Account, Deposit(10), key=key)
        assert await system.ask(Account, Deposit(5), key="alice") == 15
        assert await system.ask(Account, GetBalance(), key="bob") == 10
        assert await system.ask(Account, GetBalance(), key="carol") == 0
    assert sorted(Account.started) == ["alice", "bob", "carol"]
    # Stopping the system passivates every activation.
    assert sorted(Account.stopped) == ["alice", "bob", "carol"]


async def test_messages_go_to_the_partition_of_their_key(autojump_clock: Any) -> None:
    system = new_system()
    async with run_test_system(system) as probe:
        await system.tell(Account, Deposit(1), key="alice")
        await system.tell_many(Account, [Step("bob", 1), Step("bob", 2)])
        await probe.drain()
        by_box = Counter(str(box) for box, _ in probe.transport.sent if "account:p" in box.name)
    alice = Account.partition_mailbox(Account.partition_of("alice"))
    bob = Account.partition_mailbox(Account.partition_of("bob"))
    assert alice.name.startswith("account:p")
    assert by_box[str(alice)] >= 1 and by_box[str(bob)] >= 2
    assert Account.handled["bob"] == [1, 2]


async def test_key_of_reads_the_key_from_the_message(autojump_clock: Any) -> None:
    system = new_system()
    async with run_test_system(system) as probe:
        for seq in range(1, 6):
            await system.tell(Account, Step("zed", seq))
        await probe.drain()
    assert Account.handled["zed"] == [1, 2, 3, 4, 5]


async def test_a_key_is_needed_and_only_for_keyed_actors(autojump_clock: Any) -> None:
    system = new_system()

    @system.actor(list="plain")
    async def plain(msg: int) -> None:
        pass

    async with run_test_system(system):
        with pytest.raises(ConfigurationError, match="key="):
            await system.tell(Account, Deposit(1))
        with pytest.raises(ConfigurationError, match="not a keyed actor"):
            await system.tell("plain", 1, key="x")


async def test_an_idle_activation_is_passivated_and_comes_back_fresh(
    autojump_clock: Any,
) -> None:
    Account.idle_timeout = 30.0
    system = new_system(instances=1)
    async with run_test_system(system):
        assert await system.ask(Account, Deposit(7), key="alice") == 7
        await trio.sleep(10)
        assert await system.ask(Account, Deposit(1), key="alice") == 8  # used: not idle
        assert Account.stopped == []
        await trio.sleep(31)
        assert Account.stopped == ["alice"]
        # A fresh activation: the state was in memory only.
        assert await system.ask(Account, GetBalance(), key="alice") == 0
    assert Account.started == ["alice", "alice"]


async def test_beyond_max_activations_the_least_recently_used_goes(
    autojump_clock: Any,
) -> None:
    Account.max_activations = 2
    Account.partitions = 1
    try:
        system = new_system(instances=1)
        async with run_test_system(system):
            for key in ("a", "b", "a", "c"):
                await system.ask(Account, Deposit(1), key=key)
            assert Account.stopped == ["b"]
    finally:
        Account.partitions = 8


async def test_a_key_is_handled_in_order_by_one_activation_across_systems(
    autojump_clock: Any,
) -> None:
    """Two systems (processes) share a store: the partitions are split between their
    owners; a third joins and one leaves while messages flow."""
    Account.pause = 0.01
    store = MemoryStore()
    keys = [f"k{i}" for i in range(20)]
    sent: dict[str, int] = Counter()

    async def send(system: ActorSystem, rounds: int) -> None:
        for _ in range(rounds):
            for key in keys:
                sent[key] += 1
                await system.tell(Account, Step(key, sent[key]))
            await trio.sleep(0.5)

    one, two, three = (new_system(node=name) for name in ("one", "two", "three"))
    async with (
        MemoryTransport(store) as t1,
        MemoryTransport(store) as t2,
        one.lifecycle.running(t1),
        two.lifecycle.running(t2),
    ):
        await send(one, 5)
        async with MemoryTransport(store) as t3, three.lifecycle.running(t3):
            await send(three, 5)
            leases = await t3.lease_partitions("account", "probe", 8, 0.001)
            assert leases.owners == 7  # six owners and the probe
        await send(two, 5)
        await trio.sleep(10)
    for key in keys:
        assert Account.handled[key] == list(range(1, sent[key] + 1)), key
    assert Account.overlaps == []
    assert len(Account.systems) == 3  # every system owned partitions in turn


class Strict(KeyedActor):
    """Restarts its partition on an error, so that a failed message comes back first."""

    partitions = 1
    on_error = {RuntimeError: "restart"}
    handled: ClassVar[list[int]] = []
    failed: ClassVar[set[int]] = set()

    async def receive(self, seq: int) -> None:
        if seq == 3 and seq not in Strict.failed:
            Strict.failed.add(seq)
            raise RuntimeError("once")
        Strict.handled.append(seq)


async def test_a_restart_directive_keeps_strict_order_through_a_failure(
    autojump_clock: Any,
) -> None:
    system = ActorSystem("memory://", node="test")
    system.actor(Strict)
    async with run_test_system(system) as probe:
        for seq in range(1, 8):
            await system.tell(Strict, seq, key="k")
        await probe.drain()
        await trio.sleep(5)
    assert Strict.failed == {3}
    assert Strict.handled == [1, 2, 3, 4, 5, 6, 7]


class FlakyLeases(RecordingTransport):
    """Lease calls fail (or hang, with ``hang``) while ``failing`` is set: a store the
    owner cannot reach."""

    failing = False
    hang = False

    async def lease_partitions(self, *args: Any, **kwargs: Any) -> PartitionLeases:
        if self.failing:
            if self.hang:
                await trio.sleep_forever()
            await trio.lowlevel.checkpoint()
            raise BrokenConnectionError("lease store unreachable")
        return await super().lease_partitions(*args, **kwargs)


@pytest.mark.parametrize("hang", [False, True], ids=["failing", "hanging"])
async def test_an_owner_stops_consuming_before_its_unrenewed_lease_expires(
    autojump_clock: Any, hang: bool
) -> None:
    system = new_system(instances=1)
    transport = FlakyLeases()
    transport.hang = hang
    async with system.lifecycle.running(transport):
        await system.tell(Account, Step("a", 1))
        await trio.testing.wait_all_tasks_blocked()
        assert Account.handled["a"] == [1]
        transport.failing = True
        # Stopped when half the lease is left without a renewal (settling what it
        # handled): a message sent then waits.
        await trio.sleep(Account.lease * 0.6)
        await system.tell(Account, Step("a", 2))
        await trio.sleep(Account.lease * 2)
        assert Account.handled["a"] == [1]
        assert sorted(Account.stopped) == ["a"]  # passivated with its partition
        transport.failing = False
        await trio.sleep(Account.lease)
        assert Account.handled["a"] == [1, 2]
    await transport.aclose()


class Bonus(KeyedActor):
    """Built with constructor arguments, like any actor's spec (issue 16 item 4)."""

    partitions = 2

    def __init__(self, bonus: int) -> None:
        self.bonus = bonus

    async def receive(self, amount: int) -> int:
        return amount + self.bonus


async def test_activations_are_built_with_the_specs_arguments(autojump_clock: Any) -> None:
    system = ActorSystem("memory://", node="test")
    system.supervise(Supervisor([Bonus.spec(instances=2, kwargs={"bonus": 5})]))
    async with run_test_system(system):
        assert await system.ask(Bonus, 1, key="a") == 6
        assert await system.ask(Bonus, 2, key="b") == 7


def test_a_keyed_actor_is_checked_when_declared() -> None:
    class Stream(KeyedActor):
        mailbox = stream_mailbox("ticks")

        async def receive(self, msg: int) -> None:
            pass

    class Nothing(KeyedActor):
        partitions = 0

        async def receive(self, msg: int) -> None:
            pass

    with pytest.raises(ConfigurationError, match="at-least-once list"):
        Stream.spec()
    with pytest.raises(ConfigurationError, match="partitions must be positive"):
        ActorSystem("memory://").actor(Nothing)
    # The default mailbox is a list named after the actor; partitions share its name.
    assert str(Account.mailbox) == "list:account"
    assert Account.partition_mailbox(3).name == "account:p3"
    assert Account.partition_of("alice") == Account.partition_of("alice") < Account.partitions


async def test_a_delayed_message_reaches_its_keys_activation(autojump_clock: Any) -> None:
    system = new_system(instances=1)
    async with run_test_system(system):
        await system.tell(Account, Deposit(5), key="alice", delay=30)
        await system.tell_many(Account, [Step("bob", 1), Step("bob", 2)], delay=30)
        await trio.sleep(10)
        assert await system.ask(Account, GetBalance(), key="alice") == 0
        assert Account.handled["bob"] == []
        await trio.sleep(30)
        assert await system.ask(Account, GetBalance(), key="alice") == 5
        assert Account.handled["bob"] == [1, 2]
