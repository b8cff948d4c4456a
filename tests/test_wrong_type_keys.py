"""Keys of the wrong type (issue 13, items 2 and 7).

Redis does not roll a script back: a script that removes a message and then fails to
write it where it goes loses it. Every script that moves a message checks the types
of the keys it touches before changing anything, so a failed move leaves the message
where it was and the error names the key and its type. Each test below gives one
key of a mailbox the wrong type, runs the operation that uses it, and checks both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from conformance._support import fetch_within

from actors._exceptions import CommandError
from transports import Failure, MailboxSpec
from transports.redis import RedisTransport
from transports.redis._scripts import LIST_TAKE, Script

LEASE = 0.5


@pytest.fixture
async def transport(redis_url: str) -> AsyncIterator[RedisTransport]:
    async with RedisTransport.from_url(redis_url) as opened:
        yield opened


async def spoil(transport: RedisTransport, key: str) -> str:
    """Replace ``key`` by a key of a type no mailbox key has here; return that type."""
    client = transport.client
    await client.delete(key)
    if key.endswith((":failures", ":epochs")):  # hashes: a string is wrong for them
        await client.set(key, "not a hash")
        return "string"
    await client.hset(key, "not", "mine")
    return "hash"


def assert_names(error: CommandError, spec: MailboxSpec, key: str, found: str, wanted: str) -> None:
    """The error says which mailbox, which key, what it holds and what it should."""
    assert error.code == "WRONGTYPE"
    assert str(error) == f"{spec}: WRONGTYPE key '{key}' holds a {found}, not a {wanted}"


# -- dead letters -----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "key", "wanted"), [
    ("list", "{dl}:dead", "stream"),
    ("list", "{dl}:failures", "hash"),
    ("stream", "{dl}:dead", "stream"),
    ("stream", "{dl}:failures", "hash"),
])  # fmt: skip
async def test_a_dead_letter_that_cannot_be_written_leaves_the_message_held(
    transport: RedisTransport, kind: str, key: str, wanted: str
) -> None:
    spec = MailboxSpec(kind, "dl", lease=30.0)  # type: ignore[arg-type]
    client = transport.client
    await transport.send(spec, [b"poison"])
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(1)
        await consumer.record_failure(delivery)
        found = await spoil(transport, key)
        with pytest.raises(CommandError) as caught:
            await consumer.dead_letter(delivery, Failure("poison"))
        assert_names(caught.value, spec, key, found, wanted)
        if kind == "list":
            assert await client.lrange("{dl}:processing:w1", 0, -1) == [b"poison"]
        else:
            assert (await client.xpending("dl", "dl"))["pending"] == 1
        await client.delete(key)  # fixed: the same call now works
        await consumer.dead_letter(delivery, Failure("poison"))
    [letter] = await transport.dead_letters(spec)
    assert letter.payload == b"poison"


# -- retries and releases -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
@pytest.mark.parametrize("how", ["retry_later", "release"])
async def test_a_retry_or_release_that_cannot_be_written_leaves_the_message_held(
    transport: RedisTransport, kind: str, how: str
) -> None:
    spec = MailboxSpec(kind, "rt", lease=30.0)  # type: ignore[arg-type]
    client = transport.client
    await transport.send(spec, [b"again"])
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(1)
        # A list retry goes to {rt}:delayed, a release back to the list; a stream's
        # both become due retries of the group, in {rt}:delayed:rt.
        if kind == "stream":
            key, wanted = "{rt}:delayed:rt", "zset"
        else:
            key, wanted = ("{rt}:delayed", "zset") if how == "retry_later" else ("rt", "list")
        found = await spoil(transport, key)

        async def move() -> None:
            if how == "retry_later":
                await consumer.retry_later(delivery, 0)
            else:
                await consumer.release([delivery])

        with pytest.raises(CommandError) as caught:
            await move()
        assert_names(caught.value, spec, key, found, wanted)
        if kind == "list":
            assert await client.lrange("{rt}:processing:w1", 0, -1) == [b"again"]
        else:
            [entry] = await client.xpending_range("rt", "rt", "-", "+", 10)
            assert entry["consumer"] == b"w1"  # not handed to the pseudo-consumer {delayed}
        await client.delete(key)
        await move()
        [again] = await fetch_within(consumer, 5, 5.0)
    assert again.payload == b"again"


# -- fetching and acking a list ----------------------------------------------------------


@pytest.mark.parametrize(("key", "wanted"), [
    ("{tk}:processing:w1", "list"),
    ("{tk}:failures", "hash"),
    ("{tk}:delayed", "zset"),
    ("{tk}:consumers", "zset"),
    ("{tk}:closed", "set"),
    ("{tk}:epochs", "hash"),
    ("{tk}:processing:ghost", "list"),  # a dead consumer's, to take over
])  # fmt: skip
async def test_a_list_fetch_that_cannot_move_leaves_the_messages_in_the_list(
    transport: RedisTransport, key: str, wanted: str
) -> None:
    spec = MailboxSpec("list", "tk", lease=LEASE)
    client = transport.client
    async with transport.consumer(spec, "w1") as consumer:
        await client.zadd("{tk}:consumers", {"ghost": 0})  # died long ago
        await trio.sleep(LEASE / 2)  # the next fetch takes dead consumers over
        found = await spoil(transport, key)
        await transport.send(spec, [b"a", b"b"])
        with pytest.raises(CommandError) as caught:
            await consumer.fetch(5)
        assert_names(caught.value, spec, key, found, wanted)
        assert await client.lrange("tk", 0, -1) == [b"a", b"b"]
        await client.delete(key)
        got = await consumer.fetch(5)
        await consumer.ack(got)
    assert [d.payload for d in got] == [b"a", b"b"]


@pytest.mark.parametrize("how", ["fetch", "ack", "settle"])
async def test_a_list_ack_that_cannot_be_completed_acks_nothing(
    transport: RedisTransport, how: str
) -> None:
    """The ack empties the processing list, then deletes failure counts: with a
    wrong-typed ``{name}:failures``, half an ack would be made and reported failed."""
    spec = MailboxSpec("list", "ak", lease=30.0)
    client = transport.client
    await transport.send(spec, [b"a"])
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(1)
        await consumer.record_failure(delivery)  # the ack must delete its count
        found = await spoil(transport, "{ak}:failures")

        async def ack() -> None:
            if how == "fetch":
                await consumer.fetch(1, ack=[delivery])
            elif how == "ack":
                await consumer.ack([delivery])
            else:
                await transport.settle(consumer, {}, [delivery])

        with pytest.raises(CommandError) as caught:
            await ack()
        assert_names(caught.value, spec, "{ak}:failures", found, "hash")
        assert await client.lrange("{ak}:processing:w1", 0, -1) == [b"a"]
        await client.delete("{ak}:failures")
        await consumer.ack([delivery])
        assert await client.llen("{ak}:processing:w1") == 0


async def test_closing_keeps_what_it_cannot_hand_back_to_a_wrong_typed_list(
    transport: RedisTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing hands what an interrupted fetch moved back to the list: into a list
    that is no longer one, it must keep them in the processing list (taken over
    after the lease) rather than delete them from there first."""
    spec = MailboxSpec("list", "cl", lease=30.0)
    client = transport.client
    run = Script.__call__

    async def reply_lost(self: Script, *args: Any) -> Any:
        reply = await run(self, *args)
        if self is LIST_TAKE:
            await trio.sleep_forever()
        return reply

    await transport.send(spec, [b"held", b"m1", b"m2"])
    async with transport.consumer(spec, "w1") as consumer:
        assert [d.payload for d in await consumer.fetch(1)] == [b"held"]
        monkeypatch.setattr(Script, "__call__", reply_lost)
        with trio.move_on_after(0.2):
            await consumer.fetch(2)  # moves m1, m2; the reply never comes
        monkeypatch.setattr(Script, "__call__", run)
        await spoil(transport, "cl")
    assert await client.lrange("{cl}:processing:w1", 0, -1) == [b"held", b"m1", b"m2"]


