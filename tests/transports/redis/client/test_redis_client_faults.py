"""Fault tests for the trio Redis client on private servers: refused and broken
connections, restarts, wrong passwords, timeouts, TLS and URL handling."""

from __future__ import annotations

import errno
import socket
import ssl
from pathlib import Path

import pytest
import trio

from transports._backoff import Backoff
from transports._exceptions import (
    AuthenticationError,
    BrokenConnectionError,
    ConfigurationError,
    ConnectError,
    TransportTimeout,
)
from transports.redis import ConnectionConfig, from_url, parse_url
from transports.redis.client._errors import connect_error
from transports.testing import PrivateRedis, RedisServer, free_port

FAST = Backoff(min=0.01, max=0.05)


# -- refused, unreachable, DNS -----------------------------------------------------------


async def test_refused_port_is_a_clear_connect_error() -> None:
    port = free_port()
    async with from_url(f"redis://127.0.0.1:{port}/0", connect_retries=0) as client:
        with pytest.raises(ConnectError) as info:
            await client.ping()
    assert str(info.value) == f"cannot connect to redis://127.0.0.1:{port}/0: connection refused"
    assert isinstance(info.value.__cause__, OSError)
    assert client.pool.size == 0


async def test_refused_on_another_loopback_address_after_retries() -> None:
    port = free_port()
    url = f"redis://:secret-pw@127.0.0.2:{port}"
    async with from_url(url, connect_retries=2, backoff=FAST) as client:
        with trio.fail_after(2), pytest.raises(ConnectError, match="connection refused") as info:
            await client.get("k")
    assert "secret-pw" not in str(info.value)


@pytest.mark.chaos
async def test_connect_retries_until_the_server_is_up() -> None:
    port = free_port()
    server = RedisServer(port=port)
    try:
        backoff = Backoff(min=0.1, max=0.2, jitter=0)

        async def start_later() -> None:
            await trio.sleep(0.15)
            await trio.to_thread.run_sync(server.start)

        client = from_url(server.url, connect_retries=20, backoff=backoff)
        async with client, trio.open_nursery() as nursery:
            nursery.start_soon(start_later)
            with trio.fail_after(10):
                assert await client.ping() is True
    finally:
        server.cleanup()


