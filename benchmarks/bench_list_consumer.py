"""The list mailbox consumer on its own: drain throughput and ping-pong latency.

    python benchmarks/bench_list_consumer.py [--n 20000] [--pings 2000] [--rounds 3] [--pin]

Uses ``--url``, else ``REDIS_URL``, else starts a private ``redis-server``. Only keys
containing ``bench-lc`` are written (and deleted between workloads). No runtime:
the transport's ``ListConsumer`` is driven directly with ``fetch`` / ``ack``.

* drain: N distinct ~100-byte payloads pre-filled (not timed), then
  ``fetch(100)`` (+ ``ack(batch)`` when at-least-once) until N came back.
* ping-pong: one task ``RPUSH``es a message and waits until the consumer task's
  ``fetch`` returned it (the consumer acks it afterwards when at-least-once, as the
  runtime does after handling), M times in sequence, 2 ms apart so that the consumer
  is blocked waiting each time (as between asks); p50/p99 of that latency.
* ask: W4's path on the transport alone, back to back: ``RPUSH`` to an
  at-least-once list; its consumer fetches, sends the reply to an at-most-once
  list, acks; the reply list's consumer fetches it; p50/p99 of the round trip.
* raw: the same with bare commands on our trio client (``LPOP name 100`` drain;
  ``RPUSH`` + ``BLPOP`` ping-pong), the floor for any consumer on this client.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import trio
from _common import bench_url

from transports import MailboxSpec
from transports.redis import RedisTransport

PREFIX = "bench-lc"
BATCH = 100
FILL_CHUNK = 1000


def payload(i: int) -> bytes:
    """A distinct ~100-byte JSON payload."""
    head = f'{{"id":{i},"name":"job-{i}","payload":"'
    return (head + "x" * max(0, 97 - len(head)) + '"}').encode()


async def _clean(transport: RedisTransport) -> None:
    client = transport.client
    keys = [key async for key in client.scan_iter(match=f"*{PREFIX}*", count=1000)]
    for start in range(0, len(keys), 500):
        await client.delete(*keys[start : start + 500])


async def _fill(transport: RedisTransport, name: str, n: int) -> None:
    for start in range(0, n, FILL_CHUNK):
        chunk = [payload(i) for i in range(start, min(n, start + FILL_CHUNK))]
        await transport.client.rpush(name, *chunk)


async def drain(url: str, n: int, at_most_once: bool) -> float:
    """Messages per second through ``fetch`` (+ ``ack``)."""
    name = f"{PREFIX}-drain"
    spec = MailboxSpec("list", name, at_most_once=at_most_once)
    async with RedisTransport.from_url(url) as transport:
        await _clean(transport)
        await _fill(transport, name, n)
        async with transport.consumer(spec, "worker") as consumer:
            got = 0
            start = time.perf_counter()
            while got < n:
                batch = await consumer.fetch(BATCH)
                if not at_most_once:
                    await consumer.ack(batch)
                got += len(batch)
            elapsed = time.perf_counter() - start
        assert got == n, (got, n)
        await _clean(transport)
    return n / elapsed


async def raw_drain(url: str, n: int) -> float:
    """``LPOP name 100`` until N came back, on our client (no consumer)."""
    name = f"{PREFIX}-raw"
    async with RedisTransport.from_url(url) as transport:
        await _clean(transport)
        await _fill(transport, name, n)
        client = transport.client
        got = 0
        start = time.perf_counter()
        while got < n:
            items = await client.execute_command(b"LPOP", name, BATCH)
            got += len(items)
        elapsed = time.perf_counter() - start
        await _clean(transport)
    return n / elapsed


async def ping_pong(
    url: str, m: int, warmup: int, at_most_once: bool | None, gap: float = 0.002
) -> list[float]:
    """Latencies (s) from ``RPUSH`` to the consumer's ``fetch`` returning the message.

    ``at_most_once=None``: raw ``BLPOP`` on a second connection instead of a consumer.
    """
    name = f"{PREFIX}-ping"
    samples: list[float] = []
    async with RedisTransport.from_url(url) as transport:
        await _clean(transport)
        client = transport.client
        send, receive = trio.open_memory_channel[bytes](1)
        message = payload(0)

        async def consume_raw(task_status: trio.TaskStatus[None]) -> None:
            async with client.dedicated(read_timeout=None) as conn:
                task_status.started()
                while True:
                    reply = await conn.execute_command(b"BLPOP", name, b"5")
                    if reply is not None:
                        await send.send(reply[1])

        async def consume(task_status: trio.TaskStatus[None]) -> None:
            spec = MailboxSpec("list", name, at_most_once=bool(at_most_once))
            async with transport.consumer(spec, "pong") as consumer:
                task_status.started()
                while True:
                    batch = await consumer.fetch(BATCH)
                    for delivery in batch:
                        await send.send(delivery.payload)
                    await consumer.ack(batch)

        async with trio.open_nursery() as nursery:
            await nursery.start(consume_raw if at_most_once is None else consume)
            await trio.sleep(0.05)
            for i in range(warmup + m):
                start = time.perf_counter()
                await client.execute_command(b"RPUSH", name, message)
                got = await receive.receive()
                elapsed = time.perf_counter() - start
                assert got == message
                if i >= warmup:
                    samples.append(elapsed)
                # Let the consumer ack and block again, as between asks.
                await trio.sleep(gap)
            nursery.cancel_scope.cancel()
        await _clean(transport)
    return samples


async def ask_round_trip(url: str, m: int, warmup: int) -> list[float]:
    """Latencies (s) of W4's path on the transport alone: RPUSH to an at-least-once
    list; its consumer fetches, sends a reply to an at-most-once list, then acks;
    the reply list's consumer fetches it and hands it to the asker."""
    name, replies = f"{PREFIX}-ask", f"{PREFIX}-reply"
    samples: list[float] = []
    async with RedisTransport.from_url(url) as transport:
        await _clean(transport)
        client = transport.client
        send, receive = trio.open_memory_channel[bytes](1)
        reply_spec = MailboxSpec("list", replies, at_most_once=True)
        message = payload(0)

        async def answer(task_status: trio.TaskStatus[None]) -> None:
            async with transport.consumer(MailboxSpec("list", name), "answer") as consumer:
                task_status.started()
                while True:
                    batch = await consumer.fetch(BATCH)
                    await transport.send(reply_spec, [d.payload for d in batch])
                    await consumer.ack(batch)

        async def read_replies(task_status: trio.TaskStatus[None]) -> None:
            async with transport.consumer(reply_spec, "replies") as consumer:
                task_status.started()
                while True:
                    for delivery in await consumer.fetch(BATCH):
                        await send.send(delivery.payload)

        async with trio.open_nursery() as nursery:
            await nursery.start(answer)
            await nursery.start(read_replies)
            for i in range(warmup + m):
                start = time.perf_counter()
                await client.execute_command(b"RPUSH", name, message)
                assert await receive.receive() == message
                if i >= warmup:
                    samples.append(time.perf_counter() - start)
            nursery.cancel_scope.cancel()
        await _clean(transport)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(sorted(samples), n=100, method="inclusive")
    return {"p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000}


def _best(run: Callable[[], float], rounds: int) -> float:
    return max(run() for _ in range(rounds))


def _best_latency(run: Callable[[], list[float]], rounds: int) -> dict[str, float]:
    summaries = [_summary(run()) for _ in range(rounds)]
    return min(summaries, key=lambda s: s["p50_ms"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="messages per drain")
    parser.add_argument("--pings", type=int, default=2000, help="round trips per ping-pong")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument("--url", help="Redis URL (default: $REDIS_URL, else a private server)")
    parser.add_argument("--pin", action="store_true", help="pin server and benchmark to one CPU")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    options = parser.parse_args()

    n, rounds, pings = options.n, options.rounds, options.pings
    warmup = min(200, pings)
    with bench_url(options.url, pin=options.pin) as url:
        results: dict[str, Any] = {
            "drain_alo_msg_s": _best(lambda: trio.run(drain, url, n, False), rounds),
            "drain_amo_msg_s": _best(lambda: trio.run(drain, url, n, True), rounds),
            "drain_raw_msg_s": _best(lambda: trio.run(raw_drain, url, n), rounds),
        }
        for label, mode in (("alo", False), ("amo", True), ("raw", None)):
            results[f"ping_{label}"] = _best_latency(
                partial(trio.run, ping_pong, url, pings, warmup, mode), rounds
            )
        results["ask"] = _best_latency(
            partial(trio.run, ask_round_trip, url, pings, warmup), rounds
        )
    if options.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"server {url}; N={n}, pings={pings}, best of {rounds}")
    print(f"{'drain msg/s':<24}{'at-least-once':>15}{'at-most-once':>14}{'raw LPOP 100':>14}")
    print(
        f"{'':<24}{results['drain_alo_msg_s']:>15,.0f}{results['drain_amo_msg_s']:>14,.0f}"
        f"{results['drain_raw_msg_s']:>14,.0f}"
    )
    print(f"{'ping-pong ms (p50/p99)':<24}", end="")
    for label in ("alo", "amo", "raw"):
        s = results[f"ping_{label}"]
        print(f"{s['p50_ms']:>8.3f}/{s['p99_ms']:.3f}", end="")
    print("   (at-least-once, at-most-once, raw BLPOP)")
    ask = results["ask"]
    print(f"{'ask path ms (p50/p99)':<24}{ask['p50_ms']:>8.3f}/{ask['p99_ms']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
