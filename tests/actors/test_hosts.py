"""Several hosts against one Redis: each host runs `python -m actors run FILE`.

Hosts are simulated with Linux namespaces: each runtime gets its own hostname (UTS
namespace) and its own process ids (PID namespace, where it is PID 1), so two
runtimes share nothing that names them but their host. Skipped where unprivileged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from actors._codec import encode
from tests.conftest import wait_for

NODES = "{actors:nodes}"

SYSTEM = textwrap.dedent(
    """
    import os, socket, trio
    from actors import ActorContext, ActorSystem, list_mailbox

    system = ActorSystem()

    @system.actor(mailbox=list_mailbox("orders", lease=1.0), batch_size=10)
    async def work(n: int, context: ActorContext) -> None:
        if n >= 1000 and socket.gethostname() == "host-a":
            await trio.sleep(3600)  # host A takes these and never finishes them
        attempt = context.message.attempt
        await context.redis.hset("handled", n, f"{socket.gethostname()}:{os.getpid()}:{attempt}")
    """
)


def _namespaces_available() -> bool:
    try:
        probe = subprocess.run(
            ["unshare", "--uts", "--pid", "--fork", "--kill-child", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _namespaces_available(), reason="needs unshare with UTS and PID namespaces (root)"
)


@pytest.fixture
def db(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def start_host(name: str, path: Path, url: str) -> subprocess.Popen[str]:
    """`python -m actors run` as PID 1 of a host called ``name``."""
    command = f"hostname {name} && exec {sys.executable} -m actors run {path}"
    return subprocess.Popen(
        ["unshare", "--uts", "--pid", "--fork", "--kill-child", "sh", "-c", command],
        env={**os.environ, "ACTORS_URL": url},
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_dead_hosts_work_is_taken_over_by_another_host(
    tmp_path: Path, redis_url: str, db: redis.Redis
) -> None:
    path = tmp_path / "orders.py"
    path.write_text(SYSTEM)
    hosts: list[subprocess.Popen[str]] = []
    try:
        hosts.append(start_host("host-a", path, redis_url))
        wait_for(lambda: db.hlen(NODES) == 1)
        # Host A alone: its first fetch takes one message (fetches grow from one),
        # and it hangs on it; the rest wait in the mailbox, not in A's batch.
        db.rpush("orders", *[encode(n) for n in range(1000, 1010)])
        wait_for(lambda: db.llen("orders") == 9)
        hosts.append(start_host("host-b", path, redis_url))
        wait_for(lambda: db.hlen(NODES) == 2)
        nodes = sorted(db.hkeys(NODES))
        # Both runtimes are PID 1 of their namespace: the host keeps their names apart.
        assert nodes == ["host-a-1", "host-b-1"]
        db.rpush("orders", *[encode(n) for n in range(200)])
        wait_for(lambda: all(db.hexists("handled", n) for n in [*range(200), *range(1001, 1010)]))
        assert not db.hexists("handled", 1000)

        status = subprocess.run(
            [sys.executable, "-m", "actors", "status", "--json", "--url", redis_url],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        listed = json.loads(status.stdout)
        assert sorted(node["node"] for node in listed["nodes"]) == nodes

        hosts[0].send_signal(signal.SIGKILL)  # the whole of host A dies
        hosts[0].wait(timeout=10)
        wait_for(lambda: db.hexists("handled", 1000))
        for n in range(1000, 1010):
            host, pid, attempt = db.hget("handled", n).split(":")
            # A's attempt at the message it held is counted.
            assert (host, pid, attempt) == ("host-b", "1", "2" if n == 1000 else "1")
        assert db.hlen("handled") == 210
        # A graceful stop of host B: SIGTERM to the runtime (unshare does not forward it).
        runtime = subprocess.run(
            ["pgrep", "-P", str(hosts[1].pid)], capture_output=True, text=True, check=True
        )
        os.kill(int(runtime.stdout.split()[0]), signal.SIGTERM)
        assert hosts[1].wait(timeout=30) == 0
    finally:
        for host in hosts:
            if host.poll() is None:
                host.kill()
                host.wait()
            if host.stderr is not None:
                host.stderr.close()
