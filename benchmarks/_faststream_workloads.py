"""The runtime workloads on FastStream's RedisBroker, used the way its documentation shows.

Each function runs inside its own ``asyncio.run`` and returns a :class:`Rate` (or latency
samples). Mailboxes are pre-filled by a separate publisher broker with FastStream's own
wire format (``publish_batch`` for lists, ``publish`` for streams; not timed); the timed
broker then starts its subscribers and drains them. Choices, stated once:

* the message is a pydantic model with the same fields as ``Job`` (FastStream's typed
  messages are pydantic models; it cannot structure attrs classes);
* ``logger=None``: FastStream otherwise logs two lines per message at INFO, which
  would cost it throughput and flood the benchmark's output;
* batch subscribers and stream subscribers read ``max_records=BATCH`` per round trip, as
  our runtime and the raw drain do (FastStream's defaults are 10 for a list batch and
  *everything* for a stream);
* a list subscriber is at-most-once in FastStream (``BLPOP``/``LPOP``, no ack exists);
  a stream subscriber in a consumer group acks (``XACK``) after the handler returns.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio
from _common import BATCH, FILL_CHUNK, PREFIX, Rate, WorkloadTimeout, chunks, job_fields
from faststream.redis import ListSub, RedisBroker, StreamSub
from pydantic import BaseModel

__all__ = [
    "GROUP",
    "JobModel",
    "faststream_ask",
    "faststream_list_drain",
    "faststream_pipeline",
    "faststream_stream_drain",
    "faststream_version",
]

GROUP = f"{PREFIX}-fs"


class JobModel(BaseModel):
    """The benchmark message for FastStream: ``Job``'s fields as a pydantic model."""

    id: int
    name: str
    payload: str


def faststream_version() -> str:
    """The installed FastStream version."""
    from importlib.metadata import version

    return version("faststream")


def _broker(url: str) -> RedisBroker:
    return RedisBroker(url, logger=None)


async def _fill_list(url: str, name: str, n: int) -> None:
    async with _broker(url) as publisher:
        for part in chunks(n):
            await publisher.publish_batch(*(JobModel(**job_fields(i)) for i in part), list=name)


async def _fill_stream(url: str, name: str, n: int) -> None:
    # FastStream's group starts at "$" (new entries only): create it at 0 first, so
    # the subscriber reads what was published before it started.
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.xgroup_create(name, GROUP, id="0", mkstream=True)
    finally:
        await client.aclose()
    async with _broker(url) as publisher:
        for part in chunks(n, FILL_CHUNK // 10):  # concurrent publishes, not one pipeline
            await asyncio.gather(
                *(publisher.publish(JobModel(**job_fields(i)), stream=name) for i in part)
            )


class _Counter:
    """Counts handled messages; ``done`` is set at ``n``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.done = asyncio.Event()

    def add(self, k: int = 1) -> None:
        self.count += k
        if self.count >= self.n:
            self.done.set()


async def _time_drain(broker: RedisBroker, counter: _Counter, label: str, timeout: float) -> Rate:
    """Start ``broker`` and time until ``counter`` is done (start-up included)."""
    async with broker:  # connects; leaving it stops the subscribers and disconnects
        try:
            async with asyncio.timeout(timeout):
                start = time.perf_counter()
                await broker.start()
                await counter.done.wait()
                elapsed = time.perf_counter() - start
        except TimeoutError:
            raise WorkloadTimeout(
                f"{label}: handled {counter.count}/{counter.n} within {timeout}s"
            ) from None
        await asyncio.sleep(0.05)  # let the last ack land before stopping (not timed)
    return Rate(counter.count, elapsed)


async def faststream_list_drain(
    url: str, name: str, n: int, timeout: float, *, batch: bool
) -> Rate:
    """W1: drain a pre-filled list with one ``ListSub`` subscriber (per message or batch).

    Raises:
        WorkloadTimeout: not drained within ``timeout`` seconds.
    """
    await _fill_list(url, name, n)
    broker = _broker(url)
    counter = _Counter(n)
    if batch:

        @broker.subscriber(list=ListSub(name, batch=True, max_records=BATCH))
        async def handle_batch(msgs: list[JobModel]) -> None:
            counter.add(len(msgs))

    else:

        @broker.subscriber(list=ListSub(name))
        async def handle(msg: JobModel) -> None:
            counter.add()

    return await _time_drain(broker, counter, f"FastStream list batch={batch}", timeout)


async def faststream_stream_drain(
    url: str, name: str, n: int, timeout: float, *, batch: bool
) -> Rate:
    """W2: drain a pre-filled stream with one ``StreamSub`` consumer-group subscriber (acks).

    Raises:
        WorkloadTimeout: not drained within ``timeout`` seconds.
    """
    await _fill_stream(url, name, n)
    broker = _broker(url)
    counter = _Counter(n)
    if batch:
        sub = StreamSub(name, group=GROUP, consumer="c0", batch=True, max_records=BATCH)

        @broker.subscriber(stream=sub)
        async def handle_batch(msgs: list[JobModel]) -> None:
            counter.add(len(msgs))

    else:

        @broker.subscriber(stream=StreamSub(name, group=GROUP, consumer="c0", max_records=BATCH))
        async def handle(msg: JobModel) -> None:
            counter.add()

    return await _time_drain(broker, counter, f"FastStream stream batch={batch}", timeout)


async def faststream_pipeline(url: str, first: str, second: str, n: int, timeout: float) -> Rate:
    """W3: list ``first`` -> subscriber A -> publisher to list ``second`` -> subscriber B.

    Raises:
        WorkloadTimeout: B has not handled all ``n`` within ``timeout`` seconds.
    """
    await _fill_list(url, first, n)
    broker = _broker(url)
    counter = _Counter(n)

    @broker.subscriber(list=ListSub(first))
    @broker.publisher(list=second)
    async def hop_a(msg: JobModel) -> JobModel:
        return msg

    @broker.subscriber(list=ListSub(second))
    async def hop_b(msg: JobModel) -> None:
        counter.add()

    return await _time_drain(broker, counter, "FastStream pipeline", timeout)


async def faststream_ask(url: str, name: str, m: int, warmup: int, timeout: float) -> list[float]:
    """W4: ``m`` sequential ``broker.request`` round trips to a list subscriber returning a value.

    Returns the latencies in seconds (after ``warmup`` untimed requests).

    Raises:
        WorkloadTimeout: the whole run took longer than ``timeout`` seconds.
        AssertionError: a reply was not the expected value.
    """
    broker = _broker(url)

    @broker.subscriber(list=ListSub(name))
    async def answer(msg: JobModel) -> int:
        return msg.id

    samples: list[float] = []
    async with broker:
        await broker.start()
        try:
            async with asyncio.timeout(timeout):
                for i in range(warmup + m):
                    job = JobModel(**job_fields(i))
                    start = time.perf_counter()
                    reply = await broker.request(job, list=name, timeout=5.0)
                    value = await reply.decode()
                    elapsed = time.perf_counter() - start
                    assert value == i, f"FastStream replied {value!r} to request {i}"
                    if i >= warmup:
                        samples.append(elapsed)
        except TimeoutError:
            raise WorkloadTimeout(
                f"FastStream request: {len(samples)}/{m} round trips within {timeout}s"
            ) from None
    return samples
