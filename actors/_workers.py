"""``python -m actors run FILE --workers N``: N worker processes under a parent that
supervises them as a supervisor does its children.

Each worker is a full ``python -m actors run FILE`` in its own process (its own
``trio.run``), with a node name of its own, so stream groups and lists spread the
work and pub/sub reaches every worker. The parent restarts a worker that dies,
with backoff; forwards SIGINT/SIGTERM (a second signal too, which makes workers
exit at once); and exits when they all have. Workers run in their own process
group, so a Ctrl-C in a terminal reaches them once, through the parent.

Each worker shares a socket pair with its parent (an inherited fd, ``--parent-fd``).
The worker writes one byte on it once its start-up signal handlers are installed
(see ``_startup``): until then the parent holds a signal back, since Python would
turn a SIGINT into a ``KeyboardInterrupt`` traceback while the worker's interpreter
starts. The parent never writes: the worker reads end-of-file when the parent is
gone, however it died (SIGKILL, OOM killer, crash), and stops gracefully.
``PR_SET_PDEATHSIG`` is not used: Linux sends it when the *thread* that forked the
worker exits, and trio forks from cached threads that exit when idle, so it would
stop healthy workers; it would also be Linux-only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence

import trio

from transports import Backoff, ConfigurationError

from ._startup import deferred_signal, exit_status

__all__ = [
    "announce_ready",
    "available_cpus",
    "check_workers",
    "run_workers",
    "watch_parent",
    "worker_argv",
    "workers_limit",
]

logger = logging.getLogger("actors.workers")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_UNACKED = 75  # a worker stopped with messages it could not ack
_RESTART_BACKOFF = Backoff(min=0.5, max=30.0, reset_after=30.0)
#: ``--workers`` above this is refused: a typo (one zero too many) would otherwise
#: start processes by the thousand. 4 per CPU leaves room for I/O-bound work.
_MIN_LIMIT, _LIMIT_PER_CPU = 64, 4
_READY = b"r"  # what a worker writes on its socket once it handles signals


def available_cpus() -> int:
    """How many CPUs this process may run on (its affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def workers_limit(cpus: int | None = None) -> int:
    """The most ``--workers`` accepted: 64, or 4 per CPU (``cpus``, default
    :func:`available_cpus`) on machines with more than 16."""
    return max(_MIN_LIMIT, _LIMIT_PER_CPU * (available_cpus() if cpus is None else cpus))


def check_workers(count: int) -> None:
    """Accept ``count`` workers, with a warning when it is more than the CPUs.

    Raises:
        ConfigurationError: ``count`` is below 1 or above :func:`workers_limit`.
    """
    limit = workers_limit()
    if not 1 <= count <= limit:
        raise ConfigurationError(f"--workers must be between 1 and {limit}, not {count}")
    cpus = available_cpus()
    if count > cpus:
        logger.warning(
            "--workers %d is more than the %d CPU(s) available: workers will compete for them",
            count,
            cpus,
        )


class _Worker:
    """One worker process, and the parent's end of the socket it shares with it."""

    def __init__(self, proc: trio.Process, control: trio.socket.SocketType) -> None:
        self.proc = proc
        self.control = control
        self.ready = False  # it handles signals: they may be sent
        self.held: int | None = None  # a signal that came before it was ready

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` now, or once the worker is ready for it."""
        if self.ready:
            self.proc.send_signal(signum)
        else:
            self.held = signum

    async def wait_ready(self) -> None:
        """Wait for the worker's ready byte, then send it the signal held back, if any."""
        try:
            ready = await self.control.recv(1) == _READY
        except OSError:  # it died first
            return
        if ready:
            self.ready = True
            if self.held is not None and self.proc.returncode is None:
                self.proc.send_signal(self.held)


class _Workers:
    def __init__(self, argv: Sequence[str], count: int, url: str) -> None:
        self.argv = list(argv)
        # The URL travels in the environment, not argv, where `ps` would show a password.
        self.env = {**os.environ, "ACTORS_URL": url}
        self.count = count
        self.workers: dict[int, _Worker] = {}
        self.signals_seen = 0
        self.last_signal = signal.SIGTERM
        self.interrupted = False  # a worker exited 130: it was interrupted
        self.status = EXIT_OK

    def forward(self, signum: int) -> None:
        for worker in list(self.workers.values()):
            if worker.proc.returncode is None:
                worker.send_signal(signum)

    async def spawn(self, index: int) -> _Worker:
        """Start worker ``index``, with its end of a socket pair shared with us."""
        ours, theirs = socket.socketpair()
        try:
            proc = await trio.lowlevel.open_process(
                [*self.argv, "--worker", str(index), "--parent-fd", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # signals come from us, once
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the worker's copy is the only one: it must not outlive it
        return _Worker(proc, trio.socket.from_stdlib_socket(ours))

    async def keep(
        self,
        index: int,
        stopping: trio.Event,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run worker ``index`` until ``stopping``, restarting it when it dies.

        Started (for ``nursery.start``) once the first process is spawned, or at once
        if ``stopping`` is set before.
        """
        restarts = 0
        while not stopping.is_set():
            started = trio.current_time()
            worker = await self.spawn(index)
            self.workers[index] = worker
            logger.info("worker %d started (pid %d)", index, worker.proc.pid)
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED
            if stopping.is_set():
                # A signal came while it was being spawned, before forward() could see it.
                worker.send_signal(self.last_signal)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(worker.wait_ready)
                    code = await worker.proc.wait()
                    nursery.cancel_scope.cancel()
            finally:
                if worker.proc.returncode is None:  # we are being cancelled: do not orphan it
                    worker.proc.kill()
                    with trio.CancelScope(shield=True):
                        await worker.proc.wait()
                worker.control.close()
                del self.workers[index]
            if stopping.is_set():
                logger.info("worker %d exited (status %d)", index, code)
                if code == EXIT_INTERRUPTED:
                    self.interrupted = True
                elif code == EXIT_UNACKED:
                    if self.status == EXIT_OK:
                        self.status = EXIT_UNACKED
                elif code != EXIT_OK:
                    self.status = EXIT_FAILED
                return
            if code == EXIT_USAGE:
                # A configuration error will not heal by restarting: stop everything.
                logger.error("worker %d failed to start (status 2); stopping", index)
                self.status = EXIT_USAGE
                stopping.set()
                self.forward(signal.SIGTERM)
                return
            if trio.current_time() - started > _RESTART_BACKOFF.reset_after:
                restarts = 0
            delay = _RESTART_BACKOFF.delay(restarts)
            restarts += 1
            logger.warning(
                "worker %d died (status %d); restarting in %.1fs (restart %d)",
                index,
                code,
                delay,
                restarts,
            )
            with trio.move_on_after(delay):
                await stopping.wait()


async def run_workers(argv: Sequence[str], count: int, url: str) -> int:
    """Run ``count`` workers, each ``argv + ["--worker", i, "--parent-fd", fd]`` on
    ``url``, until signalled.

    Workers start one after another; a signal stops that at once. Returns 0 when
    every worker stopped cleanly after a signal, 130 when a second signal cut the
    shutdown short or a SIGINT interrupted a worker's start, 75 when a worker could
    not ack some messages at its stop, 2 when a worker failed with a configuration
    error, 1 otherwise.
    """
    workers = _Workers(argv, count, url)
    stopping = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        if (signum := deferred_signal()) is not None:
            return exit_status(signum)  # it came as trio started: no worker yet

        async def watch() -> None:
            async for signum in signals:
                workers.signals_seen += 1
                workers.last_signal = signal.Signals(signum)
                name = workers.last_signal.name
                logger.info("%s: forwarding to %d workers", name, len(workers.workers))
                stopping.set()
                workers.forward(signum)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            async with trio.open_nursery() as keepers:
                for index in range(count):
                    if stopping.is_set():
                        break
                    await keepers.start(workers.keep, index, stopping)
            nursery.cancel_scope.cancel()
    if (workers.signals_seen >= 2 or workers.interrupted) and workers.status == EXIT_OK:
        return EXIT_INTERRUPTED  # as a single process does
    return workers.status


def announce_ready(fd: int) -> socket.socket:
    """In a worker: tell the parent, over the inherited socket ``fd``, that signals may
    come now (call it once the start-up handlers are installed); return the socket."""
    control = socket.socket(fileno=fd)
    with contextlib.suppress(OSError):  # the parent is gone already: watch_parent() sees it
        control.sendall(_READY)
    return control


async def watch_parent(control: socket.socket, stop: Callable[[], None]) -> None:
    """In a worker: call ``stop`` once the parent is gone (``control`` reads end-of-file)."""
    sock = trio.socket.from_stdlib_socket(control)
    with contextlib.suppress(OSError):  # reset: gone too
        while await sock.recv(1024):  # the parent writes nothing
            pass
    logger.warning("the --workers parent is gone: stopping gracefully")
    stop()


def worker_argv(target: str, log_level: str, options: Sequence[str] = ()) -> list[str]:
    """The command line of one worker process (the URL goes in its environment), with
    ``options`` (the logging options) passed on."""
    return [sys.executable, "-m", "actors", "run", target, "--log-level", log_level, *options]
