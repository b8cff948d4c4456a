"""A private ``redis-server`` process for tests and benchmarks: start, kill, pause, restart.

Each :class:`RedisServer` runs ``redis-server`` (from ``PATH``) on a free loopback
port in its own directory, with persistence off unless ``appendonly=True``. It is
synchronous on purpose: fixtures start and stop processes outside the trio loop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["PrivateRedis", "RedisServer", "free_port", "ping"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(port: int, *, password: str | None = None, timeout: float = 0.5) -> bool:
    """True when a plain-TCP Redis on 127.0.0.1:``port`` answers PING (or NOAUTH)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            request = b"PING\r\n"
            if password is not None:
                request = f"AUTH {password}\r\n".encode() + request
            sock.sendall(request)
            reply = sock.recv(128)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"-NOAUTH", b"+OK"))


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1``, for one test or one session.

    ``extra_args`` go on the command line (``["--requirepass", "s3cret"]``).
    With ``tls_port`` the server listens for TLS there; pass ``port=0`` with it to
    disable plain TCP. :meth:`start` waits until the server accepts connections.
    Use as a context manager, or call :meth:`stop` — the process and its directory
    are always cleaned up.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        appendonly: bool = False,
        extra_args: Sequence[str] = (),
        tls_port: int | None = None,
        executable: str = "redis-server",
    ) -> None:
        path = shutil.which(executable)
        if path is None:
            raise RuntimeError(f"{executable} not found on PATH")
        self.executable = path
        self.port = free_port() if port is None else port
        self.tls_port = tls_port
        self.appendonly = appendonly
        self.extra_args = list(extra_args)
        self.directory = Path(tempfile.mkdtemp(prefix="actors-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer port={self.port} tls_port={self.tls_port} {state}>"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (or ``rediss://`` on the TLS port when plain is off)."""
        if self.port == 0 and self.tls_port is not None:
            return f"rediss://127.0.0.1:{self.tls_port}/0"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the process is alive (paused counts as alive)."""
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None, "not started"
        return self.process.pid

    def command_line(self) -> list[str]:
        """The ``redis-server`` command line this object runs."""
        args = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        if self.tls_port is not None:
            args += ["--tls-port", str(self.tls_port)]
        return args + self.extra_args

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it accepts connections.

        Raises:
            RuntimeError: it exited or did not answer within ``timeout``.
        """
        if self.running:
            return self
        self.process = subprocess.Popen(
            self.command_line(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                log = self.log()
                self._close_pipes()
                self.process = None
                raise RuntimeError(f"redis-server exited at start: {stderr}{log}")
            if self._accepting():
                return self
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"redis-server did not start within {timeout}s: {self.log()}")

    def _accepting(self) -> bool:
        if self.port:
            password = self._password()
            return ping(self.port, password=password)
        assert self.tls_port is not None
        try:
            with socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.5):
                return True
        except OSError:
            return False

    def _password(self) -> str | None:
        if "--requirepass" in self.extra_args:
            return self.extra_args[self.extra_args.index("--requirepass") + 1]
        return None

    def log(self) -> str:
        """The server's log file so far (for failure messages)."""
        try:
            return (self.directory / "redis.log").read_text()
        except OSError:
            return ""

    def _signal(self, signum: int) -> None:
        assert self.process is not None, "not started"
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown) and reap it."""
        if self.process is None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGKILL)
        self.process.wait()
        self._close_pipes()
        self.process = None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server with SIGTERM (SIGKILL after ``timeout``); idempotent."""
        if self.process is None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._close_pipes()
        self.process = None

    def _close_pipes(self) -> None:
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def restart(self, *, kill: bool = True) -> None:
        """Kill (or stop) and start again on the same port and directory.

        With ``appendonly=True`` the data survives.
        """
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing is answered."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        self._signal(signal.SIGCONT)

    def cleanup(self) -> None:
        """Stop the server and remove its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


PrivateRedis = Callable[..., RedisServer]
"""A factory of started private servers, taking :class:`RedisServer`'s arguments (the
type of the ``private_redis`` fixture of :mod:`transports.testing.fixtures`)."""
