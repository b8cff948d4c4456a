"""The README's wire-format session, written and read with plain redis-py: what a client
that knows nothing of this project sees in Redis and may write there.

redis-py's blocking client runs in worker threads here (a test's convenience; the runtime
itself does its I/O on trio sockets), so the system under test keeps running meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import redis
import trio

from actors import Actor, ActorSystem, AskTimeout, list_mailbox, stream_mailbox


@attrs.define
class Add:
    a: int
    b: int


@attrs.define
class Sum:
    total: int


class Adder(Actor):
    mailbox = list_mailbox("adder")
    max_deliveries = 1

    async def receive(self, msg: Add) -> Sum:
        if msg.b < 0:
            raise ValueError("negative")
        return Sum(msg.a + msg.b)


class Orders(Actor):
    mailbox = stream_mailbox("orders")
    seen: list[tuple[dict[str, Any], str]] = []

    async def receive(self, msg: dict[str, Any]) -> None:
        Orders.seen.append((msg, self.context.message.id))


async def _until(check: Callable[[], Any], what: str) -> Any:
    with trio.fail_after(10):
        while not (result := await trio.to_thread.run_sync(check)):
            await trio.sleep(0.02)
    assert result, what
    return result


async def test_the_readme_session_with_plain_redis_py(redis_url: str) -> None:
    Orders.seen = []
    plain = redis.Redis.from_url(redis_url)
    system = ActorSystem(url=redis_url)
    system.actor(Adder)
    system.actor(Orders)
    async with system:
        request = {
            "actors": 1,
            "id": "m-1",
            "type": "Add",
            "body": {"a": 2, "b": 3},
            "correlation_id": "c-1",
            "reply_to": "list:actors.reply.cli",
        }
        await trio.to_thread.run_sync(plain.rpush, "adder", json.dumps(request))
        reply = json.loads(
            await _until(lambda: plain.lpop("actors.reply.cli"), "a reply in actors.reply.cli")
        )
        assert reply["actors"] == 1
        assert (reply["type"], reply["body"], reply["correlation_id"]) == (
            "Sum",
            {"total": 5},
            "c-1",
        )
        assert isinstance(reply["id"], str) and isinstance(reply["sent_at"], float)

        # A foreign payload that fails: a dead letter of plain fields.
        await trio.to_thread.run_sync(plain.rpush, "adder", '{"a":2,"b":-1}')
        [(_, fields)] = await _until(
            lambda: plain.xrange("{adder}:dead"), "a dead letter in {adder}:dead"
        )
        assert {key.decode() for key in fields} == {
            "payload", "reason", "actor", "error_type", "error",
            "traceback", "attempts", "dead_at",
        }  # fmt: skip
        assert fields[b"payload"] == b'{"a":2,"b":-1}'
        assert (fields[b"reason"], fields[b"actor"]) == (b"failed 1 times", b"system/adder-0")
        assert (fields[b"error_type"], fields[b"error"]) == (b"ValueError", b"negative")
        assert b'raise ValueError("negative")' in fields[b"traceback"]
        assert fields[b"attempts"] == b"1"
        assert float(fields[b"dead_at"]) > 0

        # A stream entry of its own fields, and one carrying an envelope in `message`.
        entry_id = await trio.to_thread.run_sync(
            lambda: plain.xadd("orders", {"item": "apple", "qty": "3"})
        )
        envelope = {"actors": 1, "id": "o-2", "type": "dict", "body": {"item": "pear"}}
        await trio.to_thread.run_sync(
            lambda: plain.xadd("orders", {"message": json.dumps(envelope)})
        )
        with trio.fail_after(10):
            while len(Orders.seen) < 2:
                await trio.sleep(0.02)
    plain.close()
    assert Orders.seen == [
        ({"item": "apple", "qty": "3"}, entry_id.decode()),
        ({"item": "pear"}, "o-2"),
    ]


async def test_tell_and_ask_write_the_documented_envelope(redis_url: str) -> None:
    """What `tell` and `ask` write is the envelope the README's table describes, field for
    field, in the places it names: a list element, a stream entry's `message` field."""
    plain = redis.Redis.from_url(redis_url)
    system = ActorSystem(url=redis_url)
    async with system:
        await system.tell("list:jobs", Add(1, 2), headers={"tenant": "acme"})
        await system.tell("stream:events", Sum(3))
        with pytest.raises(AskTimeout):  # nobody answers: only the request is looked at
            await system.ask("list:questions", Add(4, 5), timeout=0.1)
    [raw] = plain.lrange("jobs", 0, -1)
    told = json.loads(raw)
    assert set(told) == {"actors", "id", "type", "body", "sent_at", "headers"}
    assert (told["actors"], told["type"], told["body"]) == (1, "Add", {"a": 1, "b": 2})
    assert told["headers"] == {"tenant": "acme"}
    [(_, fields)] = plain.xrange("events")
    assert list(fields) == [b"message"]
    assert json.loads(fields[b"message"])["body"] == {"total": 3}
    [raw] = plain.lrange("questions", 0, -1)
    asked = json.loads(raw)
    assert asked["reply_to"].startswith("list:actors.reply.")
    assert isinstance(asked["correlation_id"], str) and asked["correlation_id"]
    plain.close()
