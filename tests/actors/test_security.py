"""Security: payloads are data only; passwords never leak; ACL users and TLS work end to
end; bad URLs, wrong credentials and TLS mismatches are one clear line on the CLI."""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis
import trio

from actors import (
    ActorSystem,
    AuthenticationError,
    ConfigurationError,
    Reject,
    TransportError,
    list_mailbox,
    stream_mailbox,
)
from actors._codec import decode, encode
from tests.chaos.conftest import Runtime, wait_for
from transports.testing import PrivateRedis, RedisServer

PW = "s3cret-Pa55word"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")

SYSTEM = textwrap.dedent(
    """
    from actors import ActorContext, ActorSystem

    system = ActorSystem()

    @system.actor(list="jobs", batch_size=10)
    async def work(n: int, context: ActorContext) -> int:
        await context.redis.sadd("done", n)
        return n * 2
    """
)


@pytest.fixture
def system_file(tmp_path: Path) -> Path:
    path = tmp_path / "secure_system.py"
    path.write_text(SYSTEM)
    return path


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "actors", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "ACTORS_URL"},
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one 'error: ...' line of a failed run; besides it only log lines, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    others = [line for line in lines if not LOG_LINE.match(line) and line not in errors]
    assert others == [], result.stderr
    return errors[0]


# -- payloads are data only ------------------------------------------------------------------


@attrs.frozen
class Job:
    id: int


class _Exploit:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


