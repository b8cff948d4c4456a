"""Outage or refusal: which store failures are waited out, and what a system that never
started logs (issue 13, items 4 and 13)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hiredis import ReplyError

from actors import (
    ActorContext,
    ActorSystem,
    AuthenticationError,
    BrokenConnectionError,
    CommandError,
    ConnectError,
    TransportTimeout,
    UnavailableError,
    list_mailbox,
)
from actors.testing import RecordingTransport
from transports import (
    Consumer,
    Delivery,
    FailedAttempt,
    MailboxSpec,
    Outcome,
    Settlement,
    is_outage,
)
from transports._exceptions import ActorsError
from transports.redis import from_url
from transports.redis.client._errors import command_error
from transports.testing import PrivateRedis, free_port

#: Error replies of a server that cannot serve for now, but will again.
OUTAGE_REPLIES = [
    "OOM command not allowed when used memory > 'maxmemory'.",
    "LOADING Redis is loading the dataset in memory",
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "CLUSTERDOWN The cluster is down",
    "READONLY You can't write against a read only replica.",
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
    "NOREPLICAS Not enough good replicas to write.",
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist",
    "ERR max number of clients reached",
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


@attrs.define
class _OutOfMemory(RecordingTransport):
    """A store out of memory for ``jobs``: failures cannot be recorded until the trio
    time ``full_until``, consumers cannot open until ``closed_until``."""

    full_until: float = -1.0
    closed_until: float = -1.0

    def _check(self, until: float) -> None:
        if trio.current_time() < until:
            raise UnavailableError("OOM command not allowed when used memory > 'maxmemory'.")

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        if spec.name != "jobs":
            return self.inner.consumer(spec, name)
        self._check(self.closed_until)
        return self._open(spec, name)

    @asynccontextmanager
    async def _open(self, spec: MailboxSpec, name: str) -> AsyncIterator[Consumer]:
        async with self.inner.consumer(spec, name) as consumer:
            fail = consumer.fail

            async def full_fail(attempts: Sequence[FailedAttempt]) -> Sequence[Outcome]:
                self._check(self.full_until)
                return await fail(attempts)

            consumer.fail = full_fail  # type: ignore[method-assign]
            yield consumer


async def test_an_actor_crashing_while_the_store_is_out_of_memory_waits_it_out(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The crash's failure count, then the restart's consumer, wait for memory: one
    restart, no give-up, the message handled again; each wait logged as it starts and
    as it ends, not at every try."""
    caplog.set_level(logging.INFO, logger="actors")
    system = ActorSystem("memory://", node="test")
    transport = _OutOfMemory()
    seen: list[tuple[int, int]] = []

    # A crash (restart), not a retry: the restart's consumer must wait for memory too.
    @system.actor(list="jobs", on_error={ValueError: "restart"})
    async def fragile(n: int, context: ActorContext) -> None:
        seen.append((n, context.message.attempt))
        if context.message.attempt == 1:
            now = trio.current_time()
            transport.full_until, transport.closed_until = now + 30, now + 60
            raise ValueError("crash while the store is out of memory")

    async with system.lifecycle.running(transport):
        await system.tell("jobs", 7)
        await trio.sleep(120)
        await trio.testing.wait_all_tasks_blocked()
        assert system.tree().children[0].restarts == 1
    assert seen == [(7, 1), (7, 2)]
    messages = [r.getMessage() for r in caplog.records if r.name == "actors.actor"]
    assert len([m for m in messages if "store unavailable (OOM command" in m]) == 2, messages
    assert len([m for m in messages if "store reachable again" in m]) == 2, messages


@attrs.define
class _Frozen(RecordingTransport):
    """A store that stops answering once ``frozen`` is set: each call then times out
    after 30 s, as a Redis paused with SIGSTOP does (the read timeout)."""

    frozen: bool = False

    async def _freeze(self) -> None:
        if self.frozen:
            await trio.sleep(30)
            raise TransportTimeout("timed out waiting for a reply (test)")

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        return self._open(spec, name)

    @asynccontextmanager
    async def _open(self, spec: MailboxSpec, name: str) -> AsyncIterator[Consumer]:
        async with self.inner.consumer(spec, name) as consumer:
            fetch, settle = consumer.fetch, consumer.settle

            async def frozen_fetch(max_count: int, *, ack: Sequence[Delivery] = ()) -> Any:
                await self._freeze()
                return await fetch(max_count, ack=ack)

            async def frozen_settle(settlement: Settlement) -> dict[MailboxSpec, ActorsError]:
                await self._freeze()
                return await settle(settlement)

            consumer.fetch = frozen_fetch  # type: ignore[method-assign]
            consumer.settle = frozen_settle  # type: ignore[method-assign]
            yield consumer


