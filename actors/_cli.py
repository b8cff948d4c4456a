"""The command line: ``python -m actors run | status | dead-letters | publish | dashboard``.

Exit status: 0 after a clean stop, 1 when the system failed (its root supervisor
gave up, a lifespan hook failed, or the store is unreachable), 2 for a usage or configuration error
(a bad file, URL or argument), 3 when ``status --check`` finds no live node, 75 when
it stopped but could not ack some messages (the store did not answer in time: they
will be redelivered; the last log line says how many), 130 when a second signal cut
the shutdown short or a SIGINT interrupted the start. ``dead-letters replay`` exits 1
when some letters asked for were not replayed.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shlex
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import trio

from transports import (
    ActorsError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    TransportTimeout,
    redact,
)

from ._cli_admin import dashboard, dead_letters, publish, status
from ._cli_parser import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNACKED,
    parser,
    report_error,
    store_url,
)
from ._errors import SupervisorError
from ._groups import sole_error
from ._lifecycle import SystemState
from ._loader import load_system
from ._logs import configure_logging
from ._startup import (
    StartupInterrupted,
    defer_signals,
    deferred_signal,
    exit_status,
    interrupt_start_up,
    restore_default_signals,
)
from ._system import ActorSystem
from ._workers import (
    announce_ready,
    check_workers,
    run_workers,
    watch_parent,
    worker_argv,
)

__all__ = ["main"]

logger = logging.getLogger("actors.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    if args.command != "run":
        restore_default_signals()  # only `run` is quiet on signals as it starts
    try:
        configure_logging(
            str(args.log_level).upper(),
            getattr(args, "log_format", "text"),
            getattr(args, "log_config", None),
        )
        if args.command == "run":
            return _reload(args, argv) if args.reload else _run(args)
        if args.command == "status":
            return trio.run(status, args)
        if args.command == "publish":
            return trio.run(publish, args)
        if args.command == "dashboard":
            return trio.run(dashboard, args)
        return trio.run(dead_letters, args)
    except BaseExceptionGroup as group:
        # Nurseries wrap errors in groups; one error of ours is reported as itself.
        if sole_error(group, BrokenPipeError) is not None:
            return _reader_gone()
        error = sole_error(group, ActorsError)
        if error is None:
            raise
        return report_error(error)
    except ActorsError as exc:
        return report_error(exc)
    except BrokenPipeError:
        return _reader_gone()


def _log_options(args: argparse.Namespace) -> list[str]:
    """The logging (and metrics) options of ``run`` as given, for the processes it starts."""
    options = ["--log-format", args.log_format]
    if args.log_config is not None:
        options += ["--log-config", args.log_config]
    if args.metrics_port is not None:
        options += ["--metrics-port", str(args.metrics_port), "--metrics-host", args.metrics_host]
    return options


def _reload(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``run --reload``: run the same command line without ``--reload`` in a child
    process, and restart it (SIGINT, then SIGKILL after 5 s) whenever a ``.py`` file
    changes under the file's folder (a MODULE target: the current directory). Returns
    0 when interrupted (Ctrl-C stops the child first).

    Raises:
        ConfigurationError: watchfiles is not installed.
    """
    try:
        import watchfiles
    except ImportError:
        raise ConfigurationError(
            "--reload needs watchfiles: pip install 'actors[reload]'"
        ) from None
    where = Path(args.target.partition(":")[0])
    folder = where.resolve().parent if where.is_file() else Path.cwd()
    child = [sys.executable, "-m", "actors", *(a for a in argv if a != "--reload")]

    def restarted(changes: set[tuple[watchfiles.Change, str]]) -> None:
        logger.info("reloading: %s changed", ", ".join(sorted({path for _, path in changes})))

    # Ctrl-C (and SIGTERM) end the watch: watchfiles then stops the child (SIGINT,
    # the child's graceful stop) before returning.
    restore_default_signals()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    logger.info("watching %s for changes (--reload)", folder)
    watchfiles.run_process(
        folder,
        target=shlex.join(child),
        target_type="command",
        watch_filter=watchfiles.PythonFilter(),
        callback=restarted,
    )
    return EXIT_OK


