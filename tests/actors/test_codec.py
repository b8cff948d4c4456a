"""The wire format: envelopes, foreign payloads, strict-but-Redis-aware structuring, junk."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import operator
import sys
import typing
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings, strategies as st

from actors import (
    Actor,
    ActorSystem,
    CodecError,
    ConfigurationError,
    converter,
    handler,
    list_mailbox,
)
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


# -- types are checked when the actor is declared ---------------------------------------


class Shape:
    """A plain class, as a pydantic model looks to cattrs: not attrs, no hook."""

    def __init__(self, sides: int) -> None:
        self.sides = sides


@attrs.frozen
class Carton:
    """An attrs class with a field cattrs looks up only when a value comes."""

    label: str
    shape: Shape | None = None


@attrs.frozen
class Tree:
    """A recursive message type."""

    label: str
    children: list[Tree] = attrs.Factory(list)


@dataclasses.dataclass
class Parcel:
    shape: Shape | None = None


@attrs.frozen
class Boxed:
    """An attrs class with a field of a plain class, and a hook of its own (below)."""

    shape: Shape


converter.register_structure_hook(Boxed, lambda value, _: Boxed(Shape(value)))
converter.register_unstructure_hook(Boxed, lambda boxed: boxed.shape.sides)


@pytest.mark.parametrize(
    ("annotation", "named"),
    [
        (Shape, "Shape"),
        (Deposit | Shape, "Shape"),  # a union with an unsupported member
        (Shape | None, "Shape"),
        (list[Shape], "Shape"),
        (dict[str, Shape], "Shape"),
        (list[int | Shape], "Shape"),  # cattrs resolves union members only when called
        (dict[str, list[Shape | None]], "Shape"),
        (tuple[Shape, ...], "Shape"),  # another lazy one
        (frozenset[Shape], "Shape"),
        (Carton, "Shape"),
        (list[Carton] | None, "Shape"),
        (Parcel, "Shape"),  # a dataclass
    ],
)
def test_a_class_actor_with_an_unsupported_message_type_fails_at_definition(
    annotation: Any, named: str
) -> None:
    async def receive(self: Any, msg: Any) -> None:
        pass

    # Set as evaluated annotations: a string would name this function's local.
    receive.__annotations__ = {"msg": annotation, "return": None}
    with pytest.raises(ConfigurationError) as info:
        type("Bad", (Actor,), {"mailbox": list_mailbox("bad"), "receive": receive})
    message = str(info.value)
    assert "Bad.receive" in message and named in message, message
    assert "not an attrs class" in message and "actors.converter" in message, message


def test_a_handler_method_with_an_unsupported_type_fails_at_the_decorator() -> None:
    with pytest.raises(ConfigurationError, match=r"Svc\.on_shape.*Shape"):

        class Svc(Actor):
            mailbox = list_mailbox("svc")

            @handler
            async def on_shape(self, msg: Shape) -> None:
                pass


def test_an_unsupported_return_type_fails_at_definition() -> None:
    with pytest.raises(ConfigurationError, match=r"Measure\.receive.*return.*Shape"):

        class Measure(Actor):
            mailbox = list_mailbox("measure")

            async def receive(self, msg: int) -> Shape:
                return Shape(msg)


def test_a_pydantic_v1_model_is_named_as_such() -> None:
    # (pydantic v2 models are message types: tests/actors/test_models.py)
    v1 = pytest.importorskip("pydantic.v1")

    class Order(v1.BaseModel):
        id: int

    system = ActorSystem("memory://")

    async def take(msg: Any) -> None:
        pass

    # The annotation is a local class: resolve it as the module would.
    take.__annotations__ = {"msg": Order, "return": None}
    with pytest.raises(ConfigurationError) as info:
        system.actor(list="orders")(take)
    message = str(info.value)
    assert "take" in message and "pydantic v1 model" in message, message
    assert "Order" in message and "register" in message, message


def test_a_function_actor_with_an_unsupported_type_fails_at_the_decorator() -> None:
    system = ActorSystem("memory://")
    with pytest.raises(ConfigurationError, match=r"take_shape.*Shape"):

        @system.actor(list="shapes")
        async def take_shape(msg: Shape) -> None:
            pass

    with pytest.raises(ConfigurationError, match=r"make_shape.*return.*Shape"):

        @system.actor(list="sizes")
        async def make_shape(msg: int) -> Shape:
            return Shape(msg)

    assert not system.actors  # nothing was registered


def test_a_registered_hook_makes_a_type_supported() -> None:
    class Cents:  # a fresh class: no hook yet, whatever ran before
        def __init__(self, cents: int) -> None:
            self.cents = cents

    system = ActorSystem("memory://")

    def declare() -> None:
        async def take_money(msg: Any) -> Any:
            return [msg] if msg else []

        take_money.__annotations__ = {"msg": Cents | None, "return": list[Cents]}
        system.actor(list="money")(take_money)

    with pytest.raises(ConfigurationError, match="Cents"):
        declare()
    converter.register_structure_hook(Cents, lambda value, _: Cents(int(value)))
    converter.register_unstructure_hook(Cents, lambda money: money.cents)
    declare()  # accepted now
    assert "take_money" in system.actors


def test_an_annotation_resolved_later_is_checked_when_the_table_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forward reference to a class defined further down cannot be checked at the class
    statement; it is when the actor is registered (``spec()``, ``handlers()``)."""

    async def receive(self: Any, msg: Any) -> None:
        pass

    receive.__annotations__ = {"msg": "LaterShape", "return": None}
    Later = type("Later", (Actor,), {"mailbox": list_mailbox("later"), "receive": receive})
    monkeypatch.setitem(globals(), "LaterShape", Shape)  # the module defines it now
    with pytest.raises(ConfigurationError, match=r"Later\.receive.*Shape"):
        Later.spec()