# -- streams -----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "wanted"), [
    ("{st}:failures", "hash"),
    ("{st}:delayed:st", "zset"),
])  # fmt: skip
async def test_a_stream_fetch_names_a_wrong_typed_key_and_delivers_nothing(
    transport: RedisTransport, key: str, wanted: str
) -> None:
    spec = MailboxSpec("stream", "st", lease=LEASE)
    client = transport.client
    await transport.send(spec, [b"a"])
    async with transport.consumer(spec, "w1") as consumer:
        found = await spoil(transport, key)
        with pytest.raises(CommandError) as caught:
            await consumer.fetch(5)
        assert_names(caught.value, spec, key, found, wanted)
        assert (await client.xpending("st", "st"))["pending"] == 0
        await client.delete(key)
        [delivery] = await fetch_within(consumer, 5, 5.0)
        await consumer.ack([delivery])
    assert delivery.payload == b"a"


@pytest.mark.parametrize(("kind", "wanted"), [("list", "list"), ("stream", "stream")])
async def test_a_mailbox_key_of_the_wrong_type_is_named_at_open(
    transport: RedisTransport, kind: str, wanted: str
) -> None:
    spec = MailboxSpec(kind, "mb", lease=LEASE)  # type: ignore[arg-type]
    found = await spoil(transport, "mb")
    with pytest.raises(CommandError) as caught:
        async with transport.consumer(spec, "w1"):
            pass  # pragma: no cover
    assert_names(caught.value, spec, "mb", found, wanted)