def test_error_translation_of_dns_and_unreachable() -> None:
    url = "redis://nowhere.invalid:6379/0"
    dns = connect_error(url, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert isinstance(dns, ConnectError)
    assert str(dns) == f"cannot connect to {url}: cannot resolve host (Name or service not known)"
    unreachable = OSError(errno.EHOSTUNREACH, "No route to host")
    wrapped = OSError("all attempts to connect to nowhere failed")
    wrapped.__cause__ = ExceptionGroup("attempts", [unreachable])
    assert str(connect_error(url, wrapped)) == f"cannot connect to {url}: host unreachable"


# -- broken connections and restarts -----------------------------------------------------


@pytest.mark.chaos
async def test_server_killed_mid_command(private_redis: PrivateRedis) -> None:
    server = private_redis()
    async with from_url(server.url, connect_retries=0) as client:
        await client.ping()

        async def kill_soon() -> None:
            await trio.sleep(0.1)
            await trio.to_thread.run_sync(server.kill)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(kill_soon)
            with pytest.raises(BrokenConnectionError, match=r"connection to redis://127\.0\.0\.1"):
                await client.blpop(["q"], timeout=5)
        assert client.pool.size == 0
        with pytest.raises(ConnectError):
            await client.ping()
        server.start()
        assert await client.ping() is True


@pytest.mark.chaos
async def test_dedicated_connection_killed_mid_blocking_read(private_redis: PrivateRedis) -> None:
    server = private_redis()
    async with from_url(server.url, connect_retries=0) as client, client.dedicated() as conn:
        await conn.ping()

        async def kill_soon() -> None:
            await trio.sleep(0.1)
            await trio.to_thread.run_sync(server.kill)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(kill_soon)
            with pytest.raises(BrokenConnectionError):
                await conn.xread({"st": "$"}, block=0)
        assert conn.connection is None
        server.start()
        assert await conn.ping() is True


@pytest.mark.chaos
async def test_restart_recovers_on_the_next_command(private_redis: PrivateRedis) -> None:
    # fsync every write: the restart is a SIGKILL, and with the default (everysec) a slow
    # disk may hold back the last second of writes, which this test is not about.
    server = private_redis(appendonly=True, extra_args=["--appendfsync", "always"])
    async with from_url(server.url, max_connections=4) as client:

        async def use(i: int) -> None:
            await client.set(f"k{i}", i)

        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(use, i)
        assert client.pool.idle == 4
        await trio.to_thread.run_sync(server.restart)
        # Idle connections the server closed are noticed before use: no error at all.
        assert await client.mget(["k0", "k3"]) == [b"0", b"3"]
        assert client.pool.size == 1


@pytest.mark.chaos
async def test_pubsub_broken_by_a_restart(private_redis: PrivateRedis) -> None:
    server = private_redis()
    async with from_url(server.url) as client, client.pubsub() as ps:
        await ps.subscribe("c")
        await trio.to_thread.run_sync(server.restart)
        with pytest.raises(BrokenConnectionError):
            await ps.get_message(timeout=5)


# -- authentication ----------------------------------------------------------------------


async def test_wrong_password(private_redis: PrivateRedis) -> None:
    server = private_redis(extra_args=["--requirepass", "right-pw"])
    base = f"127.0.0.1:{server.port}"
    async with from_url(f"redis://:wrong-pw@{base}") as client:
        with trio.fail_after(2), pytest.raises(AuthenticationError) as info:
            await client.ping()  # never retried
        assert "wrong-pw" not in str(info.value)
        assert "wrong-pw" not in repr(client)
        assert "WRONGPASS" in str(info.value)
    async with from_url(f"redis://{base}") as client:
        with pytest.raises(AuthenticationError, match="NOAUTH"):
            await client.ping()
    async with from_url(f"redis://:right-pw@{base}") as client:
        assert await client.ping() is True
    async with from_url(f"redis://default:right-pw@{base}/2") as client:
        assert await client.ping() is True


async def test_password_where_none_is_needed(private_redis: PrivateRedis) -> None:
    server = private_redis()
    async with from_url(f"redis://:some-pw@127.0.0.1:{server.port}") as client:
        with pytest.raises(AuthenticationError) as info:
            await client.ping()
    assert "some-pw" not in str(info.value)


# -- timeouts ----------------------------------------------------------------------------


@pytest.mark.chaos
async def test_read_timeout_on_a_paused_server(private_redis: PrivateRedis) -> None:
    server = private_redis()
    async with from_url(server.url, read_timeout=0.3) as client:
        await client.set("k", "v")
        server.pause()
        try:
            start = trio.current_time()
            with pytest.raises(TransportTimeout, match="timed out waiting for a reply"):
                await client.get("k")
            assert 0.3 <= trio.current_time() - start < 1.5
            assert client.pool.size == 0
        finally:
            server.resume()
        assert await client.get("k") == b"v"


@pytest.mark.chaos
async def test_connect_timeout_on_a_paused_server(private_redis: PrivateRedis) -> None:
    server = private_redis()
    server.pause()
    try:
        async with from_url(server.url, connect_timeout=0.3) as client:
            with trio.fail_after(3), pytest.raises(TransportTimeout, match="connecting"):
                await client.ping()
            assert client.pool.size == 0
    finally:
        server.resume()


@pytest.mark.chaos
async def test_cancelling_a_plain_command_on_a_paused_server(
    private_redis: PrivateRedis,
) -> None:
    server = private_redis()
    async with from_url(server.url) as client:
        await client.set("k", "v")
        connection = client.pool._idle[0]
        server.pause()
        try:
            with trio.move_on_after(0.2) as scope:
                await client.get("k")
            assert scope.cancelled_caught
        finally:
            server.resume()
        assert connection.closed
        assert client.pool.size == 0
        assert await client.get("k") == b"v"
        assert client.pool.size == 1


# -- TLS ---------------------------------------------------------------------------------


async def test_tls(tls_server: RedisServer, tls_files: dict[str, Path]) -> None:
    url = f"{tls_server.url}?ssl_ca_certs={tls_files['ca']}&ssl_cert_reqs=required"
    async with from_url(url) as client:
        assert await client.set("k", b"v" * 100_000) is True
        assert await client.get("k") == b"v" * 100_000
        async with client.pipeline(transaction=False) as pipe:
            assert await pipe.incr("n").incr("n").execute() == [1, 2]
        async with client.pubsub() as ps:
            await ps.subscribe("c")
            await client.publish("c", "tls")
            message = await ps.get_message(timeout=2)
            assert message is not None
            assert message.data == b"tls"
        async with client.dedicated() as conn:
            with trio.move_on_after(0.1):
                await conn.blpop(["q"], timeout=0)
            assert conn.connection is None
            assert await conn.ping() is True


async def test_tls_with_an_untrusted_certificate(
    tls_server: RedisServer, tls_files: dict[str, Path]
) -> None:
    url = f"{tls_server.url}?ssl_ca_certs={tls_files['other_ca']}"
    async with from_url(url, connect_retries=0) as client:
        with trio.fail_after(3), pytest.raises(ConnectError, match="TLS handshake failed"):
            await client.ping()
    insecure = f"{tls_server.url}?ssl_cert_reqs=none"
    async with from_url(insecure) as client:
        assert await client.ping() is True


async def test_tls_client_to_a_plain_port(private_redis: PrivateRedis) -> None:
    server = private_redis()
    url = f"rediss://127.0.0.1:{server.port}?ssl_cert_reqs=none"
    async with from_url(url, connect_retries=0, connect_timeout=0.5) as client:
        # A plain server may wait for the end of the "line" the TLS hello started:
        # then the handshake times out; else the TLS layer fails on its error reply.
        with trio.fail_after(3), pytest.raises((ConnectError, TransportTimeout), match="TLS"):
            await client.ping()


async def test_plain_client_to_a_tls_port(tls_server: RedisServer) -> None:
    url = f"redis://127.0.0.1:{tls_server.tls_port}"
    async with from_url(url, connect_retries=0) as client:
        with trio.fail_after(3), pytest.raises(ConnectError, match="want TLS"):
            await client.ping()


# -- URLs --------------------------------------------------------------------------------


def test_parse_url() -> None:
    assert parse_url("redis://u:p%40ss@example.com:6380/2?client_name=me") == {
        "host": "example.com",
        "port": 6380,
        "username": "u",
        "password": "p@ss",
        "db": 2,
        "client_name": "me",
    }
    assert parse_url("rediss://h?ssl_cert_reqs=none&socket_timeout=1.5")["tls"] is True
    assert parse_url("redis://h?socket_timeout=1.5&decode_responses=true") == {
        "host": "h",
        "read_timeout": 1.5,
        "decode_responses": True,
    }
    assert parse_url("unix:///tmp/redis.sock?db=3") == {"path": "/tmp/redis.sock", "db": 3}


@pytest.mark.parametrize(
    "url",
    [
        "http://:hunter2@localhost",
        "redis://:hunter2@localhost?bogus=1",
        "redis://:hunter2@localhost?max_connections=many",
        "redis://:hunter2@localhost?ssl_cert_reqs=maybe",
    ],
)
def test_bad_urls_hide_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        from_url(url)
    assert "hunter2" not in str(info.value)


def test_password_never_in_repr() -> None:
    config = ConnectionConfig(host="h", username="me", password="hunter2")
    assert "hunter2" not in repr(config)
    assert config.display_url == "redis://me@h:6379/0"
    client = from_url("rediss://me:hunter2@h:1/4")
    assert "hunter2" not in repr(client)
    assert client.url == "rediss://me@h:1/4"


async def test_unix_socket(private_redis: PrivateRedis, tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    private_redis(extra_args=["--unixsocket", str(path), "--unixsocketperm", "700"])
    async with from_url(f"unix://{path}?db=1") as client:
        assert await client.set("k", "v") is True
        assert await client.get("k") == b"v"
        assert client.url == f"unix://{path}"
    async with from_url(f"unix://{tmp_path}/missing.sock", connect_retries=0) as client:
        with pytest.raises(ConnectError, match="no such socket file"):
            await client.ping()


def test_ssl_context_options(tls_files: dict[str, Path]) -> None:
    config = ConnectionConfig(tls=True, ssl_cert_reqs="optional", ssl_ca_certs=str(tls_files["ca"]))
    assert config.ssl_context().verify_mode == ssl.CERT_OPTIONAL
    bad = ConnectionConfig(tls=True, ssl_ca_certs="/nonexistent/ca.pem")
    with pytest.raises(ConfigurationError, match="TLS files"):
        bad.ssl_context()
