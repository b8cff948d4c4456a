"""Whatever a message's structuring raises (a user's hook included) is that message's
fate, not the actor's: a CodecError with the reason, one dead letter, and the actor goes on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio

from actors import ActorSystem, CodecError, converter, list_mailbox
from actors._actor import HandlerTable
from actors._codec import decode, encode, structure
from actors.testing import run_test_system


class Price:
    """A plain class with hooks of the user's: its structure hook raises decimal's
    InvalidOperation (an ArithmeticError) for text that is not a number."""

    def __init__(self, amount: Decimal) -> None:
        self.amount = amount

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Price) and other.amount == self.amount

    def __hash__(self) -> int:
        return hash(self.amount)

    def __repr__(self) -> str:
        return f"Price({self.amount})"


converter.register_structure_hook(Price, lambda value, _: Price(Decimal(value)))
converter.register_unstructure_hook(Price, lambda price: str(price.amount))


@attrs.frozen
class Order:
    item: str
    price: Price


class Touchy:
    """Its hook raises the exception its body names (``{"raise": "RuntimeError"}``)."""


class Unlucky(Exception):
    """An exception of the user's own."""


_RAISES: dict[str, type[BaseException]] = {
    "RuntimeError": RuntimeError,
    "ZeroDivisionError": ZeroDivisionError,
    "LookupError": LookupError,
    "Unlucky": Unlucky,
    "RecursionError": RecursionError,
    "ValueError": ValueError,
}


def _touchy(value: Any, _: Any) -> Touchy:
    raise _RAISES[value["raise"]]("touchy hook says no")


converter.register_structure_hook(Touchy, _touchy)


@attrs.frozen
class Wrapper:
    inner: Touchy


@pytest.mark.parametrize("name", sorted(_RAISES))
@pytest.mark.parametrize("nested", [False, True])
def test_any_error_of_a_hook_is_a_codec_error_with_the_reason(name: str, nested: bool) -> None:
    body = {"raise": name}
    tp: Any = Wrapper if nested else Touchy
    with pytest.raises(CodecError) as info:
        structure(decode(encode({"inner": body} if nested else body)), tp)
    message = str(info.value)
    assert f"does not fit {tp.__name__}" in message, message
    assert f"{name}: touchy hook says no" in message, message


def test_a_hook_error_in_dispatch_is_a_codec_error() -> None:
    table = HandlerTable(((Price, "price"), (Order, "order")))
    with pytest.raises(CodecError, match="InvalidOperation"):
        table.resolve(decode(b'"abc"'))
    with pytest.raises(CodecError, match="InvalidOperation"):
        table.resolve(decode(b'{"item": "tea", "price": "abc"}'))
    assert table.resolve(decode(b'"1.50"')) == ("price", Price(Decimal("1.50")))


def test_a_base_exception_of_a_hook_is_not_swallowed() -> None:
    """Only errors become CodecError: a KeyboardInterrupt (or trio.Cancelled) goes on."""

    class Interrupting:
        pass

    def interrupt(value: Any, _: Any) -> Interrupting:
        raise KeyboardInterrupt

    converter.register_structure_hook(Interrupting, interrupt)
    with pytest.raises(KeyboardInterrupt):
        structure(decode(b"{}"), Interrupting)


POISON = [b'"abc"', encode(Order("tea", Price(Decimal(0)))).replace(b'"0"', b'"abc"')]


def _price_actor(system: ActorSystem, kind: str, got: list[Any]) -> None:
    @system.actor(**{kind: "prices"})
    async def take(msg: Price | Order) -> None:
        got.append(msg)


def _check_dead(dead: Any) -> None:
    assert [d.payload for d in dead] == POISON
    for letter in dead:
        assert letter.failure.reason.startswith("undecodable"), letter.failure
        assert "InvalidOperation" in letter.failure.reason, letter.failure
        assert letter.attempts == 1, letter


async def test_a_raising_hook_dead_letters_the_message_and_the_actor_goes_on(
    autojump_clock: Any,
) -> None:
    system = ActorSystem("memory://", node="test")
    got: list[Any] = []
    _price_actor(system, "list", got)
    async with run_test_system(system) as probe:
        with trio.fail_after(60):
            await system.transport.send(list_mailbox("prices"), POISON)
            await system.tell("prices", Price(Decimal("1.50")))
            await system.tell("prices", Order("tea", Price(Decimal("2"))))
            await probe.drain()
        dead = await system.dead_letters("prices")
        assert system.tree().children[0].restarts == 0
    assert got == [Price(Decimal("1.50")), Order("tea", Price(Decimal("2")))]
    _check_dead(dead)


@pytest.mark.parametrize("kind", ["list", "stream"])
async def test_a_raising_hook_dead_letters_the_message_on_redis(redis_url: str, kind: str) -> None:
    system = ActorSystem(redis_url, node=f"test-{kind}")
    got: list[Any] = []
    _price_actor(system, kind, got)
    async with system:
        await system.transport.send(system.resolve(f"{kind}:prices"), POISON)
        await system.tell(f"{kind}:prices", Price(Decimal("1.50")))
        await system.tell(f"{kind}:prices", Order("tea", Price(Decimal("2"))))
        with trio.fail_after(20):
            while len(got) < 2 or len(await system.dead_letters(f"{kind}:prices")) < 2:
                await trio.sleep(0.05)
        await trio.sleep(0.2)  # a restart or a second attempt would show up now
        dead = await system.dead_letters(f"{kind}:prices")
        restarts = sum(child.restarts for child in system.tree().children)
    assert got == [Price(Decimal("1.50")), Order("tea", Price(Decimal("2")))]
    assert restarts == 0
    _check_dead(dead)


class Secret:
    """Its unstructure hook raises: a result that can never be sent."""


def _refuse(_: Secret) -> Any:
    raise PermissionError("classified")


converter.register_structure_hook(Secret, lambda value, _: Secret())
converter.register_unstructure_hook(Secret, _refuse)


def test_any_error_of_an_unstructure_hook_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="cannot encode Secret: PermissionError: classified"):
        encode(Secret())


async def test_a_result_whose_hook_raises_is_dead_lettered_and_the_actor_goes_on(
    autojump_clock: Any,
) -> None:
    system = ActorSystem("memory://", node="test")
    handled: list[int] = []

    @system.actor(list="secrets")
    @system.publisher(list="leaks")
    async def reveal(n: int) -> Secret | None:
        handled.append(n)
        return Secret() if n == 1 else None

    async with run_test_system(system) as probe:
        with trio.fail_after(60):
            await system.tell_many("secrets", [1, 2])
            await probe.drain()
        dead = await system.dead_letters("secrets")
        assert system.tree().children[0].restarts == 0
    assert handled == [1, 2]
    assert [(d.failure.reason, d.failure.error_type) for d in dead] == [
        ("result not encodable", "CodecError")
    ]
    assert "PermissionError: classified" in dead[0].failure.error
