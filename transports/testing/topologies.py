"""Local Redis Cluster and Sentinel setups for tests and benchmarks.

:class:`LocalCluster` runs 3 masters and 3 replicas (6 ``redis-server`` processes
on free loopback ports, each in its own directory, ``--cluster-node-timeout 1000``
so that a killed master fails over in about two seconds), creates the cluster with
``redis-cli --cluster create`` and waits until every node reports
``cluster_state:ok``. :class:`LocalSentinel` runs a master, a replica and one
sentinel (quorum 1, ``down-after-milliseconds 1000``, ``failover-timeout 2000``).

Both are synchronous, like :class:`~transports.testing.RedisServer`: fixtures start and
stop processes outside the trio loop. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from .servers import RedisServer, free_port

__all__ = [
    "LocalCluster",
    "LocalSentinel",
    "cluster_available",
    "shared_cluster",
    "stop_shared_cluster",
]

MASTERS = 3
NODE_TIMEOUT_MS = 1000


def cluster_available() -> bool:
    """True when ``redis-server`` and ``redis-cli`` are on ``PATH``."""
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


def cluster_port() -> int:
    """A free port P whose cluster bus port P + 10000 is free too, both below the
    ephemeral range where they can be.

    A port the system hands out for outgoing connections (or ``bind(0)``) could be
    taken between this check and the node's start: the node would then fail to
    listen and the cluster to form.
    """
    low = _ephemeral_low()
    first, last = (10000, low - 10000) if low - 10000 > 12000 else (20000, 45000)
    while True:
        port = random.randrange(first, last)
        try:
            for candidate in (port, port + 10000):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def _ephemeral_low() -> int:
    """The first port of the system's ephemeral range (Linux's default if unknown)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, protocol=2, socket_timeout=2)