async def test_forged_types_never_reach_a_handler(redis_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    box = list_mailbox("inbox")
    received: list[Any] = []
    system = ActorSystem(redis_url)

    @system.actor(mailbox=box)
    async def inbox(msg: Job | str) -> None:
        received.append(msg)

    forged = [
        {"actors": 1, "id": "f1", "type": "os.system", "body": f"touch {marker}"},
        {"actors": 1, "id": "f2", "type": "subprocess.Popen", "body": ["touch", str(marker)]},
        {"actors": 1, "id": "f3", "type": "builtins.eval", "body": "__import__('os')"},
        {"actors": 1, "id": "f4", "type": "Exploit", "body": {"id": 1}},
        {"actors": 1, "id": "f5", "type": "__main__.Job", "body": {"id": 1}},
    ]
    payloads = [json.dumps(f).encode() for f in forged]
    binary_pickle = pickle.dumps(_Exploit(marker), protocol=5)  # not UTF-8: dead-lettered
    text_pickle = pickle.dumps(_Exploit(marker), protocol=0)  # ASCII: at most a str
    with trio.fail_after(20):
        async with system:
            await system.transport.send(box, [*payloads, binary_pickle, text_pickle])
            await system.tell(box, Job(7))
            while Job(7) not in received:
                await trio.sleep(0.05)
            letters = await system.dead_letters(box)
    assert not marker.exists()
    reasons = [letter.failure.reason for letter in letters]
    assert len(letters) == len(forged) + 1, reasons
    for name in ("os.system", "subprocess.Popen", "builtins.eval", "Exploit", "__main__.Job"):
        assert any(f"no handler takes messages of type {name!r}" in r for r in reasons), reasons
    assert any("not UTF-8" in r for r in reasons)
    # Only data reached the handler: the text pickle as a plain string, and the valid Job.
    assert received == [text_pickle.decode(), Job(7)]


# -- passwords ----------------------------------------------------------------------------------


@pytest.fixture
def password_server(private_redis: PrivateRedis) -> RedisServer:
    return private_redis(extra_args=["--requirepass", PW])


@pytest.mark.parametrize(
    ("userinfo", "problem"),
    [(f":wrong-{PW}@", "WRONGPASS"), ("", "NOAUTH"), (f"nobody:{PW}@", "WRONGPASS")],
)
def test_wrong_password_via_the_cli_is_one_line_without_the_password(
    password_server: RedisServer, system_file: Path, userinfo: str, problem: str
) -> None:
    url = f"redis://{userinfo}127.0.0.1:{password_server.port}/0"
    result = run_cli("run", str(system_file), "--url", url)
    assert result.returncode == 1
    line = one_error_line(result)
    assert problem in line
    assert f"127.0.0.1:{password_server.port}" in line
    assert PW not in result.stderr
    debug = run_cli("run", str(system_file), "--url", url, "--log-level", "DEBUG")
    assert debug.returncode == 1
    assert PW not in debug.stderr and PW not in debug.stdout


async def test_wrong_password_in_process_never_logs_the_password(
    password_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    system = ActorSystem(f"redis://:wrong-{PW}@127.0.0.1:{password_server.port}/0")

    @system.actor(list="jobs")
    async def work(n: int) -> None: ...

    with trio.fail_after(10), pytest.raises(AuthenticationError) as info:
        await system.run()
    assert "WRONGPASS" in str(info.value)
    assert PW not in str(info.value) and PW not in repr(info.value)
    assert PW not in caplog.text


@pytest.mark.chaos
def test_right_password_works_end_to_end_and_is_never_logged(
    password_server: RedisServer, system_file: Path
) -> None:
    url = f"redis://:{PW}@127.0.0.1:{password_server.port}/0"
    db = redis.Redis(port=password_server.port, password=PW)
    runtime = Runtime(system_file, url, {})
    try:
        runtime.start()
        db.rpush("jobs", *[encode(n) for n in range(50)])
        wait_for(lambda: db.scard("done") == 50, 20, "50 jobs done")
        assert runtime.terminate() == 0
    finally:
        runtime.stop_now()
        db.close()
    assert "actor system running on redis://:***@127.0.0.1" in runtime.stderr
    assert PW not in runtime.stderr


# -- ACL users ----------------------------------------------------------------------------------

APP_KEYS = [
    "~jobs",
    "~{jobs}:*",
    "~done",
    "~actors.reply.*",
    "~{actors.reply.*}:*",
    "~{actors:nodes}*",
    "~{actors:scheduled}*",
]


@pytest.fixture
def acl_server(private_redis: PrivateRedis) -> RedisServer:
    server = private_redis()
    admin = redis.Redis(port=server.port)
    admin.execute_command(
        "ACL", "SETUSER", "app", "on", ">app-pw", "resetkeys", *APP_KEYS,
        "resetchannels", "&*", "+@all", "-@dangerous",
    )  # fmt: skip
    admin.execute_command(
        "ACL", "SETUSER", "narrow", "on", ">narrow-pw", "resetkeys", "~other:*", "+@all"
    )
    admin.close()
    return server


async def test_acl_user_limited_to_the_projects_keys_runs_end_to_end(
    acl_server: RedisServer,
) -> None:
    system = ActorSystem(f"redis://app:app-pw@127.0.0.1:{acl_server.port}/0")

    @system.actor(list="jobs", batch_size=10)
    async def work(n: int) -> int:
        return n * 2

    with trio.fail_after(20):
        async with system:
            await system.tell_many("jobs", list(range(20)))
            assert await system.ask("jobs", 21, timeout=10) == 42
            stats = await system.transport.mailbox_stats(list_mailbox("jobs"))
            while stats.depth or stats.pending:
                await trio.sleep(0.05)
                stats = await system.transport.mailbox_stats(list_mailbox("jobs"))
            # The user really is confined: a key outside its patterns is refused.
            with pytest.raises(AuthenticationError, match="NOPERM"):
                await system.redis.set("elsewhere", 1)


def test_acl_user_without_permission_gets_one_clear_error_line(
    acl_server: RedisServer, system_file: Path
) -> None:
    url = f"redis://narrow:narrow-pw@127.0.0.1:{acl_server.port}/0"
    result = run_cli("run", str(system_file), "--url", url)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    # It fails before any actor starts, naming the first key it may not touch.
    assert errors[0].startswith("error: node registry {actors:nodes}: EVALSHA: NOPERM")
    assert "narrow-pw" not in result.stderr


def test_acl_user_without_permission_gets_no_traceback_wall(
    acl_server: RedisServer, system_file: Path
) -> None:
    url = f"redis://narrow:narrow-pw@127.0.0.1:{acl_server.port}/0"
    result = run_cli("run", str(system_file), "--url", url)
    assert result.returncode == 1
    assert "NOPERM" in one_error_line(result)


# -- TLS ----------------------------------------------------------------------------------------


async def test_tls_end_to_end(tls_server: RedisServer, tls_files: dict[str, Path]) -> None:
    system = ActorSystem(f"{tls_server.url}?ssl_ca_certs={tls_files['ca']}")
    handled: list[int] = []

    @system.actor(stream="tls-events", batch_size=10)
    async def work(n: int) -> int:
        handled.append(n)
        return n + 1

    with trio.fail_after(20):
        async with system:
            await system.tell_many("tls-events", list(range(20)))
            assert await system.ask("tls-events", 99, timeout=10) == 100
            while len(handled) < 21:
                await trio.sleep(0.05)
    assert sorted(handled) == [*range(20), 99]


@pytest.mark.parametrize("mismatch", ["untrusted CA", "plain client, TLS port"])
def test_tls_mismatch_via_the_cli_is_one_line(
    tls_server: RedisServer, tls_files: dict[str, Path], system_file: Path, mismatch: str
) -> None:
    if mismatch == "untrusted CA":
        url, expected = f"{tls_server.url}?ssl_ca_certs={tls_files['other_ca']}", "TLS"
    else:
        url, expected = f"redis://127.0.0.1:{tls_server.tls_port}/0", "TLS"
    result = run_cli("run", str(system_file), "--url", url)
    assert result.returncode == 1
    assert expected in one_error_line(result)


async def test_tls_client_to_a_plain_server_fails_clearly(private_redis: PrivateRedis) -> None:
    server = private_redis()
    system = ActorSystem(f"rediss://127.0.0.1:{server.port}/0?ssl_cert_reqs=none")

    @system.actor(list="jobs")
    async def work(n: int) -> None: ...

    with trio.fail_after(30), pytest.raises(TransportError, match="TLS"):
        await system.run()


# -- bad URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "expected"),
    [
        ("redis://127.0.0.1:notaport", 2, "Port could not be cast"),
        ("redis://:hunter2@127.0.0.1:notaport/0", 2, "Port could not be cast"),
        ("kafka://localhost", 2, "unsupported URL scheme 'kafka'"),
        ("redis://:hunter2@127.0.0.1:6379/0?bogus=1", 2, "unsupported option 'bogus'"),
        ("rediss://:hunter2@127.0.0.1:6379/0?ssl_cert_reqs=maybe", 2, "ssl_cert_reqs"),
        ("redis://:hunter2@127.0.0.1:1/0", 1, "connection refused"),
        ("redis://:hunter2@127.0.0.1:1/notadb", 2, "database 'notadb' is not a number"),
    ],
)
def test_bad_urls_via_the_cli(system_file: Path, url: str, status: int, expected: str) -> None:
    result = run_cli("run", str(system_file), "--url", url)
    line = one_error_line(result)
    assert result.returncode == status, line
    assert expected in line
    assert "hunter2" not in result.stderr


# -- reply_to goes only to reply mailboxes ------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty store: in-process memory, or the session's real Redis."""
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


def _doubling_system(url: str, **options: Any) -> ActorSystem:
    """A system whose actor ``double`` (stream ``jobs``, one attempt) returns ``2 * n``,
    rejects negative numbers and fails on 13."""
    system = ActorSystem(url, node="secure", **options)

    @system.actor(stream="jobs", max_deliveries=1)
    async def double(n: int) -> int:
        if n < 0:
            raise Reject("negative")
        if n == 13:
            raise ValueError("unlucky")
        return 2 * n

    return system


async def _send_forged(system: ActorSystem, payloads: list[bytes]) -> None:
    """Write ``payloads`` to ``jobs`` as another client would."""
    if system.url == "memory://":
        await system.transport.send(stream_mailbox("jobs"), payloads)
        return
    client: Any = system.redis
    for payload in payloads:
        await client.xadd("jobs", {"message": payload})


async def _all_acked(system: ActorSystem) -> None:
    with trio.fail_after(10):
        while True:
            stats = await system.transport.mailbox_stats(stream_mailbox("jobs"))
            if (stats.depth, stats.pending) == (0, 0):
                return
            await trio.sleep(0.01)


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused reply_to" in r.getMessage()]


async def test_a_forged_reply_to_writes_nowhere_and_the_message_is_still_acked(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``reply_to`` naming another actor's mailbox (or any key) is refused: the result
    and the error replies (rejected, failed) go nowhere, the message is handled and
    acked, and one warning per message names the actor, the message and the address."""
    caplog.set_level(logging.WARNING)
    system = _doubling_system(store_url)
    forged = [
        encode(5, correlation_id="c1", reply_to="list:orders"),  # result
        encode(-1, correlation_id="c2", reply_to="stream:events"),  # Reject
        encode(13, correlation_id="c3", reply_to="list:orders"),  # failed for good
        encode(6, correlation_id="c4", reply_to="pubsub:news"),
    ]
    with trio.fail_after(20):
        async with system:
            await _send_forged(system, forged)
            assert await system.ask("jobs", 21, timeout=10) == 42  # a genuine ask works
            await _all_acked(system)
            orders = await system.transport.mailbox_stats(list_mailbox("orders"))
            events = await system.transport.mailbox_stats(stream_mailbox("events"))
            letters = await system.dead_letters("jobs")
            if store_url != "memory://":
                assert await system.redis.execute_command("EXISTS", "orders", "events") == 0
    assert (orders.depth, events.depth) == (0, 0)
    # Only the rejected and the failed message are dead letters; the others were acked.
    assert sorted(letter.failure.reason for letter in letters) == [
        "failed 1 times",
        "rejected: negative",
    ]
    refusals = _refusals(caplog)
    assert len(refusals) == 4, refusals
    # Each names the actor, the message's own id (context.message.id) and the address;
    # a failed message's is said when its fate is stored, at the end of its batch.
    addresses = ["list:orders", "stream:events", "list:orders", "pubsub:news"]
    expected = {decode(p).id: address for p, address in zip(forged, addresses, strict=True)}
    said = {}
    for line in refusals:
        assert "system/double-0" in line, line
        [message_id] = [i for i in expected if f"message {i} " in line]
        said[message_id] = line
        assert repr(expected[message_id]) in line, line
    assert said.keys() == expected.keys()


async def test_reply_to_allowed_lets_named_addresses_through(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    system = _doubling_system(store_url, reply_to_allowed=("list:orders", "stream:results.*"))
    requests = [
        encode(5, correlation_id="c1", reply_to="list:orders"),  # exact address
        encode(-1, correlation_id="c2", reply_to="stream:results.eu"),  # a prefix
        encode(7, correlation_id="c3", reply_to="list:orders2"),  # not a prefix: refused
    ]
    with trio.fail_after(20):
        async with system:
            await _send_forged(system, requests)
            assert await system.ask("jobs", 21, timeout=10) == 42
            await _all_acked(system)
            orders = await system.transport.mailbox_stats(list_mailbox("orders"))
            results = await system.transport.mailbox_stats(stream_mailbox("results.eu"))
            orders2 = await system.transport.mailbox_stats(list_mailbox("orders2"))
    assert (orders.depth, results.depth, orders2.depth) == (1, 1, 0)
    [refusal] = _refusals(caplog)
    assert "'list:orders2'" in refusal


@pytest.mark.parametrize(
    "allowed", ["list:orders", ("orders",), ("queue:orders",), ("list:{orders}",)]
)
def test_reply_to_allowed_is_checked_when_the_system_is_built(allowed: Any) -> None:
    with pytest.raises(ConfigurationError, match="reply_to_allowed"):
        ActorSystem("memory://", reply_to_allowed=allowed)
