"""Junk in every kind of mailbox (list, stream, pub/sub): each junk payload is
dead-lettered with a reason and the valid messages behind it are all handled."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

import attrs
import pytest
import trio
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from actors import (
    Actor,
    ActorSystem,
    CodecError,
    MailboxSpec,
    channel_mailbox,
    list_mailbox,
    stream_mailbox,
)
from actors._codec import decode, encode
from transports.redis.client import RAW
from transports.testing import PrivateRedis

from .conftest import Report, Tally, failed_nodes

pytestmark = pytest.mark.chaos


@attrs.frozen
class Job:
    id: int
    token: str


VALID = encode(Job(1, "token"))
BIG = json.dumps({"id": 7, "token": "x" * (10 * 1024 * 1024)}).encode()  # 10 MiB > 8 MiB

_json_scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=8), st.integers()
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_dumps = lambda value: json.dumps(value).encode()  # noqa: E731

JUNK = st.one_of(
    st.binary(max_size=300),  # random bytes
    st.integers(0, len(VALID) - 1).map(lambda k: VALID[:k]),  # truncated JSON
    st.fixed_dictionaries({"id": _json, "token": _json}).map(_dumps),  # wrong schema
    _json.map(_dumps),
    st.integers(30, 200_000).map(lambda depth: b"[" * depth + b"]" * depth),  # deep nesting
    st.integers(30, 5_000).map(
        lambda d: (
            _dumps({"id": 1, "token": "t"})[:-1] + b',"x":' + b'{"a":' * d + b"1" + b"}" * d + b"}"
        )
    ),
    st.binary(min_size=1, max_size=60).map(lambda b: b'{"id": 1, "token": "\xff' + b + b'"}'),
    st.fixed_dictionaries(  # a forged envelope with fields of the wrong types
        {"actors": st.just(1)},
        optional={
            "id": _json,
            "type": st.one_of(_json, st.sampled_from(["Job", "os.system", "builtins.eval"])),
            "body": _json,
            "headers": _json,
            "sent_at": _json,
            "reply_to": _json,
            "correlation_id": _json,
        },
    ).map(_dumps),
)


def _is_junk(payload: bytes) -> bool:
    """True unless the payload would validly reach Sink's handler."""
    try:
        Sink.handlers().resolve(decode(payload))
    except CodecError:
        return True
    return False


def collect_junk(examples: int) -> list[bytes]:
    found: list[bytes] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(JUNK)
    def collect(payload: bytes) -> None:
        if _is_junk(payload) and payload not in found:
            found.append(payload)

    collect()
    return found


class Sink(Actor):
    async def receive(self, msg: Job) -> None:
        raise NotImplementedError  # replaced per system below


@pytest.mark.parametrize("kind", ["list", "stream", "pubsub"])
async def test_junk_is_dead_lettered_and_valid_messages_behind_it_are_handled(
    kind: str, private_redis: PrivateRedis, chaos_report: Report
) -> None:
    junk = [*collect_junk(30), BIG]
    assert len(junk) > 15
    box: MailboxSpec = {
        "list": list_mailbox("junk-list", lease=1.0),
        "stream": stream_mailbox("junk-stream", lease=1.0),
        "pubsub": channel_mailbox("junk-channel"),
    }[kind]
    handled: Counter[int] = Counter()
    system = ActorSystem(private_redis().url)

    @system.actor(mailbox=box, batch_size=10)
    async def sink(msg: Job) -> None:
        handled[msg.id] += 1

    valid_ids = list(range(1000, 1000 + len(junk)))
    expected_dead = len(junk)
    with trio.fail_after(60):
        async with system:
            for payload, n in zip(junk, valid_ids, strict=True):
                # Junk first, then a valid message right behind it.
                await system.transport.send(box, [payload, encode(Job(n, "ok"))])
            if kind == "stream":
                # Entries written by other clients with odd fields.
                client: Any = system.redis
                await client.xadd(box.name, {b"\xff\xfe": b"x"})
                await client.xadd(box.name, {"id": "not a number", "token": "t"})
                await client.xadd(box.name, {"id": "5"})
                expected_dead += 3
            while not (set(valid_ids) <= set(handled)):
                await trio.sleep(0.05)
            letters = await system.dead_letters(box, count=1000)
            while len(letters) < expected_dead:
                await trio.sleep(0.05)
                letters = await system.dead_letters(box, count=1000)
            assert failed_nodes(system.tree()) == []
            restarts = system.tree().find("system/sink-0")
    assert len(letters) == expected_dead
    assert all(letter.failure.reason.startswith("undecodable") for letter in letters)
    assert sorted(letter.payload for letter in letters[: len(junk)]) == sorted(junk)
    assert restarts is not None and restarts.restarts == 0
    tally = Tally.of(valid_ids, handled)
    assert tally.lost == 0 and tally.duplicated == 0
    chaos_report(
        f"junk in a {kind} mailbox (hypothesis, 30 examples + 10 MiB)",
        tally,
        recover_s=None,
        junk=expected_dead,
        dead_lettered=len(letters),
    )


