"""Supervision end to end on Redis: a poison message is retried (or restarts its actor,
when ``on_error`` says so), lands in dead letters after max_deliveries, and nothing else
is lost or handled twice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest
import trio

from actors import Actor, ActorSystem, Supervisor, list_mailbox, stream_mailbox
from actors._actor import Directive


@attrs.frozen
class Work:
    id: int
    poison: bool = False


def make_system(
    url: str, kind: str, directive: Directive
) -> tuple[ActorSystem, list[int], list[int]]:
    handled: list[int] = []
    attempts_of_poison: list[int] = []

    class Worker(Actor):
        mailbox = list_mailbox(f"work-{kind}") if kind == "list" else stream_mailbox(f"work-{kind}")
        max_deliveries = 3
        batch_size = 10
        on_error = {ValueError: directive}

        async def receive(self, work: Work) -> None:
            if work.poison:
                attempts_of_poison.append(self.context.message.attempt)
                raise ValueError(f"poison {work.id}")
            handled.append(work.id)

    system = ActorSystem(url, node=f"test-{kind}")
    system.supervise(Supervisor([Worker.spec(instances=2)], max_restarts=5, within=10.0))
    return system, handled, attempts_of_poison


@pytest.mark.parametrize("directive", ["retry", "restart"])
@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_poison_message_on_redis(redis_url: str, kind: str, directive: Directive) -> None:
    system, handled, poison_attempts = make_system(redis_url, kind, directive)
    messages = [Work(i, poison=(i == 25)) for i in range(100)]
    async with system:
        await system.tell_many(f"{kind}:work-{kind}", messages)
        with trio.fail_after(20):
            while len(handled) < 99 or not await system.dead_letters(f"{kind}:work-{kind}"):
                await trio.sleep(0.05)
        await trio.sleep(0.3)  # anything handled twice would show up now
        dead = await system.dead_letters(f"{kind}:work-{kind}")
        tree = system.tree()
        stats = await system.transport.mailbox_stats(system.resolve(f"{kind}:work-{kind}"))
    assert sorted(handled) == [i for i in range(100) if i != 25]  # none lost, none twice
    assert poison_attempts == [1, 2, 3]
    assert len(dead) == 1
    assert dead[0].attempts == 3
    assert dead[0].failure.error_type == "ValueError"
    assert dead[0].failure.error == "poison 25"
    assert "raise ValueError" in dead[0].failure.traceback
    # A retry never restarts; a restart does, but the 3rd failure dead-letters instead.
    restarts = 0 if directive == "retry" else 2
    assert sum(child.restarts for child in tree.children) == restarts
    assert (stats.depth, stats.pending, stats.dead) == (0, 0, 1)


ALWAYS_CRASHES = textwrap.dedent(
    """
    from actors import Actor, ActorSystem, Backoff, Supervisor, list_mailbox

    system = ActorSystem()

    class Doomed(Actor):
        mailbox = list_mailbox("doomed")
        on_error = {RuntimeError: "restart"}  # the default, "retry", would not crash

        async def receive(self, n: int) -> None:
            raise RuntimeError("disk on fire")

    @system.actor(list="bystander")
    async def bystander(n: int) -> None:
        pass

    system.supervise(
        Supervisor(
            [Doomed.spec()], name="fragile", max_restarts=2, within=30.0,
            backoff=Backoff(min=0.01, max=0.02),
        )
    )
    """
)


def test_root_failure_exits_non_zero_and_says_why(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "doomed.py"
    path.write_text(ALWAYS_CRASHES)
    import redis

    from actors._codec import encode

    client = redis.Redis.from_url(redis_url)
    # Distinct messages, more than max_restarts: each crashes the actor once.
    client.rpush("doomed", *[encode(n) for n in range(10)])
    client.close()
    result = subprocess.run(
        [sys.executable, "-m", "actors", "run", str(path), "--url", redis_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "fragile/doomed-0" in result.stderr
    assert "disk on fire" in result.stderr
    assert "restart intensity" in result.stderr or "gave up" in result.stderr
    assert "actor system stopped" in result.stderr  # a clean shutdown first
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:"), last