def test_supported_types_are_accepted() -> None:
    class Fine(Actor):
        mailbox = list_mailbox("fine")

        async def receive(
            self, msg: Deposit | Note | str | bytes | int | float | bool | dict | list
        ) -> Deposit | None:
            return None

        @handler
        async def more(self, msg: list[int] | dict[str, Deposit] | Any) -> dict[str, Any]:
            return {}

    assert len(Fine.handlers().entries) == 12


def test_a_recursive_type_and_a_hook_for_a_whole_class_are_accepted() -> None:
    """A hook registered for an attrs class is trusted with its fields (Boxed holds a
    plain class); a type that contains itself is checked once."""

    class Nested(Actor):
        mailbox = list_mailbox("nested")

        async def receive(self, msg: Tree | Boxed) -> list[Tree]:
            return []

    assert len(Nested.handlers().entries) == 2


_SUPPORTED_LEAVES = [int, str, float, bool, bytes, Deposit, Note, dict, list, Any]
_UNSUPPORTED_LEAVES = [Shape, Carton]
# Members of a union inside a generic: what cattrs can tell apart by value.
_UNION_MEMBERS = [int, str, float, bool, Deposit, Note, Shape, Carton]


def _union(members: list[Any]) -> Any:
    return functools.reduce(operator.or_, members)


_nested_unions = st.lists(st.sampled_from(_UNION_MEMBERS), min_size=2, max_size=3, unique=True).map(
    _union
)
_inner_types = st.recursive(
    st.sampled_from(_SUPPORTED_LEAVES + _UNSUPPORTED_LEAVES) | _nested_unions,
    lambda child: (
        child.map(lambda t: list[t])
        | child.map(lambda t: dict[str, t])
        | child.map(lambda t: tuple[t, ...])
        | child.map(lambda t: frozenset[t])
        | child.filter(lambda t: t is not Any).map(lambda t: t | None)
    ),
    max_leaves=4,
)


def _mentions(tp: Any, leaves: list[Any]) -> bool:
    if tp in leaves:
        return True
    return any(_mentions(arg, leaves) for arg in typing.get_args(tp))


@settings(max_examples=150)
@given(
    params=st.lists(_inner_types, min_size=1, max_size=2, unique_by=repr),
    returns=st.none() | _inner_types,
)
def test_declaration_fails_exactly_when_a_type_has_no_hook(params: list[Any], returns: Any) -> None:
    param = _union(params) if len(params) > 1 else params[0]
    unsupported = _mentions(param, _UNSUPPORTED_LEAVES) or _mentions(returns, _UNSUPPORTED_LEAVES)

    async def handle(msg: Any) -> Any:
        return None

    handle.__annotations__ = {"msg": param, "return": returns}
    system = ActorSystem("memory://")
    if unsupported:
        with pytest.raises(ConfigurationError, match=r"handle.*Shape"):
            system.actor(list="generated")(handle)
    else:
        system.actor(list="generated")(handle)
