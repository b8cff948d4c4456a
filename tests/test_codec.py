"""The wire format: envelopes, foreign payloads, strict-but-Redis-aware structuring, junk."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings, strategies as st

from actors import CodecError
from actors._actor import HandlerTable
from actors._codec import Envelope, decode, encode, structure


@attrs.frozen
class Deposit:
    account: str
    amount: int


@attrs.frozen
class Note:
    text: str
    urgent: bool = False


def test_round_trip_keeps_metadata() -> None:
    payload = encode(
        Deposit("a", 3), correlation_id="c1", reply_to="list:r", headers={"trace": "t"}
    )
    env = decode(payload)
    assert not env.foreign
    assert env.type == "Deposit"
    assert (env.correlation_id, env.reply_to, dict(env.headers)) == ("c1", "list:r", {"trace": "t"})
    assert structure(env, Deposit) == Deposit("a", 3)


def test_foreign_json_is_the_body() -> None:
    env = decode(b'{"account": "a", "amount": 1}')
    assert env.foreign and env.type is None
    assert structure(env, Deposit) == Deposit("a", 1)


def test_stream_style_strings_structure_as_numbers_and_bools() -> None:
    assert structure(decode(b'{"account": "a", "amount": "42"}'), Deposit) == Deposit("a", 42)
    assert structure(decode(b'{"text": "x", "urgent": "true"}'), Note) == Note("x", True)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"account": 1, "amount": 1}',  # int is not a str
        b'{"account": "a", "amount": 1.5}',  # a fraction is not an int
        b'{"account": "a", "amount": true}',  # a bool is not an int
        b'{"account": "a"}',  # missing field
        b'["account", "a"]',  # wrong shape
    ],
)
def test_wrong_schema_is_a_codec_error(payload: bytes) -> None:
    with pytest.raises(CodecError, match="does not fit Deposit"):
        structure(decode(payload), Deposit)


def test_text_reaches_only_str_handlers() -> None:
    env = decode(b"hello there")
    assert env.text and structure(env, str) == "hello there"
    with pytest.raises(CodecError, match="not JSON"):
        structure(env, Deposit)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 200_000, "nested too deeply"),
        (b'{"actors": 1, "body": 1, "headers": {"a": 1}}', "headers"),
        (b'{"actors": 1, "body": 1, "id": 7}', "'id' is int"),
        (b'{"actors": 1, "body": 1, "sent_at": true}', "sent_at"),
        (b'{"actors": 1}', "no 'body'"),
    ],
)
def test_junk_and_forged_envelopes_are_rejected(payload: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match=reason):
        decode(payload)


def test_oversized_payload_is_rejected() -> None:
    with pytest.raises(CodecError, match="exceeds the limit"):
        decode(b"x" * 101, max_size=100)


def test_unencodable_body_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="cannot encode"):
        encode(object())


def test_dispatch_by_tag_and_by_shape() -> None:
    table = HandlerTable(((Deposit, "deposit"), (Note, "note")))
    assert table.resolve(decode(encode(Note("n")))) == ("note", Note("n"))
    assert table.resolve(decode(b'{"text": "n"}')) == ("note", Note("n"))
    assert table.resolve(decode(b'{"account": "a", "amount": 2}')) == ("deposit", Deposit("a", 2))
    with pytest.raises(CodecError, match="no handler takes messages of type 'int'"):
        table.resolve(decode(encode(5)))


def test_a_tag_cannot_reach_a_handler_that_does_not_declare_it() -> None:
    forged = json.dumps({"actors": 1, "type": "os.system", "body": "rm -rf /"}).encode()
    with pytest.raises(CodecError, match="no handler"):
        HandlerTable(((Deposit, "deposit"),)).resolve(decode(forged))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_junk_never_escapes_as_anything_but_codec_error(payload: bytes) -> None:
    table = HandlerTable(((Deposit, "deposit"), (Note, "note")))
    try:
        env = decode(payload)
        name, body = table.resolve(env)
    except CodecError:
        return
    assert (name, type(body)) in {("deposit", Deposit), ("note", Note)}


@given(json_values)
@example(-9_223_372_036_854_775_809)  # beyond 64 bits: orjson would round it to a float
@example([1, 2**64, -(2**70)])
def test_any_json_body_round_trips(value: Any) -> None:
    env = decode(encode(value))
    assert isinstance(env, Envelope) and env.body == value


def test_non_finite_floats_travel_as_null() -> None:
    """JSON has no NaN or Infinity: like JSON.stringify, they are sent as null."""
    assert decode(encode([1.5, float("inf"), float("nan")])).body == [1.5, None, None]


def test_what_fast_json_refuses_takes_the_exact_path() -> None:
    assert decode(encode(2**70)).body == 2**70  # beyond 64 bits
    assert math.isnan(decode(b"NaN").body)  # orjson refuses it; the standard library reads it
    assert decode(b"\xef\xbb\xbf{}").text  # a BOM: not JSON for us, text


def test_a_foreign_payload_with_a_huge_integer_keeps_it_exact() -> None:
    """A 23-digit order id from another client must not come back rounded."""
    env = decode(b'{"order": 12345678901234567890123, "small": 1}')
    assert env.body == {"order": 12345678901234567890123, "small": 1}


@settings(max_examples=30)
@given(
    digits=st.integers(sys.get_int_max_str_digits() + 1, sys.get_int_max_str_digits() + 3000),
    sign=st.sampled_from(["", "-"]),
    wrapped=st.booleans(),
)
@example(digits=5000, sign="", wrapped=False)  # redis-cli RPUSH jobs 1234...(5,000 digits)
def test_an_integer_too_large_to_read_is_named_as_such(
    digits: int, sign: str, wrapped: bool
) -> None:
    number = sign + "7" * digits
    payload = (f'{{"account": "a", "amount": {number}}}' if wrapped else number).encode()
    table = HandlerTable(((int, "count"), (Deposit, "deposit")))
    with pytest.raises(CodecError) as info:
        table.resolve(decode(payload))
    limit = sys.get_int_max_str_digits()
    reason = f"integer too large: {digits} digits; JSON integers are limited to {limit} digits"
    assert str(info.value).count(reason) == 2, info.value  # one per handler
    assert "not JSON" not in str(info.value)
