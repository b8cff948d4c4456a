"""`python -m actors status` and `dead-letters list|replay` against a running system."""

from __future__ import annotations

import json
import subprocess
import sys

import attrs
import trio

from actors import Actor, ActorSystem, Reject, list_mailbox, stream_mailbox


@attrs.frozen
class Order:
    id: int


class Orders(Actor):
    mailbox = stream_mailbox("orders", group="billing")

    async def receive(self, order: Order) -> None:
        if order.id < 0:
            raise Reject("negative id")


class Jobs(Actor):
    mailbox = list_mailbox("jobs")
    done = trio.Event()

    async def receive(self, n: int) -> None:
        await self.done.wait()  # holds its message: it stays pending


async def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "actors", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


async def test_status_and_dead_letters(redis_url: str) -> None:
    system = ActorSystem(redis_url, node="node-a")
    system.actor(Orders)
    system.actor(Jobs)
    async with system:
        await system.tell_many(Orders, [Order(1), Order(-1), Order(-2)])
        await system.tell_many(Jobs, [1, 2, 3])
        with trio.fail_after(10):
            while len(await system.dead_letters(Orders)) < 2:
                await trio.sleep(0.05)

        result = await cli("status", "--url", redis_url, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert [n["node"] for n in report["nodes"]] == ["node-a"]
        assert report["nodes"][0]["actors"] == ["jobs", "orders"]
        boxes = {m["mailbox"]: m for m in report["mailboxes"]}
        assert boxes["stream:orders (billing)"] == {
            "mailbox": "stream:orders (billing)",
            "depth": 0,
            "pending": 0,
            "dead": 2,
        }
        # One job is being handled; the rest of its batch was fetched with it.
        assert boxes["list:jobs"]["depth"] + boxes["list:jobs"]["pending"] == 3
        assert boxes["list:jobs"]["pending"] >= 1

        table = await cli("status", "--url", redis_url)
        assert table.returncode == 0
        text = table.stdout.decode()
        assert "1 live node(s)" in text
        assert "NODE" in text and "node-a" in text and "stream:orders (billing)" in text

        listing = await cli("dead-letters", "list", "stream:orders", "--url", redis_url)
        assert listing.returncode == 0
        assert "2 dead letter(s) in stream:orders" in listing.stdout.decode()
        assert "rejected: negative id" in listing.stdout.decode()
        first = (await system.dead_letters(Orders))[0].id
        replay = await cli(
            "dead-letters", "replay", "stream:orders", "--id", first, "--url", redis_url
        )
        assert replay.returncode == 0
        assert "replayed 1 dead letter(s) into stream:orders" in replay.stdout.decode()
        with trio.fail_after(10):
            while True:  # replayed, rejected again: dead once more, as a new letter
                letters = await system.dead_letters(Orders)
                if len(letters) == 2 and first not in {d.id for d in letters}:
                    break
                await trio.sleep(0.05)
        Jobs.done.set()


async def test_status_with_no_nodes(redis_url: str) -> None:
    result = await cli("status", "--url", redis_url)
    assert result.returncode == 0
    assert "0 live node(s)" in result.stdout.decode()
