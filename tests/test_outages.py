"""Outage or refusal: which store failures are waited out, and what a system that never
started logs (issue 13, items 4 and 13)."""

from __future__ import annotations

import logging

import pytest
from hiredis import ReplyError
from redis_server import free_port

from actors import (
    ActorSystem,
    AuthenticationError,
    BrokenConnectionError,
    CommandError,
    ConnectError,
    TransportTimeout,
    UnavailableError,
    list_mailbox,
)
from transports import is_outage
from transports.redis._errors import command_error

#: Error replies of a server that cannot serve for now, but will again.
OUTAGE_REPLIES = [
    "OOM command not allowed when used memory > 'maxmemory'.",
    "LOADING Redis is loading the dataset in memory",
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "CLUSTERDOWN The cluster is down",
]

#: Error replies that retrying cannot cure.
REFUSAL_REPLIES = [
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "NOPERM User app has no permissions to run the 'flushall' command",
    "BUSYGROUP Consumer Group name already exists",
    "BUSYKEY Target key name already exists.",
    "NOGROUP No such key 'jobs' or consumer group 'jobs'",
    "ERR unknown command 'FOO'",
    "NOSCRIPT No matching script. Please use EVAL.",
]


@pytest.mark.parametrize("reply", OUTAGE_REPLIES)
def test_a_server_that_cannot_serve_for_now_is_an_outage(reply: str) -> None:
    error = command_error(ReplyError(reply), b"evalsha")
    code = reply.split(" ", 1)[0]
    assert isinstance(error, UnavailableError)
    assert isinstance(error, CommandError)  # `except CommandError` still catches it
    assert error.code == code
    assert str(error).startswith(f"EVALSHA: {code} ")
    assert is_outage(error)


@pytest.mark.parametrize("reply", REFUSAL_REPLIES)
def test_a_refusal_is_not_an_outage(reply: str) -> None:
    error = command_error(ReplyError(reply))
    assert not isinstance(error, UnavailableError)
    assert not is_outage(error)


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectError("cannot connect: connection refused"), True),
        (BrokenConnectionError("connection broke"), True),
        (TransportTimeout("timed out waiting for a reply"), True),
        (AuthenticationError("WRONGPASS invalid username-password pair"), False),
        (CommandError("WRONGTYPE ...", code="WRONGTYPE"), False),
        (ValueError("not a transport error"), False),
    ],
)
def test_outage_or_refusal_of_the_other_failures(error: Exception, outage: bool) -> None:
    assert is_outage(error) is outage


async def test_a_system_that_never_started_does_not_log_that_it_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    system = ActorSystem(f"redis://127.0.0.1:{free_port()}/0", node="never")

    @system.actor(mailbox=list_mailbox("jobs"))
    async def work(n: int) -> None: ...

    caplog.set_level(logging.INFO)
    with pytest.raises(ConnectError):
        async with system:
            pass
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "actor system stopped" in m], messages