def _reader_gone() -> int:
    """Standard output's reader went away (``status | head``): stop quietly, as a
    filter does, with nothing left to flush at exit (which would raise again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    """``run``: one system, or ``--workers`` processes of it.

    From here until trio's signal receiver takes over, SIGINT and SIGTERM end the
    process quietly, with status 130 or 0 (see ``_startup``).
    """
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    interrupt_start_up()
    try:
        parent = None if args.parent_fd is None else announce_ready(args.parent_fd)
        if args.workers is not None:
            check_workers(args.workers)  # before the file: a typo need not wait for it
        system = load_system(args.target)
        system.url = store_url(args, system)
        if args.workers is not None:
            argv = worker_argv(args.target, args.log_level, _log_options(args))
            defer_signals()
            return trio.run(run_workers, argv, args.workers, system.url)
        if args.worker is not None:
            system.node = f"{system.node}-w{args.worker}"
        exporter = _exporter(args, system)
        defer_signals()
        return trio.run(_serve, system, parent, exporter)
    except StartupInterrupted as exc:
        return exit_status(exc.signum)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _exporter(
    args: argparse.Namespace, system: ActorSystem
) -> Callable[[], Awaitable[None]] | None:
    """With ``--metrics-port``: the task that serves the system's metrics (worker i
    of ``--workers`` on the port plus i), its middleware added to the system.

    Raises:
        ConfigurationError: prometheus_client is not installed.
    """
    if args.metrics_port is None:
        return None
    from . import metrics  # only now: prometheus_client is an optional extra

    recorder = metrics.Metrics()
    system.use(recorder)
    port = args.metrics_port + (args.worker or 0)
    return functools.partial(metrics.export, system, recorder, port, args.metrics_host)


async def _serve(
    system: ActorSystem,
    parent: socket.socket | None = None,
    exporter: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run ``system`` until SIGINT/SIGTERM, or until the ``--workers`` parent that
    shares the socket ``parent`` is gone; a second signal cuts the shutdown short.
    ``exporter`` (metrics) runs meanwhile.

    Returns 0, or 130 when cut short or when a SIGINT came before the system ran.
    """
    forced = interrupted = False
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        if (signum := deferred_signal()) is not None:
            return exit_status(signum)  # it came as trio started: nothing ran yet
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal forced, interrupted
                async for signum in signals:
                    if not system.lifecycle.stop_requested:
                        # A SIGINT that stops the start (say, a wait for the node name)
                        # is an interruption, as before trio ran.
                        interrupted = signum == signal.SIGINT and system.state is SystemState.NEW
                        logger.info(
                            "%s: stopping gracefully (again to stop at once)",
                            signal.Signals(signum).name,
                        )
                        system.stop()
                    else:
                        logger.warning("%s: stopping now", signal.Signals(signum).name)
                        forced = True
                        nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            if parent is not None:
                nursery.start_soon(watch_parent, parent, system.stop)
            if exporter is not None:
                nursery.start_soon(exporter)
            try:
                await _run_reporting(system)
            finally:
                nursery.cancel_scope.cancel()
    if forced or interrupted:
        return EXIT_INTERRUPTED
    return EXIT_UNACKED if system.lifecycle.unacked_at_stop else EXIT_OK


async def _run_reporting(system: ActorSystem) -> None:
    try:
        await system.run()
    except SupervisorError as exc:
        logger.error("the system failed: %s", exc)
        raise
    except AuthenticationError:
        raise  # the server answered: the hint below would mislead
    except (ConnectError, TransportTimeout) as exc:
        raise type(exc)(
            f"{exc} (check that Redis runs at {redact(system.url)}, or pass --url / set ACTORS_URL)"
        ) from exc
