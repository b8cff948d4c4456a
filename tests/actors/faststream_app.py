"""A FastStream app (asyncio) that shares mailboxes with an actors app, for
tests/actors/test_faststream_interop.py: ``python faststream_app.py REDIS_URL [json]``.

It publishes to the actors app (a list and a stream) and makes a ``request`` of it,
printing the reply as a JSON line, then prints ``ready`` and serves its own handlers,
which record what they get in the plain list ``fs-seen``, until a message comes on
``fs-stop``. ``json`` makes the broker write FastStream's older JSON format.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import redis.asyncio as aioredis
from faststream.redis import RedisBroker
from faststream.redis.annotations import RedisMessage
from faststream.redis.parser import BinaryMessageFormatV1
from faststream.redis.parser.message import MessageFormat
from pydantic import BaseModel


class JSONMessageFormat(MessageFormat):
    """FastStream's JSON format (``{"data": ..., "headers": ...}``), as FastStream 0.5
    and 0.6 wrote it; 0.7 only reads it, so it is spelled out here."""

    @classmethod
    async def encode(cls, **kwargs: Any) -> bytes:  # type: ignore[override]
        message = await cls.build(**kwargs)
        return json.dumps({"data": message.data.decode(), "headers": message.headers}).encode()

    @classmethod
    def parse(cls, data: bytes) -> tuple[bytes, dict[str, Any]]:
        return BinaryMessageFormatV1.parse(data)


class Order(BaseModel):
    item: str
    qty: int


class Quote(BaseModel):
    item: str


class Price(BaseModel):
    item: str
    cents: int


async def main(url: str, message_format: type[MessageFormat]) -> None:
    broker = RedisBroker(url, message_format=message_format, logger=None)  # stdout is ours
    seen = aioredis.Redis.from_url(url)
    stop = asyncio.Event()

    async def record(where: str, order: Order, message: Any) -> None:
        entry = {
            "where": where,
            "order": order.model_dump(),
            "tenant": message.headers.get("tenant"),
            "correlation_id": message.correlation_id,
        }
        await seen.rpush("fs-seen", json.dumps(entry))

    @broker.subscriber(list="fs-orders")
    async def take(order: Order, message: RedisMessage) -> None:
        await record("list", order, message)

    @broker.subscriber(stream="fs-stream")
    async def take_stream(order: Order, message: RedisMessage) -> None:
        await record("stream", order, message)

    @broker.subscriber(list="fs-pricing")
    async def price(quote: Quote) -> Price:
        return Price(item=quote.item, cents=100 * len(quote.item))

    @broker.subscriber(list="fs-stop")
    async def halt(body: str) -> None:
        stop.set()

    async with broker:
        await broker.start()
        # FastStream -> actors: a publish to a list and to a stream, and a request.
        await broker.publish(Order(item="pen", qty=2), list="orders", headers={"tenant": "a"})
        await broker.publish(Order(item="cap", qty=1), stream="orders-stream")
        response = await broker.request(Order(item="ink", qty=3), list="orders", timeout=30)
        print(json.dumps({"reply": await response.decode()}), flush=True)
        print("ready", flush=True)
        await stop.wait()
    await seen.aclose()


if __name__ == "__main__":
    chosen = JSONMessageFormat if sys.argv[2:] == ["json"] else BinaryMessageFormatV1
    asyncio.run(main(sys.argv[1], chosen))
