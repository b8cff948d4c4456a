"""The faststream codec against FastStream's own message formats (its classes encode
what we decode and parse what we encode)."""

from __future__ import annotations

import json

import attrs
import pytest

from actors import CodecError, FastStreamCodec, stream_mailbox
from actors._codec_choice import decode_reply

pytest.importorskip("faststream")
from faststream.redis.parser import BinaryMessageFormatV1


@attrs.frozen
class Order:
    item: str
    qty: int


def test_our_binary_messages_parse_as_faststream_s() -> None:
    payload = FastStreamCodec().encode(
        Order("pen", 2),
        id="m-1",
        correlation_id="c-1",
        reply_to="pubsub:replies",
        headers={"tenant": "acmé"},
    )
    data, headers = BinaryMessageFormatV1.parse(payload)
    assert json.loads(data) == {"item": "pen", "qty": 2}
    assert headers == {
        "correlation_id": "c-1",
        "message_id": "m-1",
        "content-type": "application/json",
        "reply_to": "replies",  # FastStream's reply_to is a channel name
        "actors-type": "Order",
        "tenant": "acmé",
    }


async def test_faststream_s_binary_messages_decode_as_envelopes() -> None:
    payload = await BinaryMessageFormatV1.encode(
        message={"item": "cap", "qty": 1},
        reply_to="inbox-7",
        headers={"tenant": "acme"},
        correlation_id="c-9",
    )
    envelope = FastStreamCodec().decode(payload)
    assert envelope.body == {"item": "cap", "qty": 1}
    assert envelope.foreign and envelope.type is None  # goes to the first fitting handler
    assert (envelope.correlation_id, envelope.reply_to) == ("c-9", "pubsub:inbox-7")
    assert dict(envelope.headers) == {"tenant": "acme"}
    assert decode_reply(payload).correlation_id == "c-9"


async def test_text_bytes_and_none_bodies_as_faststream_encodes_them() -> None:
    codec = FastStreamCodec()
    for body in ("hello", b"\x00raw", None):
        theirs = await BinaryMessageFormatV1.encode(
            message=body, reply_to=None, headers=None, correlation_id="c"
        )
        ours = codec.decode(theirs)
        if body is None:
            assert ours.body is None
        elif isinstance(body, str):
            assert ours.body == body and ours.text
        data, headers = BinaryMessageFormatV1.parse(codec.encode(body))
        assert data == (body.encode() if isinstance(body, str) else body or b"")
        assert ("content-type" in headers) == isinstance(body, str)


def test_the_json_format_both_ways_and_on_a_stream() -> None:
    codec = FastStreamCodec(format="json")
    payload = codec.encode(Order("ink", 3), correlation_id="c-2", headers={"h": "v"})
    document = json.loads(payload)
    assert set(document) == {"data", "headers"}
    data, headers = BinaryMessageFormatV1.parse(payload)  # its reader of the JSON format
    assert json.loads(data) == {"item": "ink", "qty": 3} and headers["correlation_id"] == "c-2"
    envelope = FastStreamCodec().decode(payload)
    assert envelope.body == {"item": "ink", "qty": 3} and envelope.type == "Order"
    # A stream entry `__data__ <json>` reaches the codec as the JSON object of its fields.
    entry = json.dumps({"__data__": payload.decode()}).encode()
    assert FastStreamCodec().decode(entry).body == {"item": "ink", "qty": 3}
    assert decode_reply(payload).correlation_id == "c-2"


def test_plain_payloads_and_our_envelopes_are_read_too() -> None:
    codec = FastStreamCodec()
    assert codec.decode(b'{"item": "x", "qty": 1}').body == {"item": "x", "qty": 1}
    assert codec.decode(b"plain text").body == "plain text"
    with pytest.raises(CodecError, match="malformed FastStream binary message"):
        codec.decode(BinaryMessageFormatV1.IDENTITY_HEADER + b"\x00\x01\x00")


def test_a_faststream_stream_mailbox_writes_the_data_field() -> None:
    assert stream_mailbox("orders", codec="faststream").field == "__data__"
    assert stream_mailbox("orders").field == "message"
    assert stream_mailbox("orders", codec="faststream") == stream_mailbox("orders")
