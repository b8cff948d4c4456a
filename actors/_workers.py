"""``python -m actors run FILE --workers N``: N worker processes under a parent that
supervises them as a supervisor does its children.

Each worker is a full ``python -m actors run FILE`` in its own process (its own
``trio.run``), with a node name of its own, so stream groups and lists spread the
work and pub/sub reaches every worker. The parent restarts a worker that dies,
with backoff; forwards SIGINT/SIGTERM (a second signal too, which makes workers
exit at once); and exits when they all have. Workers run in their own process
group, so a Ctrl-C in a terminal reaches them once, through the parent.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

import trio

from ._backoff import Backoff

__all__ = ["run_workers", "worker_argv"]

logger = logging.getLogger("actors.workers")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_RESTART_BACKOFF = Backoff(min=0.5, max=30.0, reset_after=30.0)


class _Workers:
    def __init__(self, argv: Sequence[str], count: int, url: str) -> None:
        self.argv = list(argv)
        # The URL travels in the environment, not argv, where `ps` would show a password.
        self.env = {**os.environ, "ACTORS_URL": url}
        self.count = count
        self.procs: dict[int, trio.Process] = {}
        self.signals_seen = 0
        self.status = EXIT_OK

    def forward(self, signum: int) -> None:
        for proc in list(self.procs.values()):
            if proc.returncode is None:
                proc.send_signal(signum)

    async def keep(self, index: int, stopping: trio.Event) -> None:
        restarts = 0
        while not stopping.is_set():
            started = trio.current_time()
            proc = await trio.lowlevel.open_process(
                [*self.argv, "--worker", str(index)],
                start_new_session=True,  # signals come from us, once
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
            self.procs[index] = proc
            logger.info("worker %d started (pid %d)", index, proc.pid)
            if stopping.is_set():
                # A signal came while it was being spawned, before forward() could see it.
                proc.send_signal(signal.SIGTERM)
            try:
                code = await proc.wait()
            finally:
                if proc.returncode is None:  # we are being cancelled: do not orphan it
                    proc.kill()
                    with trio.CancelScope(shield=True):
                        await proc.wait()
            del self.procs[index]
            if stopping.is_set():
                logger.info("worker %d exited (status %d)", index, code)
                if code not in (EXIT_OK, 130):
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
    """Run ``count`` workers, each ``argv + ["--worker", i]`` on ``url``, until signalled.

    Returns 0 when every worker stopped cleanly after a signal, 2 when a worker
    failed with a configuration error, 1 otherwise.
    """
    workers = _Workers(argv, count, url)
    stopping = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    workers.signals_seen += 1
                    name = signal.Signals(signum).name
                    logger.info("%s: forwarding to %d workers", name, len(workers.procs))
                    stopping.set()
                    workers.forward(signum)

            nursery.start_soon(watch)
            async with trio.open_nursery() as keepers:
                for index in range(count):
                    keepers.start_soon(workers.keep, index, stopping)
            nursery.cancel_scope.cancel()
    if workers.signals_seen >= 2 and workers.status == EXIT_OK:
        return EXIT_INTERRUPTED  # as a single process does after a second signal
    return workers.status


def worker_argv(target: str, log_level: str) -> list[str]:
    """The command line of one worker process (the URL goes in its environment)."""
    return [sys.executable, "-m", "actors", "run", target, "--log-level", log_level]