def _command(client: redis.Redis, *args: str) -> Any:
    """``client.execute_command(*args)``, the one place that calls redis-py's unannotated
    method (every reply here is a plain RESP2 value)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


class LocalCluster:
    """A 3-master, 3-replica Redis Cluster on 127.0.0.1, for one test session.

    ``url`` is ``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3``.
    :meth:`master_of` tells which node serves a key, :meth:`kill` kills one,
    :meth:`wait_for_failover` waits until a replica took over its slots, and
    :meth:`flushall` empties every master.
    """

    def __init__(self, masters: int = MASTERS) -> None:
        self.servers: list[RedisServer] = []
        for _ in range(masters * 2):
            port = cluster_port()
            self.servers.append(
                RedisServer(
                    port=port,
                    appendonly=True,
                    extra_args=[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        f"nodes-{port}.conf",
                        "--cluster-node-timeout",
                        str(NODE_TIMEOUT_MS),
                        "--cluster-announce-ip",
                        "127.0.0.1",
                    ],
                )
            )

    @property
    def ports(self) -> list[int]:
        """The ports of every node, started or killed."""
        return [server.port for server in self.servers]

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming the first three nodes as seeds."""
        seeds = ",".join(f"127.0.0.1:{port}" for port in self.ports[:3])
        return f"redis+cluster://{seeds}"

    def start(self, timeout: float = 30.0) -> LocalCluster:
        """Start the processes, create the cluster, wait until it is ok everywhere.

        Raises:
            RuntimeError: a server did not start, or the cluster did not form.
        """
        try:
            for server in self.servers:
                server.start()
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            create = ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "1"]
            subprocess.run(
                [*create, "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
            _wait("cluster_state:ok", self._all_ok, timeout)
            _wait("every replica in sync", self._replicas_synced, timeout)
        except BaseException:
            self.cleanup()
            raise
        return self

    def _running(self) -> list[RedisServer]:
        return [server for server in self.servers if server.running]

    def _all_ok(self) -> bool:
        for server in self._running():
            client = _client(server.port)
            try:
                info = _command(client, "CLUSTER", "INFO")
            finally:
                client.close()
            text = info.decode() if isinstance(info, bytes) else str(info)
            if "cluster_state:ok" not in text:
                return False
        return True

    def _replicas_synced(self) -> bool:
        synced = 0
        for server in self._running():
            client = _client(server.port)
            try:
                info = client.info("replication")
            finally:
                client.close()
            if info.get("role") == "slave":
                if info.get("master_link_status") != "up":
                    return False
                synced += 1
        return synced == len(self.servers) // 2

    def master_of(self, key: str) -> RedisServer:
        """The server whose node serves ``key``'s slot now (asked from a live node)."""
        live = self._running()[0]
        client = _client(live.port)
        try:
            slot = int(_command(client, "CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in _command(client, "CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(server for server in self.servers if server.port == port)
        finally:
            client.close()
        raise LookupError(f"no master serves {key!r}")

    def masters(self) -> list[RedisServer]:
        """The servers that are masters of some slots now."""
        live = self._running()[0]
        client = _client(live.port)
        try:
            ports = {int(entry[2][1]) for entry in _command(client, "CLUSTER", "SLOTS")}
        finally:
            client.close()
        return [server for server in self.servers if server.port in ports]

    def kill(self, server: RedisServer) -> None:
        """SIGKILL one node (its slots fail over to its replica)."""
        server.kill()

    def wait_for_failover(self, key: str, dead: RedisServer, timeout: float = 20.0) -> float:
        """Wait until a live node serves ``key`` (not ``dead``) and the cluster is ok.

        Returns the seconds it took.
        """
        started = time.monotonic()

        def recovered() -> bool:
            master = self.master_of(key)
            return master is not dead and master.running and self._all_ok()

        _wait(f"failover of {dead!r}", recovered, timeout)
        return time.monotonic() - started

    def restart(self, server: RedisServer, timeout: float = 30.0) -> None:
        """Start a killed node again; wait until it rejoined (as a replica) and synced."""
        server.start()
        _wait("cluster_state:ok", self._all_ok, timeout)
        _wait("every replica in sync", self._replicas_synced, timeout)

    def flushall(self) -> None:
        """Empty every master (replicas follow)."""
        for server in self.masters():
            if server.running:
                client = _client(server.port)
                try:
                    client.flushall()
                finally:
                    client.close()

    def cleanup(self) -> None:
        """Stop every process and remove their directories."""
        for server in self.servers:
            server.cleanup()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


class _SentinelProcess(RedisServer):
    """``redis-server sentinel.conf --sentinel``, its config in its own directory (written
    by :class:`LocalSentinel` before :meth:`start`)."""

    def command_line(self) -> list[str]:
        """The command line: the config file must come first for a sentinel."""
        return [
            self.executable,
            str(self.directory / "sentinel.conf"),
            "--sentinel",
            "--logfile",
            str(self.directory / "redis.log"),
        ]


class LocalSentinel:
    """A master, its replica and one sentinel monitoring them as ``service``.

    ``url`` is ``redis+sentinel://127.0.0.1:<sentinel port>/<service>``.
    :meth:`kill_master` kills the current master; :meth:`wait_for_failover`
    waits until the sentinel names another one.
    """

    def __init__(self, service: str = "mymaster") -> None:
        self.service = service
        self.master = RedisServer(appendonly=True)
        self.replica = RedisServer(
            appendonly=True, extra_args=["--replicaof", "127.0.0.1", str(self.master.port)]
        )
        self.sentinel_port = free_port()
        self.sentinel: RedisServer = _SentinelProcess(port=self.sentinel_port)
        self.servers = [self.master, self.replica]

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of the service."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.service}"

    def _write_sentinel_conf(self) -> None:
        conf = self.sentinel.directory / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel_port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.sentinel.directory}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 2000\n"
            f"sentinel parallel-syncs {self.service} 1\n"
        )

    def start(self, timeout: float = 20.0) -> LocalSentinel:
        """Start master, replica and sentinel; wait until the replica is in sync.

        Raises:
            RuntimeError: a process did not start or the replica did not sync.
        """
        try:
            self.master.start()
            self.replica.start()
            self._write_sentinel_conf()
            self.sentinel.start()
            _wait("the replica to sync", self._replica_synced, timeout)
            _wait("the sentinel to see the replica", self._sentinel_sees_replica, timeout)
        except BaseException:
            self.cleanup()
            raise
        return self

    def _replica_synced(self) -> bool:
        client = _client(self.replica.port)
        try:
            info = client.info("replication")
        finally:
            client.close()
        return info.get("master_link_status") == "up"

    def _sentinel_sees_replica(self) -> bool:
        client = _client(self.sentinel_port)
        try:
            replicas = _command(client, "SENTINEL", "REPLICAS", self.service)
        finally:
            client.close()
        return len(replicas) >= 1

    def current_master_port(self) -> int:
        """The master's port as the sentinel reports it now."""
        client = _client(self.sentinel_port)
        try:
            _, port = _command(client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        finally:
            client.close()
        return int(port)

    def kill_master(self) -> RedisServer:
        """SIGKILL the current master; return it."""
        port = self.current_master_port()
        server = next(server for server in self.servers if server.port == port)
        server.kill()
        return server

    def manual_failover(self) -> None:
        """Ask the sentinel to fail over now (``SENTINEL FAILOVER``): the master is demoted."""
        client = _client(self.sentinel_port)
        try:
            _command(client, "SENTINEL", "FAILOVER", self.service)
        finally:
            client.close()

    def wait_for_failover(self, dead: RedisServer, timeout: float = 20.0) -> float:
        """Wait until the sentinel names a live master other than ``dead``; seconds taken."""
        started = time.monotonic()

        def promoted() -> bool:
            port = self.current_master_port()
            if port == dead.port:
                return False
            client = _client(port)
            try:
                return bool(_command(client, "ROLE")[0] == b"master")
            finally:
                client.close()

        _wait(f"failover of {dead!r}", promoted, timeout)
        return time.monotonic() - started

    def wait_until_replica(self, server: RedisServer, timeout: float = 20.0) -> None:
        """Wait until ``server`` says (ROLE) it is a replica."""

        def demoted() -> bool:
            client = _client(server.port)
            try:
                return bool(_command(client, "ROLE")[0] == b"slave")
            finally:
                client.close()

        _wait(f"{server!r} to become a replica", demoted, timeout)

    def cleanup(self) -> None:
        """Stop every process and remove their directories."""
        for server in (self.sentinel, self.replica, self.master):
            server.cleanup()

    def __enter__(self) -> LocalSentinel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


_shared: dict[str, LocalCluster | BaseException] = {}


def shared_cluster() -> LocalCluster:
    """The test session's cluster, started on first use (see :func:`stop_shared_cluster`).

    One cluster serves the conformance suite and the cluster tests. A test that
    kills a node restarts it (:meth:`LocalCluster.restart`) so the next finds the
    cluster whole again.

    Raises:
        RuntimeError: it cannot start (also on every later call).
    """
    found = _shared.get("cluster")
    if found is None:
        try:
            found = LocalCluster().start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            found = exc
        _shared["cluster"] = found
    if isinstance(found, BaseException):
        raise RuntimeError(f"cannot start a local Redis Cluster: {found}")
    return found


def stop_shared_cluster() -> None:
    """Tear the session's cluster down (idempotent)."""
    found = _shared.pop("cluster", None)
    if isinstance(found, LocalCluster):
        found.cleanup()
