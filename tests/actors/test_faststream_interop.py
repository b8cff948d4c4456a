"""FastStream interop against FastStream itself: a FastStream app (asyncio, in its own
process: tests/actors/faststream_app.py) and an actors app share mailboxes on one Redis.

FastStream's publish (list and stream) reaches our typed handler, its request gets our
reply; our tell reaches its pydantic handlers (list, and a stream's ``__data__`` field),
with headers; our ask gets its handler's reply. Both FastStream formats: its default
binary one, and its JSON one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis as redis_py
import trio

from actors import ActorSystem, FastStreamCodec, list_mailbox, stream_mailbox

pytest.importorskip("faststream.redis")
pytest.importorskip("pydantic")

APP = Path(__file__).with_name("faststream_app.py")


@attrs.frozen
class Order:
    item: str
    qty: int


@attrs.frozen
class Receipt:
    item: str
    total: int


@attrs.frozen
class Quote:
    item: str


@attrs.frozen
class Price:
    item: str
    cents: int


async def _until_ready(process: trio.Process) -> list[str]:
    """The lines ``process`` prints until ``ready``."""
    assert process.stdout is not None
    buffer = b""
    while b"ready\n" not in buffer:
        chunk = await process.stdout.receive_some()
        if not chunk:
            raise AssertionError(f"the FastStream app exited early: {buffer!r}")
        buffer += chunk
    return buffer.decode().splitlines()


def _seen(url: str, count: int) -> list[dict[str, Any]]:
    client = redis_py.Redis.from_url(url)
    try:
        return [json.loads(e) for e in client.lrange("fs-seen", 0, -1)][:count]
    finally:
        client.close()


@pytest.mark.parametrize("fmt", ["binary", "json"])
async def test_a_faststream_app_and_an_actors_app_share_mailboxes(redis_url: str, fmt: str) -> None:
    system = ActorSystem(redis_url, node="interop")
    codec = FastStreamCodec(format=fmt)  # type: ignore[arg-type]
    got: list[tuple[str, Order]] = []

    @system.actor(mailbox=list_mailbox("orders", codec=codec))
    async def orders(msg: Order) -> Receipt:
        got.append(("list", msg))
        return Receipt(msg.item, msg.qty * 10)

    @system.actor(mailbox=stream_mailbox("orders-stream", codec=codec))
    async def stream_orders(msg: Order) -> None:
        got.append(("stream", msg))

    async with system:
        command = [sys.executable, str(APP), redis_url, *(["json"] if fmt == "json" else [])]
        process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
        try:
            with trio.fail_after(60):
                *_, reply_line, _ready = await _until_ready(process)
            # FastStream's request got our handler's return value.
            assert json.loads(reply_line) == {"reply": {"item": "ink", "total": 30}}
            with trio.fail_after(20):
                while len(got) < 3:
                    await trio.sleep(0.02)
            assert sorted(got, key=lambda g: g[1].item) == [
                ("stream", Order("cap", 1)),
                ("list", Order("ink", 3)),
                ("list", Order("pen", 2)),
            ]

            # actors -> FastStream: tells to its pydantic handlers, with a header, and
            # an ask of a handler that returns a pydantic model.
            await system.tell(
                list_mailbox("fs-orders", codec=codec), Order("hat", 4), headers={"tenant": "t1"}
            )
            await system.tell(stream_mailbox("fs-stream", codec=codec), Order("scarf", 1))
            price = await system.ask(
                list_mailbox("fs-pricing", codec=codec), Quote("boat"), reply_type=Price
            )
            assert price == Price("boat", 400)
            with trio.fail_after(20):
                while len(seen := _seen(redis_url, 2)) < 2:
                    await trio.sleep(0.05)
            by_where = {entry["where"]: entry for entry in seen}
            assert by_where["list"]["order"] == {"item": "hat", "qty": 4}
            assert by_where["list"]["tenant"] == "t1"
            assert by_where["stream"]["order"] == {"item": "scarf", "qty": 1}
            await system.tell(list_mailbox("fs-stop", codec=codec), "stop")
            with trio.fail_after(30):
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