@pytest.mark.parametrize("busy", [False, True])
async def test_a_stop_with_the_store_frozen_is_bounded_whatever_the_number_of_actors(
    busy: bool, autojump_clock: Any
) -> None:
    """Twelve actors, idle or each in its handler: they stop together, under one
    deadline, not one after another as their supervisor stops its children."""
    system = ActorSystem("memory://", node="test")
    for index in range(12):

        async def slow(n: int) -> None:
            await trio.sleep(1.0)

        slow.__name__ = f"slow{index}"
        system.actor(list=f"jobs{index}", batch_size=1)(slow)

    transport = _Frozen()
    async with system.lifecycle.running(transport):
        if busy:
            for index in range(12):
                await system.tell_many(f"jobs{index}", [1, 2])
        await trio.sleep(0.5)  # every busy instance is in its handler
        transport.frozen = True
        began = trio.current_time()
        system.stop()
    took = trio.current_time() - began
    assert took <= 5.0 + 1.0  # the shutdown timeout (ChildSpec's default), plus a little
    assert system.lifecycle.unacked_at_stop == (12 if busy else 0)


@pytest.mark.parametrize("instances", [1, 8])
async def test_a_stop_with_the_store_frozen_is_bounded_and_counts_what_is_unacked(
    instances: int, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """However many instances, the stop's store writes end at one deadline (the stop's
    start plus the shutdown timeout); what could not be acked is counted and said."""
    caplog.set_level(logging.INFO, logger="actors")
    system = ActorSystem("memory://", node="test")

    @system.actor(list="jobs", instances=instances, batch_size=1)
    async def slow(n: int) -> None:
        await trio.sleep(1.0)

    transport = _Frozen()
    async with system.lifecycle.running(transport):
        await system.tell_many("jobs", list(range(100)))
        await trio.sleep(0.5)  # every instance is in its handler
        transport.frozen = True
        began = trio.current_time()
        system.stop()
    took = trio.current_time() - began
    assert took <= 5.0 + 1.0  # the shutdown timeout (ChildSpec's default), plus a little
    assert system.lifecycle.unacked_at_stop == instances  # each handled one it could not ack
    last = caplog.records[-1].getMessage()
    s = "" if instances == 1 else "s"
    assert last == (
        f"actor system stopped; {instances} message{s} could not be acked and will be redelivered"
    )


@attrs.define
class _Down(RecordingTransport):
    """A store that is down (fetches and pings fail) until the trio time ``until``."""

    until: float = -1.0

    def _check(self) -> None:
        if trio.current_time() < self.until:
            raise BrokenConnectionError("connection refused (test)")

    async def ping(self) -> None:
        self._check()

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        return self._open(spec, name)

    @asynccontextmanager
    async def _open(self, spec: MailboxSpec, name: str) -> AsyncIterator[Consumer]:
        async with self.inner.consumer(spec, name) as consumer:
            fetch = consumer.fetch

            async def down_fetch(max_count: int, *, ack: Sequence[Delivery] = ()) -> Any:
                while True:  # as a blocking read whose connection breaks when it goes down
                    self._check()
                    with trio.move_on_after(0.5):
                        return await fetch(max_count, ack=ack)

            consumer.fetch = down_fetch  # type: ignore[method-assign]
            yield consumer


async def test_the_end_of_an_outage_is_said_when_it_comes_not_at_the_next_message(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An idle actor and the reply mailbox, waiting for messages that do not come:
    each says the outage ended within seconds of its end, not at the next message."""
    caplog.set_level(logging.INFO, logger="actors")
    system = ActorSystem("memory://", node="test")

    @system.actor(list="jobs")
    async def idle(n: int) -> None: ...

    transport = _Down()
    async with system.lifecycle.running(transport):
        await trio.sleep(1)
        transport.until = trio.current_time() + 30  # down for 30 s from now
        await trio.sleep(30 + 10)  # then up; no message comes
        lines = [r.getMessage() for r in caplog.records]
    ended = [line for line in lines if "store reachable again" in line]
    assert any(line.startswith("system/idle-0:") for line in ended), lines
    assert any(line.startswith("reply mailbox:") for line in ended), lines
    assert len([line for line in lines if "store unavailable" in line]) == 2, lines


def _noperm() -> CommandError:
    return CommandError("NOPERM this user has no permissions (test)", code="NOPERM")


@attrs.define
class _Refusing(RecordingTransport):
    """A store that refuses (NOPERM) the fetches of mailboxes named in ``fetches``
    (``"reply"``: the reply box), ``refusals`` times in all, and every heartbeat after
    the first once ``heartbeats`` is set."""

    fetches: tuple[str, ...] = ()
    refusals: int = 1
    heartbeats: bool = False
    _announced: int = 0

    async def announce(self, node: str, info: Any, ttl: float, **kwargs: Any) -> Any:
        self._announced += 1
        if self.heartbeats and self._announced > 1 and info is not None:
            raise _noperm()
        return await self.inner.announce(node, info, ttl, **kwargs)

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        return self._open(spec, name)

    @asynccontextmanager
    async def _open(self, spec: MailboxSpec, name: str) -> AsyncIterator[Consumer]:
        box = "reply" if spec.name.startswith("actors.reply.") else spec.name
        async with self.inner.consumer(spec, name) as consumer:
            fetch = consumer.fetch

            async def refusing_fetch(max_count: int, *, ack: Sequence[Delivery] = ()) -> Any:
                if box in self.fetches and self.refusals > 0:
                    self.refusals -= 1
                    raise _noperm()
                return await fetch(max_count, ack=ack)

            consumer.fetch = refusing_fetch  # type: ignore[method-assign]
            yield consumer


async def test_a_refused_fetch_crashes_the_instance_rather_than_being_waited_out(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Retrying cannot cure a refusal: the instance crashes with it (its supervisor
    restarts it, and the next fetch works), it does not wait it out as an outage."""
    caplog.set_level(logging.INFO, logger="actors")
    system = ActorSystem("memory://", node="test")
    handled: list[int] = []

    @system.actor(list="jobs")
    async def work(n: int) -> None:
        handled.append(n)

    async with system.lifecycle.running(_Refusing(fetches=("jobs",))):
        await system.tell("jobs", 1)
        await trio.sleep(5)
        assert system.tree().children[0].restarts == 1
    assert handled == [1]
    lines = [r.getMessage() for r in caplog.records]
    assert any("work-0 crashed: CommandError('NOPERM" in line for line in lines), lines
    assert not [line for line in lines if "store unavailable" in line], lines


async def test_a_refused_reply_read_fails_the_system(autojump_clock: Any) -> None:
    """The reply reader does not wait out a refusal either: the system fails with it."""
    system = ActorSystem("memory://", node="test")

    @system.actor(list="jobs")
    async def work(n: int) -> None: ...

    with pytest.raises(CommandError, match="NOPERM"):
        async with system.lifecycle.running(_Refusing(fetches=("reply",))):
            await trio.sleep(5)


async def test_a_refused_heartbeat_fails_the_system(autojump_clock: Any) -> None:
    """Nor does the node's heartbeat (an outage is tried again; see test_node_names)."""
    system = ActorSystem("memory://", node="test")

    @system.actor(list="jobs")
    async def work(n: int) -> None: ...

    with pytest.raises(CommandError, match="NOPERM"):
        async with system.lifecycle.running(_Refusing(heartbeats=True)):
            await trio.sleep(60)


async def test_a_refused_heartbeat_stops_the_tree_as_a_stop_would_then_fails(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler busy when the heartbeat is refused finishes its message and acks it
    (nothing is cancelled mid-message, nothing left unacked), and the log names the
    task that failed before the system raises its error."""
    caplog.set_level(logging.INFO, logger="actors")
    system = ActorSystem("memory://", node="test")
    finished: list[int] = []

    @system.actor(list="jobs")
    async def work(n: int) -> None:
        # The heartbeat (every 5 s) is refused meanwhile; this ends within the 5 s a
        # stop gives.
        await trio.sleep(7)
        finished.append(n)

    async def run() -> None:
        async with system.lifecycle.running(_Refusing(heartbeats=True)):
            await system.tell("jobs", 1)
            await trio.sleep(60)

    with pytest.raises(CommandError, match="NOPERM"):
        await run()
    assert finished == [1]
    assert system.lifecycle.unacked_at_stop == 0
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("the node's heartbeat failed (NOPERM") for line in lines), lines
    assert not [line for line in lines if "cancelled" in line], lines


@attrs.define
class _RefusingSettle(RecordingTransport):
    """A store that refuses (NOPERM) the first ``refusals`` settles of a batch."""

    refusals: int = 1

    def consumer(self, spec: MailboxSpec, name: str) -> AbstractAsyncContextManager[Consumer]:
        return self._open(spec, name)

    @asynccontextmanager
    async def _open(self, spec: MailboxSpec, name: str) -> AsyncIterator[Consumer]:
        async with self.inner.consumer(spec, name) as consumer:
            settle = consumer.settle

            async def refusing_settle(settlement: Settlement) -> dict[MailboxSpec, ActorsError]:
                if self.refusals > 0 and (settlement.results or settlement.acks):
                    self.refusals -= 1
                    raise _noperm()
                return await settle(settlement)

            consumer.settle = refusing_settle  # type: ignore[method-assign]
            yield consumer


async def test_a_refused_settle_crashes_the_instance_rather_than_being_waited_out(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch whose results and acks the store refuses is not retried forever: the
    instance crashes; its message, not acked, comes back to the restarted instance."""
    caplog.set_level(logging.INFO, logger="actors")
    system = ActorSystem("memory://", node="test")
    handled: list[int] = []

    @system.actor(list="jobs")
    @system.publisher(list="out")
    async def work(n: int) -> int:
        handled.append(n)
        return n

    transport = _RefusingSettle()
    async with system.lifecycle.running(transport):
        await system.tell("jobs", 1)
        await trio.sleep(5)
        assert system.tree().children[0].restarts == 1
        assert (await transport.mailbox_stats(list_mailbox("out"))).depth == 1
    assert handled == [1, 1]
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if "store unavailable" in line], lines


# -- a real server that cannot serve for now ----------------------------------------


@pytest.mark.parametrize(
    ("trouble", "cure"),
    [
        # A master demoted under live connections (FAILOVER, a failover behind a DNS
        # name): blocked reads get UNBLOCKED, writes READONLY.
        (("REPLICAOF", "127.0.0.1", "1"), ("REPLICAOF", "NO", "ONE")),
        # min-replicas-to-write while no replica keeps up: NOREPLICAS.
        (
            ("CONFIG", "SET", "min-replicas-to-write", "1"),
            ("CONFIG", "SET", "min-replicas-to-write", "0"),
        ),
    ],
    ids=["demoted-master", "no-replicas"],
)
async def test_a_master_that_cannot_take_writes_for_now_is_waited_out(
    private_redis: PrivateRedis, trouble: tuple[str, ...], cure: tuple[str, ...]
) -> None:
    """The system rides it out (instances, reply reader, heartbeat): no restart, no
    failure, and the next message is handled once writes are taken again."""
    server = private_redis()
    system = ActorSystem(server.url, node="t")
    seen: list[int] = []

    @system.actor(list="jobs")
    async def work(n: int) -> None:
        seen.append(n)

    admin = from_url(server.url)
    async with system:
        await system.tell("jobs", 1)
        with trio.fail_after(10):
            while seen != [1]:
                await trio.sleep(0.05)
        await admin.execute_command(*trouble)
        await trio.sleep(6)  # past a heartbeat (5 s) and many fetches
        await admin.execute_command(*cure)
        await system.tell("jobs", 2)
        with trio.fail_after(10):
            while seen != [1, 2]:
                await trio.sleep(0.05)
        assert [child.restarts for child in system.tree().children] == [0]


async def test_a_full_server_is_an_outage_not_bad_credentials(
    private_redis: PrivateRedis,
) -> None:
    """maxclients reached: the server says so (as ERR) to the new connection, whose
    setup (AUTH, SELECT) must not call that a wrong password or setting."""
    server = private_redis(extra_args=["--requirepass", "pw", "--maxclients", "1"])
    url = server.url.replace("redis://", "redis://:pw@")
    holder = from_url(url)
    await holder.execute_command("PING")  # takes the one slot
    with pytest.raises(ConnectError) as caught:
        await from_url(url).execute_command("PING")
    assert "max number of clients" in str(caught.value)
    # With SELECT too, the server's goodbye may cut the second reply: a broken setup,
    # an outage all the same.
    with pytest.raises(ConnectError) as also:
        await from_url(url.rsplit("/", 1)[0] + "/1").execute_command("PING")
    for error in (caught.value, also.value):
        assert not isinstance(error, AuthenticationError)
        assert is_outage(error)
