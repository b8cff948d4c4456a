"""`actors.client`: the blocking and the asyncio client against a system that
`python -m actors run` runs, from a plain script's code and from a Starlette app under
httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actors import AskTimeout, ConfigurationError, RemoteError, list_mailbox
from actors.client import AsyncClient, Client
from tests.actors.client_system import Add, Adder, Journal, Sum, Tally, system
from transports import ConnectError, TransportError
from transports.testing import free_port

SYSTEM_FILE = Path(__file__).with_name("client_system.py")


@pytest.fixture
def running(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """`python -m actors run` of client_system.py on ``redis_url``; yields the URL."""
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "actors", "run", str(SYSTEM_FILE), "--url", redis_url],
            stderr=out,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )
    try:
        deadline = time.monotonic() + 20
        while "actor system running" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield redis_url
    finally:
        proc.terminate()
        proc.wait(10)


def _journal(url: str, count: int) -> list[str]:
    plain = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while plain.llen("client.journal") < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [line.decode() for line in plain.lrange("client.journal", 0, -1)]
    finally:
        plain.close()


def test_the_blocking_client_tells_and_asks_a_running_system(running: str) -> None:
    with Client(running) as client:
        # An actor class as target: the reply is structured as its handler's annotation.
        assert client.ask(Adder, Add(2, 3)) == Sum(5)
        assert client.ask("list:client.adder", Add(1, 1)) == {"total": 2}  # plain JSON
        assert client.ask("list:client.adder", Add(1, 1), reply_type=Sum) == Sum(2)
        client.tell(Journal, Sum(7), headers={"tenant": "acme"})
        client.tell_many("stream:client.events", [Sum(8), Sum(9)])
        with pytest.raises(RemoteError, match="negative") as caught:
            client.ask(Adder, Add(1, -1))
        assert caught.value.error_type == "Rejected"
        with pytest.raises(AskTimeout):
            client.ask(list_mailbox("client.nobody"), Add(1, 1), timeout=0.2)
    assert _journal(running, 3) == ["7 {'tenant': 'acme'}", "8 {}", "9 {}"]


def test_the_clients_send_later(running: str) -> None:
    """A delay or a time: Redis holds the message, the running system delivers it."""
    plain = redis.Redis.from_url(running)
    with Client(running) as client:
        client.tell(Journal, Sum(21), delay=0.3)
        assert plain.zcard("{client.events}:scheduled") == 1  # held, not in the stream
        assert plain.xlen("client.events") == 0
        with pytest.raises(ConfigurationError, match="pub/sub"):
            client.tell("pubsub:client.news", Sum(0), delay=1)

    async def main() -> None:
        async with AsyncClient(running) as client:
            await client.tell_many(
                Journal, [Sum(22)], at=datetime.now(UTC) + timedelta(seconds=0.2)
            )

    asyncio.run(main())
    assert sorted(_journal(running, 2)) == ["21 {}", "22 {}"]
    plain.close()


def test_names_resolve_through_a_system(running: str) -> None:
    """With ``system=``, actor and mailbox names work, and replies are typed."""
    with Client(running, system=system) as client:
        assert client.ask("adder", Add(4, 5)) == Sum(9)
        assert client.ask("client.adder", Add(4, 6)) == Sum(10)
    with Client(running) as client, pytest.raises(ConfigurationError, match="unknown target"):
        client.tell("adder", Add(1, 1))


def test_a_redis_py_client_of_ones_own_is_used_and_left_open(running: str) -> None:
    own = redis.Redis.from_url(running, decode_responses=True)
    with Client(redis=own) as client:
        assert client.ask(Adder, Add(20, 22)) == Sum(42)
    assert own.ping()  # not closed by the client
    own.close()
    with pytest.raises(ConfigurationError, match="not both"):
        Client(running, redis=own)


def test_store_failures_are_the_runtime_s_errors() -> None:
    with Client(f"redis://127.0.0.1:{free_port()}") as client:
        with pytest.raises(ConnectError) as caught:
            client.tell("list:jobs", 1)
        assert isinstance(caught.value, TransportError)
        assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    with pytest.raises(ConfigurationError, match="redis-py client of that kind"):
        Client("redis+cluster://127.0.0.1:7000")


def test_the_asyncio_client_answers_many_concurrent_asks(running: str) -> None:
    async def main() -> list[Any]:
        async with AsyncClient(running) as client:
            await client.tell(Journal, Sum(1))
            replies = await asyncio.gather(*(client.ask(Adder, Add(n, n)) for n in range(50)))
            with pytest.raises(RemoteError):
                await client.ask(Adder, Add(1, -1))
            with pytest.raises(AskTimeout):
                await client.ask("list:client.nobody", 1, timeout=0.2)
            return replies

    assert asyncio.run(main()) == [Sum(2 * n) for n in range(50)]
    assert _journal(running, 1) == ["1 {}"]


def test_a_starlette_app_asks_actors_through_httpx_test_client(running: str) -> None:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        async with AsyncClient(running, system=system) as client:
            app.state.actors = client
            yield

    async def add(request: Request) -> JSONResponse:
        body = await request.json()
        total = await request.app.state.actors.ask("adder", Add(body["a"], body["b"]))
        return JSONResponse({"total": total.total})

    async def record(request: Request) -> JSONResponse:
        await request.app.state.actors.tell(Journal, Sum(int(request.path_params["n"])))
        return JSONResponse({}, status_code=202)

    app = Starlette(
        routes=[
            Route("/add", add, methods=["POST"]),
            Route("/record/{n}", record, methods=["POST"]),
        ],
        lifespan=lifespan,
    )

    async def main() -> None:
        # httpx's ASGI transport runs no lifespan: the app's own is entered here.
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                sums = await asyncio.gather(
                    *(http.post("/add", json={"a": n, "b": 23}) for n in range(20))
                )
                assert [response.json() for response in sums] == [
                    {"total": n + 23} for n in range(20)
                ]
                assert (await http.post("/record/5")).status_code == 202

    asyncio.run(main())
    assert _journal(running, 1) == ["5 {}"]


def test_the_clients_route_to_a_keyed_actors_partitions(running: str) -> None:
    with Client(running) as client:
        client.tell(Tally, Add(0, 5), key="alice")
        client.tell_many(Tally, [Add(1, 2), Add(1, 3)])  # key_of: "k1"
        assert client.ask(Tally, Add(0, 1), key="alice") == Sum(6)
        with pytest.raises(ConfigurationError, match="not a keyed actor"):
            client.tell(Adder, Add(1, 1), key="x")
    with Client(running, system=system) as client:  # by name: the system's registry
        assert client.ask("client.tally", Add(1, 0)) == Sum(5)

    async def use_async() -> Any:
        async with AsyncClient(running) as client:
            await client.tell(Tally, Add(0, 10), key="bob")
            return await client.ask(Tally, Add(0, 1), key="bob")

    assert asyncio.run(use_async()) == Sum(11)
