"""pydantic v2 models and msgspec Structs as message types beside attrs classes:
detected by type, as messages, replies, ask's reply_type and fields of attrs classes;
a body that does not validate is dead-lettered with the library's reasons."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from actors import ActorSystem, list_mailbox
from actors._types import converter, unsupported

pydantic = pytest.importorskip("pydantic")
msgspec = pytest.importorskip("msgspec")
pytest.importorskip("msgpack")


class Order(pydantic.BaseModel):
    item: str
    qty: int


class Receipt(pydantic.BaseModel):
    item: str
    total: int


class Point(msgspec.Struct):
    x: int
    y: int


class Norm(msgspec.Struct):
    value: int


class Line(pydantic.BaseModel):
    sku: str


class Tag(msgspec.Struct):
    name: str


@attrs.frozen
class Basket:
    lines: list[Line]
    tags: list[Tag]


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


async def test_pydantic_models_are_messages_replies_and_reply_types(url: str) -> None:
    system = ActorSystem(url, node="models")

    @system.actor(list="orders", max_deliveries=1)
    async def order(msg: Order) -> Receipt:
        return Receipt(item=msg.item, total=msg.qty * 2)

    async with system:
        assert await system.ask("orders", Order(item="pen", qty=3)) == Receipt(item="pen", total=6)
        as_dict = await system.ask("orders", Order(item="ink", qty=1), reply_type=dict[str, Any])
        assert as_dict == {"item": "ink", "total": 2}
        # A plain client's JSON validates as the model; a bad one is dead-lettered with
        # pydantic's reasons, where they are.
        await system.transport.send(
            list_mailbox("orders"), [b'{"item": "cap", "qty": "many"}', b'{"item": "x"}']
        )
        dead = []
        with trio.fail_after(20):
            while len(dead) < 2:
                dead = list(await system.dead_letters("orders"))
                await trio.sleep(0.02)
    reasons = sorted(d.failure.reason for d in dead)
    assert "undecodable: body does not fit Order: Field required @ $.qty" in reasons
    assert any("Input should be a valid integer" in r and "@ $.qty" in r for r in reasons), reasons


async def test_msgspec_structs_are_messages_and_replies(url: str) -> None:
    system = ActorSystem(url, node="models", codec="msgpack")

    @system.actor(list="points", max_deliveries=1)
    async def norm(msg: Point) -> Norm:
        return Norm(abs(msg.x) + abs(msg.y))

    async with system:
        assert await system.ask("points", Point(3, -4)) == Norm(7)
        # Stream-style strings are numbers, as for attrs classes.
        await system.transport.send(list_mailbox("points"), [b'{"x": "1", "y": "oops"}'])
        with trio.fail_after(20):
            while not (dead := await system.dead_letters("points")):
                await trio.sleep(0.02)
    assert dead[0].failure.reason == (
        "undecodable: body does not fit Point: Expected `int`, got `str` @ $.y"
    )


def test_models_are_supported_types_inside_others() -> None:
    assert unsupported(Basket) is None
    basket = Basket([Line(sku="a")], [Tag("t")])
    data = converter.unstructure(basket)
    assert data == {"lines": [{"sku": "a"}], "tags": [{"name": "t"}]}
    assert converter.structure(data, Basket) == basket
