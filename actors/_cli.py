"""The command line: ``python -m actors run | dead-letters``.

Exit status: 0 after a clean stop, 1 when the system failed (its root supervisor
gave up, or the store is unreachable), 2 for a usage or configuration error
(a bad file, URL or argument), 3 when ``status --check`` finds no live node, 75 when
it stopped but could not ack some messages (the store did not answer in time: they
will be redelivered; the last log line says how many), 130 when a second signal cut
the shutdown short or a SIGINT interrupted the start. ``dead-letters replay`` exits 1
when some letters asked for were not replayed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence

import attrs
import trio

from transports import (
    ActorsError,
    AuthenticationError,
    CommandError,
    ConfigurationError,
    ConnectError,
    MailboxSpec,
    MailboxStats,
    ReplayError,
    TransportTimeout,
    check_dead_letter_ids,
    redact,
)

from ._errors import SupervisorError
from ._groups import sole_error
from ._lifecycle import DEFAULT_URL, SystemState
from ._loader import load_system
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
    workers_limit,
)

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_NO_NODE = 3  # `status --check`: the store answers, but no node is live
EXIT_UNACKED = 75  # sysexits' EX_TEMPFAIL: stopped, some messages will be redelivered

logger = logging.getLogger("actors.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m actors", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--url",
            help=f"store URL (default: $ACTORS_URL, else the system's own, else {DEFAULT_URL})",
        )
        p.add_argument(
            "--log-level",
            default="INFO",
            type=str.upper,  # before the choices: any case is accepted
            choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
            metavar="LEVEL",
            help="DEBUG, INFO (default), WARNING, ERROR or CRITICAL, in any case",
        )

    run = commands.add_parser("run", help="run the actor system defined in a file")
    run.add_argument("target", metavar="FILE[:NAME]", help="file defining an ActorSystem")
    run.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run N worker processes sharing the mailboxes, restarted if they die"
        f" (1 to {workers_limit()})",
    )
    run.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    run.add_argument("--parent-fd", type=int, default=None, help=argparse.SUPPRESS)
    common(run)

    dead = commands.add_parser("dead-letters", help="list or replay a mailbox's dead letters")
    actions = dead.add_subparsers(dest="action", required=True, metavar="{list,replay}")
    listing = actions.add_parser("list", help="print a mailbox's dead letters, oldest first")
    listing.add_argument("mailbox", metavar="MAILBOX", help=_ADDRESS)
    listing.add_argument(
        "--count", type=_positive, default=100, metavar="N", help="list at most N (default 100)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    common(listing)
    replay = actions.add_parser(
        "replay",
        help="send dead letters back into their mailbox",
        description="Send dead letters back into their mailbox, at attempt 1. Exit status 1 "
        "when some were not replayed: ids not found, or pub/sub letters that no subscriber "
        "received (those are kept).",
    )
    replay.add_argument("mailbox", metavar="MAILBOX", help=_ADDRESS)
    replay.add_argument(
        "--id",
        nargs="+",
        action="extend",
        dest="ids",
        metavar="ID",
        help="replay only these dead letters (ids as `list` prints them; repeatable)",
    )
    replay.add_argument("--json", action="store_true", help="print the outcome as JSON")
    common(replay)
    status = commands.add_parser("status", help="live nodes, their actors, mailbox depths")
    status.add_argument(
        "mailboxes",
        nargs="*",
        metavar="MAILBOX",
        help="show these mailboxes, whether a live node reads them or not "
        "(default: the mailboxes of the live nodes)",
    )
    status.add_argument(
        "--group",
        help="the consumer group of the stream MAILBOXes "
        "(default: the groups live nodes read, else the stream's name)",
    )
    status.add_argument(
        "--check",
        action="store_true",
        help=f"exit {EXIT_NO_NODE} when no node is live (for health probes)",
    )
    status.add_argument("--json", action="store_true", help="print one JSON document")
    common(status)
    return parser


_ADDRESS = "address such as stream:ledger, list:jobs or pubsub:news"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def _url(args: argparse.Namespace, system: ActorSystem | None) -> str:
    if args.url:
        return str(args.url)
    if os.environ.get("ACTORS_URL"):
        return os.environ["ACTORS_URL"]
    return system.url if system is not None else DEFAULT_URL


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command != "run":
        restore_default_signals()  # only `run` is quiet on signals as it starts
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "status":
            return trio.run(_status, args)
        return trio.run(_dead_letters, args)
    except BaseExceptionGroup as group:
        # Nurseries wrap errors in groups; one error of ours is reported as itself.
        if sole_error(group, BrokenPipeError) is not None:
            return _reader_gone()
        error = sole_error(group, ActorsError)
        if error is None:
            raise
        return _report(error)
    except ActorsError as exc:
        return _report(exc)
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """Standard output's reader went away (``status | head``): stop quietly, as a
    filter does, with nothing left to flush at exit (which would raise again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


def _report(exc: ActorsError) -> int:
    """Print ``exc`` as one line; return the exit status it calls for."""
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_FAILED


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
        system.url = _url(args, system)
        if args.workers is not None:
            argv = worker_argv(args.target, args.log_level)
            defer_signals()
            return trio.run(run_workers, argv, args.workers, system.url)
        if args.worker is not None:
            system.node = f"{system.node}-w{args.worker}"
        defer_signals()
        return trio.run(_serve, system, parent)
    except StartupInterrupted as exc:
        return exit_status(exc.signum)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


async def _serve(system: ActorSystem, parent: socket.socket | None = None) -> int:
    """Run ``system`` until SIGINT/SIGTERM, or until the ``--workers`` parent that
    shares the socket ``parent`` is gone; a second signal cuts the shutdown short.

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


async def _dead_letters(args: argparse.Namespace) -> int:
    spec = MailboxSpec.parse(args.mailbox)
    ids = None if args.action == "list" or args.ids is None else check_dead_letter_ids(args.ids)
    system = ActorSystem(_url(args, None))
    transport = system.lifecycle.open_transport()
    try:
        if args.action == "list":
            letters = await transport.dead_letters(spec, args.count)
            for letter in letters:
                row: dict[str, object] = {
                    "id": letter.id,
                    "attempts": letter.attempts,
                    "reason": letter.failure.reason,
                    "error_type": letter.failure.error_type,
                    "error": letter.failure.error,
                    "actor": letter.failure.actor,
                    "payload": letter.payload.decode("utf-8", "replace"),
                }
                if args.json:
                    print(json.dumps(row))
                else:
                    print(
                        f"{letter.id}  attempts={letter.attempts}  {letter.failure.reason}"
                        f"  {letter.failure.error_type}  {str(row['payload'])[:80]}"
                    )
            if not args.json:
                print(f"{len(letters)} dead letter(s) in {spec}")
        else:
            problem: ReplayError | None = None
            try:
                replayed = await transport.replay_dead_letters(spec, ids)
            except ReplayError as exc:  # the others were replayed: say how many, then why
                replayed, problem = exc.replayed, exc
            except CommandError as exc:
                if exc.code != "WRONGTYPE":
                    raise
                raise CommandError(
                    f"{spec}: {spec.name!r} or '{{{spec.name}}}:dead' holds another type of value"
                    " (WRONGTYPE): the dead letters not replayed are kept",
                    code=exc.code,
                ) from exc
            if args.json:
                report = {
                    "mailbox": str(spec),
                    "replayed": replayed,
                    "not_found": list(problem.not_found) if problem else [],
                    "kept": list(problem.kept) if problem else [],
                }
                print(json.dumps(report))
            else:
                print(f"replayed {replayed} dead letter(s) into {spec}")
            if problem is not None:
                return _report(problem)
    finally:
        await transport.aclose()
    return EXIT_OK


async def _status(args: argparse.Namespace) -> int:
    named = [MailboxSpec.parse(address) for address in args.mailboxes]
    if args.group is not None:
        if not any(spec.kind == "stream" for spec in named):
            raise ConfigurationError("--group applies to stream MAILBOX arguments")
        named = [
            attrs.evolve(spec, group=args.group) if spec.kind == "stream" else spec
            for spec in named
        ]
    transport = ActorSystem(_url(args, None)).lifecycle.open_transport()
    try:
        await transport.ping()
        nodes = await transport.nodes()
        now = time.time()
        live: dict[tuple[str, str | None], MailboxSpec] = {}
        errors: dict[tuple[str, str | None], str] = {}  # mailboxes with a wrong-typed key
        for node in nodes:
            for actor in node.info.get("actors", {}).values():
                spec = MailboxSpec.parse(actor["mailbox"])
                if spec.kind == "stream":
                    spec = attrs.evolve(spec, group=actor.get("group"))
                live[_box_key(spec)] = spec
                if actor.get("error"):
                    errors.setdefault(_box_key(spec), f"{actor['error']} (node {node.node})")
        boxes = live
        if named:
            # Named streams show the groups live nodes read, unless --group names one.
            boxes = {}
            for spec in named:
                groups = [
                    box
                    for box in live.values()
                    if args.group is None and spec.kind == "stream" and str(box) == str(spec)
                ]
                boxes.update((_box_key(box), box) for box in groups or [spec])
        stats: dict[tuple[str, str | None], MailboxStats | None] = {}
        for key in sorted(boxes, key=str):
            try:
                stats[key] = await transport.mailbox_stats(boxes[key])
            except CommandError as exc:
                if exc.code != "WRONGTYPE":
                    raise
                stats[key] = None
                # The server's words (not "EVALSHA: ..."), after the mailbox's name, as
                # a node reports a fault.
                errors.setdefault(key, f"{boxes[key]}: {exc.__cause__ or exc}")
    finally:
        await transport.aclose()
    report = {
        "nodes": [
            {
                "node": n.node,
                "host": n.info.get("host"),
                "pid": n.info.get("pid"),
                "actors": sorted(n.info.get("actors", {})),
                "last_seen": round(now - n.seen_at, 1),
            }
            for n in nodes
        ],
        "mailboxes": [
            {
                "mailbox": name,
                "group": group,
                "depth": s.depth if s else None,
                "pending": s.pending if s else None,
                "dead": s.dead if s else None,
            }
            | ({"error": errors[name, group]} if (name, group) in errors else {})
            for (name, group), s in stats.items()
        ],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return _checked(args, nodes)
    print(f"{len(nodes)} live node(s)")
    _table(
        ["NODE", "HOST", "PID", "ACTORS", "SEEN"],
        [
            [
                n.node,
                n.info.get("host"),
                n.info.get("pid"),
                ", ".join(sorted(n.info.get("actors", {}))),
                f"{now - n.seen_at:.1f}s ago",
            ]
            for n in nodes
        ],
    )
    print()
    _table(
        ["MAILBOX", "GROUP", "DEPTH", "PENDING", "DEAD"],
        [
            [name, group or "-", *((st.depth, st.pending, st.dead) if st else ("?", "?", "?"))]
            for (name, group), st in stats.items()
        ],
    )
    if not stats:
        print("(no live node reads a mailbox: name some to see them, as in `status list:jobs`)")
    for key in stats:
        if key in errors:
            print(f"error: {errors[key]}")
    return _checked(args, nodes)


def _box_key(spec: MailboxSpec) -> tuple[str, str | None]:
    """How status names a mailbox: its address, and its consumer group (streams only)."""
    return str(spec), spec.group_name if spec.kind == "stream" else None


def _checked(args: argparse.Namespace, nodes: Sequence[object]) -> int:
    """The exit status of ``status``: EXIT_NO_NODE with ``--check`` when no node is live."""
    if args.check and not nodes:
        print("error: no live node", file=sys.stderr)
        return EXIT_NO_NODE
    return EXIT_OK


def _table(header: list[str], rows: list[list[object]]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