@pytest.mark.parametrize(("kind", "wanted"), [("list", "list"), ("stream", "stream")])
async def test_a_mailbox_key_spoiled_under_a_waiting_consumer_is_named(
    transport: RedisTransport, kind: str, wanted: str
) -> None:
    """A blocking read (``BLMOVE``, ``XREADGROUP``) fails with Redis's own WRONGTYPE,
    which names no key: the consumer finds it."""
    spec = MailboxSpec(kind, "mb", lease=30.0)  # type: ignore[arg-type]
    async with transport.consumer(spec, "w1") as consumer:
        assert await fetch_within(consumer, 5, 0.1) == []  # opens its blocking connection
        found = await spoil(transport, "mb")
        with pytest.raises(CommandError) as caught, trio.fail_after(10):
            await consumer.fetch(5)
    assert_names(caught.value, spec, "mb", found, wanted)


# -- failure counts, replays, stats, the node registry -------------------------------------


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_recording_a_failure_names_a_wrong_typed_failures_key(
    transport: RedisTransport, kind: str
) -> None:
    spec = MailboxSpec(kind, "rf", lease=30.0)  # type: ignore[arg-type]
    await transport.send(spec, [b"a"])
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(1)
        found = await spoil(transport, "{rf}:failures")
        with pytest.raises(CommandError) as caught:
            await consumer.record_failure(delivery)
    assert_names(caught.value, spec, "{rf}:failures", found, "hash")


@pytest.mark.parametrize(("key", "wanted"), [("rp", "list"), ("{rp}:failures", "hash")])
async def test_a_replay_that_cannot_be_completed_keeps_the_letter_and_sends_nothing(
    transport: RedisTransport, key: str, wanted: str
) -> None:
    spec = MailboxSpec("list", "rp", lease=30.0)
    client = transport.client
    await transport.send(spec, [b"a"])
    async with transport.consumer(spec, "w1") as consumer:
        [delivery] = await consumer.fetch(1)
        await consumer.dead_letter(delivery, Failure("poison"))
    found = await spoil(transport, key)
    with pytest.raises(CommandError) as caught:
        await transport.replay_dead_letters(spec)
    assert "WRONGTYPE" in str(caught.value) and f"key '{key}' holds a {found}" in str(caught.value)
    assert len(await transport.dead_letters(spec)) == 1
    if key != "rp":
        assert await client.llen("rp") == 0  # not sent while the letter stays
    await client.delete(key)
    assert await transport.replay_dead_letters(spec) == 1
    assert await client.lrange("rp", 0, -1) == [b"a"]


@pytest.mark.parametrize(("kind", "key", "wanted"), [
    ("list", "sx", "list"),
    ("list", "{sx}:dead", "stream"),
    ("list", "{sx}:consumers", "zset"),
    ("stream", "sx", "stream"),
    ("stream", "{sx}:delayed:sx", "zset"),
])  # fmt: skip
async def test_mailbox_stats_name_a_wrong_typed_key(
    transport: RedisTransport, kind: str, key: str, wanted: str
) -> None:
    spec = MailboxSpec(kind, "sx")  # type: ignore[arg-type]
    found = await spoil(transport, key)
    with pytest.raises(CommandError) as caught:
        await transport.mailbox_stats(spec)
    assert f"key '{key}' holds a {found}, not a {wanted}" in str(caught.value)


@pytest.mark.parametrize(("key", "wanted"), [
    ("{actors:nodes}", "hash"),
    ("{actors:nodes}:expiry", "zset"),
])  # fmt: skip
async def test_the_node_registry_names_a_wrong_typed_key(
    transport: RedisTransport, key: str, wanted: str
) -> None:
    await transport.client.set(key, "x")
    with pytest.raises(CommandError) as caught:
        await transport.announce("n1", {"pid": 1}, 15.0, instance="i")
    assert f"key '{key}' holds a string, not a {wanted}" in str(caught.value)
    with pytest.raises(CommandError, match="holds a string"):
        await transport.nodes()