async def _letters(system: ActorSystem, box: MailboxSpec, count: int) -> Any:
    """The dead letters of ``box`` once there are ``count`` (fails after 10 s)."""
    with trio.fail_after(10):
        while len(letters := await system.dead_letters(box)) < count:
            await trio.sleep(0.02)
    return letters


async def test_a_stream_entry_with_a_field_not_utf8_is_replayed_exactly(redis_url: str) -> None:
    """The whole entry is kept with its dead letter (every field, byte for byte, in
    order, repeated names too), and a replay writes the same fields and values back."""
    box = stream_mailbox("orders")
    system = ActorSystem(redis_url)

    @system.actor(mailbox=box)
    async def orders(msg: Job) -> None:
        raise AssertionError(f"not a valid order: {msg}")

    entry = [b"id", b"7", b"token", b"caf\xe9 \xff\xfe", b"\xfe\xffname", b"x", b"id", b"8"]
    with trio.fail_after(30):
        async with system:
            client: Any = system.redis
            await client.execute_command("XADD", "orders", "*", *entry)
            [letter] = await _letters(system, box, 1)
            assert "not UTF-8" in letter.failure.reason
            assert await system.replay_dead_letters(box) == 1
            [(_, replayed)] = await client.execute_command(
                b"XREVRANGE", "orders", "+", "-", "COUNT", 1, **RAW
            )
            # The replayed entry is dead-lettered again, again with all of it.
            [again] = await _letters(system, box, 1)
            while again.id == letter.id:
                [again] = await _letters(system, box, 1)
    assert replayed == entry
    assert again.payload == letter.payload


async def test_an_integer_too_large_is_dead_lettered_as_such(redis_url: str) -> None:
    box = list_mailbox("numbers")
    system = ActorSystem(redis_url)

    @system.actor(mailbox=box)
    async def numbers(n: int) -> None:
        raise AssertionError(f"too large to arrive: {n}")

    with trio.fail_after(30):
        async with system:
            client: Any = system.redis
            await client.rpush("numbers", "1234567890" * 500)  # 5,000 digits
            [letter] = await _letters(system, box, 1)
    assert letter.failure.reason == (
        "undecodable: integer too large: 5000 digits; JSON integers are limited to "
        f"{sys.get_int_max_str_digits()} digits (the handler expects int)"
    )
    assert letter.payload == b"1234567890" * 500


async def test_an_integer_too_large_in_a_stream_field_is_dead_lettered_as_such(
    redis_url: str,
) -> None:
    """Stream fields arrive as strings: one of 5,000 digits is named as what it is, as
    the same number in JSON is, not as "expected an integer"."""
    box = stream_mailbox("numbers")
    system = ActorSystem(redis_url)

    @system.actor(mailbox=box)
    async def numbers(job: Job) -> None:
        raise AssertionError(f"too large to arrive: {job}")

    with trio.fail_after(30):
        async with system:
            client: Any = system.redis
            await client.xadd("numbers", {"id": "1234567890" * 500, "token": "t"})
            [letter] = await _letters(system, box, 1)
    assert "integer too large: 5000 digits" in letter.failure.reason, letter.failure.reason
