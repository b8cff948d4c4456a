"""Chaos: a cluster master dies under load; its replica takes over; the actors carry on.

An actor system consumes a stream mailbox and a list mailbox whose keys live on one
master, while two tasks send steadily. The master is SIGKILLed; with
``--cluster-node-timeout 1000`` its replica is promoted within a few seconds. Every
message whose send returned (acknowledged by the store) must be handled; sends that
failed mid-flight may or may not have been stored and are not counted. The measured
times are printed (``pytest -s``).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
import trio

from actors import ActorSystem, TransportError, list_mailbox, stream_mailbox
from transports.testing import LocalCluster

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

SEND_INTERVAL = 0.005


@attrs.define
class Load:
    """What was sent (and acknowledged) and handled, with trio timestamps."""

    sent: dict[str, dict[int, float]] = attrs.Factory(dict)
    failed_sends: int = 0
    handled: dict[str, dict[int, float]] = attrs.Factory(dict)

    def missing(self) -> dict[str, set[int]]:
        """Acknowledged messages not handled yet, by mailbox."""
        return {
            name: set(sent) - set(self.handled.get(name, {})) for name, sent in self.sent.items()
        }

    def recovery(self, since: float) -> float:
        """Seconds from ``since`` until a message sent after it was handled, in every mailbox."""
        worst = 0.0
        for name, sent in self.sent.items():
            handled_after = [
                self.handled[name][n]
                for n, at in sent.items()
                if at > since and n in self.handled.get(name, {})
            ]
            assert handled_after, f"nothing sent to {name} after the kill was handled"
            worst = max(worst, min(handled_after) - since)
        return worst


def actor_system_under_load(url: str, stream: str, listed: str, load: Load) -> ActorSystem:
    """A system with function actors on ``stream`` and ``listed``, recording into ``load``."""
    system = ActorSystem(url)
    for name in (stream, listed):
        load.sent[name] = {}
        load.handled[name] = {}

    @system.actor(mailbox=stream_mailbox(stream, lease=2.0))
    async def on_stream(number: int) -> None:
        load.handled[stream].setdefault(number, trio.current_time())

    @system.actor(mailbox=list_mailbox(listed, lease=2.0))
    async def on_list(number: int) -> None:
        load.handled[listed].setdefault(number, trio.current_time())

    return system


async def send_steadily(system: ActorSystem, name: str, load: Load, stop: trio.Event) -> None:
    """Tell ``name`` 0, 1, 2... every few ms until ``stop``; record what the store acknowledged."""
    number = 0
    while not stop.is_set():
        try:
            await system.tell(name, number)
        except TransportError:
            load.failed_sends += 1
        else:
            load.sent[name][number] = trio.current_time()
        number += 1
        await trio.sleep(SEND_INTERVAL)


async def run_through_failover(
    system: ActorSystem,
    load: Load,
    kill: Callable[[], object],
    wait_for_failover: Callable[[], float],
) -> tuple[float, float]:
    """Send, kill, keep sending; wait until every acknowledged message was handled.

    Returns (seconds until the store failed over, seconds until both actors handled
    messages sent after the kill), both from the kill.
    """
    stop = trio.Event()
    async with system, trio.open_nursery() as nursery:
        for name in load.sent:
            nursery.start_soon(send_steadily, system, name, load, stop)
        await trio.sleep(1.0)
        killed_at = trio.current_time()
        await trio.to_thread.run_sync(kill)
        failover = await trio.to_thread.run_sync(wait_for_failover)
        await trio.sleep(2.0)
        stop.set()
        with trio.move_on_after(30):
            while any(load.missing().values()):
                await trio.sleep(0.1)
        assert not any(load.missing().values()), f"acknowledged but never handled: {load.missing()}"
        recovery = load.recovery(killed_at)
    return failover, recovery


def names_on(cluster: LocalCluster, master: object, prefix: str) -> str:
    """A fresh mailbox name whose slot ``master`` serves."""
    for index in range(10_000):
        name = f"{prefix}-{index}"
        if cluster.master_of(name) is master:
            return name
    raise LookupError("no name found")  # pragma: no cover


async def test_actors_carry_on_when_their_master_fails_over(redis_cluster: LocalCluster) -> None:
    victim = redis_cluster.masters()[0]
    stream = names_on(redis_cluster, victim, "failover-stream")
    listed = names_on(redis_cluster, victim, "failover-list")
    load = Load()
    system = actor_system_under_load(redis_cluster.url, stream, listed, load)
    try:
        failover, recovery = await run_through_failover(
            system,
            load,
            lambda: redis_cluster.kill(victim),
            lambda: redis_cluster.wait_for_failover(stream, victim),
        )
    finally:
        await trio.to_thread.run_sync(redis_cluster.restart, victim)
    total = sum(len(sent) for sent in load.sent.values())
    print(
        f"\ncluster failover: promoted after {failover:.2f}s, actors handling new messages "
        f"after {recovery:.2f}s; {total} acknowledged sends all handled, "
        f"{load.failed_sends} sends failed mid-flight"
    )
    assert total > 200
