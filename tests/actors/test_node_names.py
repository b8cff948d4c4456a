"""Node names: one live process per name, since consumer names derive from it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import redis
import trio
import trio.lowlevel

from actors import ActorSystem, BrokenConnectionError, ConfigurationError
from actors._node import _CLAIM_GRACE, HEARTBEAT, process_instance
from tests.conftest import wait_for
from transports import NodeInfo
from transports._memory._consumer import MemoryConsumer
from transports.memory import MemoryTransport

NODES = "{actors:nodes}"


def _system(transport: MemoryTransport, instance: str | None = None) -> ActorSystem:
    system = ActorSystem(transport=transport, node="shared")

    @system.actor(list="jobs")
    async def work(n: int) -> None:
        pass

    if instance is not None:
        system.lifecycle.instance = instance  # another process, as far as the store can tell
    return system


async def _holders(transport: MemoryTransport) -> list[tuple[str, str]]:
    return [(node.node, node.instance) for node in await transport.nodes()]


async def test_a_name_held_by_a_live_process_is_refused(autojump_clock: Any) -> None:
    async with MemoryTransport() as transport:
        first = _system(transport)
        async with first:
            started = trio.current_time()
            with pytest.raises(ConfigurationError, match=r"'shared' is in use by another live"):
                async with _system(transport, instance="other-process"):
                    pytest.fail("a second process ran under the same node name")
            # It waited for the holder's next heartbeat, which showed it alive.
            assert trio.current_time() - started <= HEARTBEAT + 1
            assert await _holders(transport) == [("shared", process_instance())]
        assert await _holders(transport) == []


async def test_the_name_of_a_killed_process_is_taken_over_after_a_heartbeat(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "actors.system")
    async with MemoryTransport() as transport:
        # A process that was killed: its record lives on for three heartbeats.
        info = {"pid": 4321, "host": "elsewhere"}
        await transport.announce("shared", info, 3 * HEARTBEAT, instance="killed")
        started = trio.current_time()
        system = _system(transport)
        async with system:
            waited = trio.current_time() - started
            assert await _holders(transport) == [("shared", process_instance())]
        # It waited for one heartbeat and its grace, not for the record to expire.
        assert HEARTBEAT <= waited <= HEARTBEAT + _CLAIM_GRACE + 1
        assert "'shared' is held by pid 4321 on elsewhere: waiting" in caplog.text
        assert "'shared' taken over from pid 4321 on elsewhere" in caplog.text


async def test_a_name_withdrawn_during_the_wait_is_taken_at_once(autojump_clock: Any) -> None:
    async with MemoryTransport() as transport:
        await transport.announce("shared", {}, 3 * HEARTBEAT, instance="stopping")
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            # The holder is stopping: it withdraws its record a second later.
            nursery.start_soon(_withdraw_later, transport, "stopping", 1.0)
            async with _system(transport):
                waited = trio.current_time() - started
        assert 1.0 <= waited <= 1.0 + 1


async def test_a_holder_that_heartbeats_at_the_last_moment_keeps_its_name(
    autojump_clock: Any,
) -> None:
    async with MemoryTransport() as transport:
        await transport.announce("shared", {}, 3 * HEARTBEAT, instance="slow")
        refresh_at = HEARTBEAT + _CLAIM_GRACE - 0.1  # after the claimer's last look

        async def heartbeat_late() -> None:
            await trio.sleep(refresh_at)
            await transport.announce("shared", {"n": 2}, 3 * HEARTBEAT, instance="slow")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat_late)
            with pytest.raises(ConfigurationError, match="in use by another live process"):
                await _start(_system(transport))
        assert await _holders(transport) == [("shared", "slow")]


async def test_a_stop_while_waiting_for_the_name_ends_the_wait(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "actors.system")
    async with MemoryTransport() as transport:
        await transport.announce("shared", {}, 3 * HEARTBEAT, instance="killed")
        system = _system(transport)
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(system.run)
            await trio.sleep(1.0)
            system.stop()
        assert trio.current_time() - started < 1.5  # not the 7 s a claim may take
        assert await _holders(transport) == [("shared", "killed")]  # nothing taken over
        assert "stopped while waiting for the node name 'shared'" in caplog.text
        assert "actor system running" not in caplog.text  # no actor started


async def _start(system: ActorSystem) -> None:
    async with system:
        pytest.fail("started under a name another live process holds")


async def _withdraw_later(transport: MemoryTransport, instance: str, delay: float) -> None:
    await trio.sleep(delay)
    await transport.announce("shared", None, 0, instance=instance)


async def test_a_system_whose_name_was_taken_while_its_heartbeat_lapsed_stops(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    abandoned: list[str] = []
    monkeypatch.setattr(MemoryConsumer, "abandon", lambda self: abandoned.append(self.name))
    async with MemoryTransport() as transport:
        async with _system(transport):
            pass
        assert abandoned == []  # a system that stops keeps its name to the end
        system = _system(transport)

        async def lose_the_name() -> None:
            async with system:
                # Its record expired (say the store was out of reach) and another took it.
                await transport.announce("shared", None, 0, instance=process_instance())
                await transport.announce("shared", {}, 60, instance="usurper")
                await trio.sleep(2 * HEARTBEAT)
                pytest.fail("the system kept running under a name another process holds")

        with pytest.raises(ConfigurationError, match=r"'shared' was taken by another process"):
            await lose_the_name()
        # Its consumer gave the name up: closing handed nothing of the usurper's back.
        assert abandoned == ["shared/work-0"]
        # Stopping did not withdraw the usurper's record.
        assert await _holders(transport) == [("shared", "usurper")]


class _Outage(MemoryTransport):
    """A memory store whose node registry can be out of reach."""

    down = False

    async def announce(self, *args: Any, **kwargs: Any) -> NodeInfo | None:
        if self.down:
            await trio.lowlevel.checkpoint()
            raise BrokenConnectionError("the store is out of reach")
        return await super().announce(*args, **kwargs)


async def test_a_failed_heartbeat_is_tried_again_within_a_second(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "actors.system")
    async with _Outage() as transport, _system(transport):
        transport.down = True
        await trio.sleep(3 * HEARTBEAT)  # the record expired meanwhile
        assert await transport.nodes() == []
        transport.down = False
        await trio.sleep(1.5)  # a retry every second: one lands within this
        assert await _holders(transport) == [("shared", process_instance())]
    warnings = [r for r in caplog.records if "heartbeat of node 'shared' failed" in r.message]
    assert len(warnings) == 1  # once per outage, not once per try
    assert "heartbeat of node 'shared' restored" in caplog.text


SYSTEM = textwrap.dedent(
    """
    import os
    from actors import ActorSystem

    system = ActorSystem(node=os.environ["NODE"])

    @system.actor(list="jobs")
    async def work(n: int) -> None:
        pass
    """
)


def _seen_at(db: redis.Redis, node: str) -> float | None:
    raw = db.hget(NODES, node)
    return None if raw is None else float(json.loads(raw)["seen_at"])


def test_two_processes_under_one_node_name(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "named.py"
    path.write_text(SYSTEM)
    env = {**os.environ, "ACTORS_URL": redis_url, "NODE": "twin"}
    command = [sys.executable, "-m", "actors", "run", str(path)]
    db = redis.Redis.from_url(redis_url)
    first = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _seen_at(db, "twin") is not None, timeout=20)
        claimed = _seen_at(db, "twin")
        # Start the second right after a heartbeat of the first: the next one falls
        # well inside the second's wait, however slow this machine is.
        wait_for(lambda: _seen_at(db, "twin") != claimed, timeout=20)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        assert second.returncode == 2
        assert f"node name 'twin' is in use by another live process (pid {first.pid}" in (
            second.stderr
        )
        assert first.poll() is None  # the first one runs on
        first.terminate()
        assert first.wait(timeout=20) == 0
        # It withdrew its name on the way out: the next process starts at once.
        third = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: db.hexists(NODES, "twin"), timeout=20)
        finally:
            third.terminate()
            _, errors = third.communicate(timeout=20)
        assert "waiting" not in errors
        assert third.returncode == 0
    finally:
        first.kill()
        first.wait()
        db.close()


FORKED = textwrap.dedent(
    """
    import multiprocessing, os, sys
    import trio
    from actors import ActorSystem

    system = ActorSystem(os.environ["ACTORS_URL"])  # built once, run by each fork

    @system.actor(list="forked-echo")
    async def echo(n: int) -> int:
        return n

    def child(n: int, results: "multiprocessing.Queue[tuple[str, int]]") -> None:
        async def main() -> None:
            async with system:
                results.put((system.node, await system.ask("forked-echo", n, timeout=20)))
        trio.run(main)

    if __name__ == "__main__":
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        children = [context.Process(target=child, args=(n, results)) for n in (1, 2)]
        for process in children:
            process.start()
        got = sorted((results.get(timeout=60) for _ in children), key=lambda r: r[1])
        for process in children:
            process.join(timeout=30)
        print(got[0][0] != got[1][0], [n for _, n in got], [p.exitcode for p in children])
    """
)


def test_each_fork_of_a_built_system_runs_under_its_own_name(
    tmp_path: Path, redis_url: str
) -> None:
    # As a web server that imports the app, then forks its workers, runs it.
    path = tmp_path / "forked.py"
    path.write_text(FORKED)
    env = {**os.environ, "ACTORS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.stdout.split("\n")[0] == "True [1, 2] [0, 0]", done.stderr
