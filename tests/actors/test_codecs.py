"""Pluggable codecs (JSON, msgpack) per system and per mailbox, and pydantic models and
msgspec Structs as message types beside attrs classes, on memory and on Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest
import redis as redis_py
import trio

from actors import (
    ActorSystem,
    Codec,
    CodecError,
    ConfigurationError,
    FastStreamCodec,
    JsonCodec,
    MsgpackCodec,
    RemoteError,
    list_mailbox,
    stream_mailbox,
)
from actors._codec_choice import decode_reply
from actors._envelope import Envelope
from transports.memory import MemoryTransport

msgpack = pytest.importorskip("msgpack")


@attrs.frozen
class Add:
    a: int
    b: int


@attrs.frozen
class Sum:
    total: int


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


async def _until(check: Callable[[], Any]) -> None:
    with trio.fail_after(20):
        while not check():
            await trio.sleep(0.02)


class Sent:
    """What the systems under test wrote, read back raw (memory or Redis)."""

    def __init__(self, url: str, system: ActorSystem) -> None:
        self.url, self.system = url, system

    async def raw(self, name: str) -> list[bytes]:
        if self.url.startswith("redis"):
            client = redis_py.Redis.from_url(self.url)
            try:
                return list(client.lrange(name, 0, -1))
            finally:
                client.close()
        # The memory transport's own store: fetch them with a consumer of our own.
        transport = self.system.transport
        async with transport.consumer(list_mailbox(name), "probe") as consumer:
            with trio.move_on_after(0.5):
                return [d.payload for d in await consumer.fetch(100)]
        return []


@pytest.fixture
async def running(url: str) -> AsyncIterator[tuple[ActorSystem, Sent]]:
    system = ActorSystem(url, node="codecs", codec="msgpack")

    @system.actor(list="adder")
    async def adder(msg: Add) -> Sum:
        return Sum(msg.a + msg.b)

    @system.actor(mailbox=list_mailbox("json-adder", codec="json"))
    async def json_adder(msg: Add) -> Sum:
        return Sum(msg.a + msg.b)

    async with system:
        yield system, Sent(url, system)


async def test_a_system_codec_writes_msgpack_envelopes_and_asks_through_them(
    running: tuple[ActorSystem, Sent],
) -> None:
    system, sent = running
    assert await system.ask("adder", Add(2, 3)) == Sum(5)
    await system.tell("list:raw", Add(1, 1), headers={"tenant": "acme"})
    [payload] = await sent.raw("raw")
    wire = msgpack.unpackb(payload)
    # The JSON envelope's fields, as a MessagePack map.
    assert wire["actors"] == 1 and wire["type"] == "Add" and wire["body"] == {"a": 1, "b": 1}
    assert wire["headers"] == {"tenant": "acme"}
    assert set(wire) == {"actors", "id", "type", "body", "sent_at", "headers"}


async def test_a_mailbox_codec_overrides_the_system_s(running: tuple[ActorSystem, Sent]) -> None:
    system, sent = running
    assert await system.ask("json_adder", Add(4, 5)) == Sum(9)
    # Telling its address (not its spec) finds the actor's codec too.
    await system.tell(list_mailbox("json-only", codec="json"), Add(1, 2))
    [payload] = await sent.raw("json-only")
    assert json.loads(payload)["body"] == {"a": 1, "b": 2}


async def test_a_msgpack_mailbox_still_reads_json_from_plain_clients(url: str) -> None:
    system = ActorSystem(url, node="codecs")
    got: list[Add] = []

    @system.actor(mailbox=list_mailbox("packed", codec=MsgpackCodec()))
    async def packed(msg: Add) -> None:
        got.append(msg)

    async with system:
        await system.transport.send(list_mailbox("packed"), [b'{"a": 1, "b": 2}'])
        await system.tell("packed", Add(3, 4))
        await _until(lambda: len(got) == 2)
    assert sorted(got, key=lambda m: m.a) == [Add(1, 2), Add(3, 4)]


async def test_a_reply_goes_back_in_its_request_s_codec() -> None:
    # An asker whose system is JSON asks a msgpack mailbox: the reply is msgpack, and
    # the asker reads it (replies are read whatever their codec).
    async with MemoryTransport() as transport:
        replier = ActorSystem(transport=transport, node="replier", codec="msgpack")
        asker = ActorSystem(transport=transport, node="asker")

        @replier.actor(list="m")
        async def m(msg: Add) -> Sum:
            return Sum(msg.a * msg.b)

        async with replier, asker:
            box = list_mailbox("m", codec="msgpack")
            assert await asker.ask(box, Add(3, 4), reply_type=Sum) == Sum(12)
            payload = MsgpackCodec().encode(Sum(1), correlation_id="c")
            assert decode_reply(payload).correlation_id == "c"


async def test_a_stream_mailbox_with_msgpack(url: str) -> None:
    system = ActorSystem(url, node="codecs")
    got: list[Add] = []

    @system.actor(mailbox=stream_mailbox("packed-stream", codec="msgpack"))
    async def packed(msg: Add) -> Sum:
        got.append(msg)
        return Sum(msg.a + msg.b)

    async with system:
        assert await system.ask("packed", Add(5, 6)) == Sum(11)
    assert got == [Add(5, 6)]


def test_unknown_codecs_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown codec 'yaml'"):
        list_mailbox("x", codec="yaml")
    with pytest.raises(ConfigurationError, match="unknown codec"):
        ActorSystem("memory://", codec="pickle")


def test_msgpack_envelopes_are_checked_as_json_ones_are() -> None:
    codec = MsgpackCodec()
    bad = msgpack.packb({"actors": 1, "id": 5, "body": 1})
    with pytest.raises(CodecError, match="malformed envelope: 'id' is int"):
        codec.decode(bad)
    with pytest.raises(CodecError, match="not MessagePack"):
        codec.decode(b"\x81\xc1")  # a map of one entry whose key is the never-used 0xc1
    assert codec.decode("\u0780 text".encode()).body == "\u0780 text"  # 0xDE: text, not a map
    with pytest.raises(CodecError, match="exceeds the limit"):
        codec.decode(msgpack.packb({"actors": 1, "body": "x" * 100}), max_size=50)
    with pytest.raises(CodecError, match="cannot encode"):
        codec.encode(2**70)  # beyond MessagePack's integers
    assert JsonCodec().decode(JsonCodec().encode(Add(1, 2))).body == {"a": 1, "b": 2}


def test_importing_actors_imports_no_optional_codec_or_model_library() -> None:
    script = (
        "import sys, actors; "
        "print(sorted(m for m in ('msgpack', 'pydantic', 'msgspec', 'faststream') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_asks_through_the_faststream_codec_are_answered_on_a_channel(url: str) -> None:
    # No FastStream here: both sides are ours, replying as a FastStream responder does.
    system = ActorSystem(url, node="codecs")
    box = list_mailbox("fs-adder", codec=FastStreamCodec())

    @system.actor(mailbox=box, max_deliveries=1)
    async def adder(msg: Add) -> Sum:
        if msg.b < 0:
            raise ValueError("negative")
        return Sum(msg.a + msg.b)

    async with system:
        assert await system.ask(box, Add(1, 2), reply_type=Sum) == Sum(3)
        assert await system.ask("adder", Add(2, 2)) == Sum(4)  # the reply type found
        with pytest.raises(RemoteError, match="ValueError: negative"):
            await system.ask("adder", Add(1, -1))
        await system.tell_many("adder", [Add(0, 0), Add(0, 1)])


class Zipped(Codec):
    """A codec of one's own: the JSON envelope, compressed."""

    name = "zipped"

    def encode(self, body: Any, **fields: Any) -> bytes:
        return zlib.compress(JsonCodec().encode(body, **fields))

    def decode(self, payload: bytes, *, max_size: int = 1 << 20) -> Envelope:
        try:
            return JsonCodec().decode(zlib.decompress(payload), max_size=max_size)
        except zlib.error as exc:
            raise CodecError(f"not zlib: {exc}") from exc


async def test_a_codec_of_one_s_own_and_its_errors_dead_letter(url: str) -> None:
    system = ActorSystem(url, node="codecs", codec=Zipped())
    got: list[Add] = []

    @system.actor(list="zipped", max_deliveries=1)
    async def zipped(msg: Add) -> None:
        got.append(msg)

    async with system:
        await system.tell("zipped", Add(7, 8))
        await system.transport.send(list_mailbox("zipped"), [b"plain"])
        with trio.fail_after(20):
            while not (dead := await system.dead_letters("zipped")):
                await trio.sleep(0.02)
        await _until(lambda: got)
    assert got == [Add(7, 8)]
    assert dead[0].payload == b"plain"
    assert dead[0].failure.reason.startswith("undecodable: not zlib")
