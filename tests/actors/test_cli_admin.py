"""`python -m actors status` and `dead-letters list|replay` against a running system."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import attrs
import pytest
import trio

from actors import Actor, ActorSystem, Reject, list_mailbox, stream_mailbox
from transports import Delivery


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
        assert boxes["stream:orders"] == {
            "mailbox": "stream:orders",
            "group": "billing",
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
        assert "NODE" in text and "node-a" in text and "GROUP" in text and "billing" in text

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


# -- helpers seeding dead letters without a running system --------------------------------


async def bury(redis_url: str, address: str, payloads: list[bytes]) -> list[str]:
    """Send ``payloads`` to the mailbox ``address``, dead-letter each; return the letter ids."""
    from transports import Failure, MailboxSpec
    from transports.redis import RedisTransport

    spec = MailboxSpec.parse(address)
    async with RedisTransport.from_url(redis_url) as transport:
        async with transport.consumer(spec, "seeder") as consumer:
            await transport.send(spec, payloads)
            got: list[Delivery] = []
            with trio.fail_after(10):
                while len(got) < len(payloads):
                    got.extend(await consumer.fetch(len(payloads) - len(got)))
            for delivery in got:
                await consumer.dead_letter(delivery, Failure("poison", actor="seeder"))
        return [letter.id for letter in await transport.dead_letters(spec)]


def lines(data: bytes) -> list[str]:
    return data.decode().strip().splitlines()


# -- item 3: replay into pub/sub never loses a letter -------------------------------------


async def test_replay_into_a_channel_nobody_listens_to_keeps_the_letters(redis_url: str) -> None:
    ids = await bury(redis_url, "pubsub:news", [b"one", b"two"])
    assert len(ids) == 2
    replay = await cli("dead-letters", "replay", "pubsub:news", "--url", redis_url)
    assert replay.returncode == 1, replay
    [line] = lines(replay.stderr)
    assert "no subscriber" in line and "kept" in line and "pubsub:news" in line
    listing = await cli("dead-letters", "list", "pubsub:news", "--url", redis_url, "--json")
    assert [json.loads(row)["id"] for row in lines(listing.stdout)] == ids


async def test_replay_into_a_channel_with_a_subscriber_replays(redis_url: str) -> None:
    from transports import MailboxSpec
    from transports.redis import RedisTransport

    ids = await bury(redis_url, "pubsub:news", [b"one"])
    spec = MailboxSpec.parse("pubsub:news")
    async with RedisTransport.from_url(redis_url) as transport:
        async with transport.consumer(spec, "listener") as consumer:
            replay = await cli("dead-letters", "replay", "pubsub:news", "--url", redis_url)
            assert replay.returncode == 0, replay
            assert "replayed 1 dead letter(s) into pubsub:news" in replay.stdout.decode()
            with trio.fail_after(10):
                [delivery] = await consumer.fetch(5)
            assert delivery.payload == b"one"
        assert await transport.dead_letters(spec) == []
    assert ids


# -- item 11: dead-letters list / replay are subcommands with their own options -----------


async def test_replay_refuses_malformed_ids_before_touching_redis(redis_url: str) -> None:
    await bury(redis_url, "list:jobs", [b"1"])
    replay = await cli("dead-letters", "replay", "list:jobs", "--id", "bogus", "--url", redis_url)
    assert replay.returncode == 2, replay
    [line] = lines(replay.stderr)
    assert "bogus" in line
    assert "EVALSHA" not in line and "Traceback" not in line
    # Before touching Redis: an unreachable URL gives the same usage error.
    offline = await cli(
        "dead-letters", "replay", "list:jobs", "--id", "bogus", "--url", "redis://127.0.0.1:1"
    )
    assert offline.returncode == 2 and "bogus" in offline.stderr.decode()


async def test_replay_names_unknown_ids_and_replays_the_others(redis_url: str) -> None:
    first, second = await bury(redis_url, "list:jobs", [b"1", b"2"])
    replay = await cli(
        "dead-letters", "replay", "list:jobs", "--id", first, "99-0", "--url", redis_url
    )
    assert replay.returncode == 1, replay
    [line] = lines(replay.stderr)
    assert "99-0" in line and "not found" in line
    assert "replayed 1 dead letter(s) into list:jobs" in replay.stdout.decode()
    listing = await cli("dead-letters", "list", "list:jobs", "--url", redis_url, "--json")
    assert [json.loads(row)["id"] for row in lines(listing.stdout)] == [second]


async def test_replay_into_a_wrong_typed_key_keeps_the_letters(redis_url: str) -> None:
    from transports.redis import from_url

    ids = await bury(redis_url, "list:jobs", [b"1"])
    async with from_url(redis_url) as client:
        await client.hset("jobs", "not", "a list")
    replay = await cli("dead-letters", "replay", "list:jobs", "--url", redis_url)
    assert replay.returncode == 1, replay
    [line] = lines(replay.stderr)
    assert "WRONGTYPE" in line and "kept" in line and "EVALSHA" not in line
    listing = await cli("dead-letters", "list", "list:jobs", "--url", redis_url, "--json")
    assert [json.loads(row)["id"] for row in lines(listing.stdout)] == ids


async def test_replay_ids_repeated_or_listed_and_json(redis_url: str) -> None:
    ids = await bury(redis_url, "stream:orders", [b"1", b"2", b"3"])
    replay = await cli(
        "dead-letters", "replay", "stream:orders", "--id", ids[0], ids[1], "--id", ids[2],
        "--json", "--url", redis_url,
    )  # fmt: skip
    assert replay.returncode == 0, replay
    assert json.loads(replay.stdout) == {
        "mailbox": "stream:orders",
        "replayed": 3,
        "not_found": [],
        "kept": [],
    }


async def test_dead_letter_subcommands_refuse_options_they_do_not_take(redis_url: str) -> None:
    for args in (
        ["replay", "list:jobs", "--count", "5"],
        ["list", "list:jobs", "--id", "1-0"],
        ["list", "list:jobs", "--count", "-1"],
    ):
        result = await cli("dead-letters", *args, "--url", redis_url)
        assert result.returncode == 2, (args, result)
        assert "Traceback" not in result.stderr.decode()


# -- item 12: the id in the dead-letter log line is the one replay takes ------------------


async def test_the_logged_dead_letter_id_is_the_one_replay_takes(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "actors")
    system = ActorSystem(redis_url, node="node-a")
    system.actor(Orders)
    async with system:
        await system.tell(Orders, Order(-1))
        with trio.fail_after(10):
            while not await system.dead_letters(Orders):
                await trio.sleep(0.05)
        [letter] = await system.dead_letters(Orders)
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "dead_letter"]
    message = record.getMessage()
    assert letter.id in message, message
    assert record.dead_letter_id == letter.id  # type: ignore[attr-defined]
    replay = await cli(
        "dead-letters", "replay", "stream:orders", "--id", letter.id, "--url", redis_url
    )
    assert replay.returncode == 0, replay


# -- item 15: status shows named mailboxes, the group on its own, --check -------------------


async def test_status_shows_named_mailboxes_without_live_nodes(redis_url: str) -> None:
    from transports import MailboxSpec
    from transports.redis import RedisTransport

    await bury(redis_url, "list:jobs", [b"dead"])
    async with RedisTransport.from_url(redis_url) as transport:
        await transport.send(MailboxSpec.parse("list:jobs"), [b"1", b"2"])
        await transport.send(MailboxSpec.parse("stream:orders"), [b"1"])
    result = await cli("status", "list:jobs", "stream:orders", "--json", "--url", redis_url)
    assert result.returncode == 0, result
    report = json.loads(result.stdout)
    assert report["nodes"] == []
    assert report["mailboxes"] == [
        {"mailbox": "list:jobs", "group": None, "depth": 2, "pending": 0, "dead": 1},
        {"mailbox": "stream:orders", "group": "orders", "depth": 1, "pending": 0, "dead": 0},
    ]
    table = await cli("status", "list:jobs", "--url", redis_url)
    assert table.returncode == 0
    assert "list:jobs" in table.stdout.decode()
    grouped = await cli(
        "status", "stream:orders", "--group", "billing", "--json", "--url", redis_url
    )
    assert [(m["mailbox"], m["group"]) for m in json.loads(grouped.stdout)["mailboxes"]] == [
        ("stream:orders", "billing")
    ]
    for args in (["jobs"], ["list:jobs", "--group", "billing"]):
        bad = await cli("status", *args, "--url", redis_url)
        assert bad.returncode == 2 and len(lines(bad.stderr)) == 1, (args, bad)


async def test_status_check_fails_without_a_live_node(redis_url: str) -> None:
    result = await cli("status", "--check", "--url", redis_url)
    assert result.returncode == 3, result
    assert "no live node" in result.stderr.decode()
    system = ActorSystem(redis_url, node="node-a")
    system.actor(Orders)
    async with system:
        live = await cli("status", "--check", "--url", redis_url)
        assert live.returncode == 0, live


@pytest.mark.parametrize(
    "command", [["status", "list:jobs"], ["dead-letters", "list", "list:jobs"]]
)
async def test_a_reader_that_goes_away_is_no_error(redis_url: str, command: list[str]) -> None:
    """``python -m actors status | head -1``: when the reader closes the pipe, the
    command stops quietly (no BrokenPipeError traceback), status 0."""
    await bury(redis_url, "list:jobs", [b"%d" % n for n in range(50)])
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "actors", *command, "--url", redis_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    await process.stdout.aclose()  # the reader is gone before a line is written
    errors = b""
    with trio.fail_after(30):
        while chunk := await process.stderr.receive_some():
            errors += chunk
        code = await process.wait()
    assert b"Traceback" not in errors, errors.decode()
    assert code == 0, errors.decode()


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_status_of_a_wrong_typed_mailbox_names_it_not_the_command(
    redis_url: str, kind: str
) -> None:
    """No live node: status reads the key itself, and says which mailbox it is in the
    words a node uses ("list:ww: WRONGTYPE ..."), not "EVALSHA: WRONGTYPE ..."."""
    from transports.redis import RedisTransport

    async with RedisTransport.from_url(redis_url) as transport:
        await transport.client.execute_command("HSET", "ww", "a", "1")
    result = await cli("status", f"{kind}:ww", "--url", redis_url)
    assert result.returncode == 0, result
    assert f"error: {kind}:ww: WRONGTYPE" in result.stdout.decode(), result.stdout
    assert "EVALSHA" not in result.stdout.decode(), result.stdout


async def test_listing_dead_letters_kept_in_a_wrong_typed_key_names_it(redis_url: str) -> None:
    """Another client made ``{zz}:dead`` a string: one line that names the key and what
    it holds, not Redis's bare WRONGTYPE."""
    from transports.redis import RedisTransport

    async with RedisTransport.from_url(redis_url) as transport:
        await transport.client.execute_command("SET", "{zz}:dead", "not a stream")
    result = await cli("dead-letters", "list", "list:zz", "--url", redis_url)
    assert result.returncode == 1, result
    assert result.stderr.decode().strip() == (
        "error: list:zz: WRONGTYPE key '{zz}:dead' holds a string, not a stream"
    ), result.stderr
