"""Node names: one live process per name, since consumer names derive from it."""

from __future__ import annotations

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
from conftest import wait_for

from actors import ActorSystem, ConfigurationError
from actors._node import _CLAIM_GRACE, HEARTBEAT
from transports.memory import MemoryTransport

NODES = "{actors:nodes}"


def _system(transport: MemoryTransport, instance: str | None = None) -> ActorSystem:
    system = ActorSystem(transport=transport, node="shared")

    @system.actor(list="jobs")
    async def work(n: int) -> None:
        pass

    if instance is not None:
        system._instance = instance  # another process, as far as the store can tell
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
            assert await _holders(transport) == [("shared", first._instance)]
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
            assert await _holders(transport) == [("shared", system._instance)]
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


async def _withdraw_later(transport: MemoryTransport, instance: str, delay: float) -> None:
    await trio.sleep(delay)
    await transport.announce("shared", None, 0, instance=instance)


async def test_a_system_whose_name_was_taken_while_its_heartbeat_lapsed_stops(
    autojump_clock: Any,
) -> None:
    async with MemoryTransport() as transport:
        system = _system(transport)

        async def lose_the_name() -> None:
            async with system:
                # Its record expired (say the store was out of reach) and another took it.
                await transport.announce("shared", None, 0, instance=system._instance)
                await transport.announce("shared", {}, 60, instance="usurper")
                await trio.sleep(2 * HEARTBEAT)
                pytest.fail("the system kept running under a name another process holds")

        with pytest.raises(ConfigurationError, match=r"'shared' was taken by another process"):
            await lose_the_name()
        # Stopping did not withdraw the usurper's record.
        assert await _holders(transport) == [("shared", "usurper")]


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


def test_two_processes_under_one_node_name(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "named.py"
    path.write_text(SYSTEM)
    env = {**os.environ, "ACTORS_URL": redis_url, "NODE": "twin"}
    command = [sys.executable, "-m", "actors", "run", str(path)]
    db = redis.Redis.from_url(redis_url)
    first = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: db.hexists(NODES, "twin"), timeout=20)
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
