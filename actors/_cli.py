"""The command line: ``python -m actors run | dead-letters``.

Exit status: 0 after a clean stop, 1 when the system failed (its root supervisor
gave up, or the store is unreachable), 2 for a usage or configuration error
(a bad file, URL or argument), 130 when a second signal cut the shutdown short.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence

import attrs
import trio

from transports._urls import redact

from ._exceptions import (
    ActorsError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    SupervisorError,
    TransportTimeout,
)
from ._groups import sole_error
from ._loader import load_system
from ._system import DEFAULT_URL, ActorSystem
from ._workers import run_workers, worker_argv

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

logger = logging.getLogger("actors.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m actors", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--url",
            help=f"store URL (default: $ACTORS_URL, else the system's own, else {DEFAULT_URL})",
        )
        p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")

    run = commands.add_parser("run", help="run the actor system defined in a file")
    run.add_argument("target", metavar="FILE[:NAME]", help="file defining an ActorSystem")
    run.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="run N worker processes sharing the mailboxes, restarted if they die",
    )
    run.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    common(run)

    dead = commands.add_parser("dead-letters", help="list or replay a mailbox's dead letters")
    dead.add_argument("action", choices=["list", "replay"])
    dead.add_argument(
        "mailbox", metavar="MAILBOX", help="address such as stream:ledger or list:jobs"
    )
    dead.add_argument("--count", type=int, default=100, help="how many to list (default 100)")
    dead.add_argument("--id", action="append", dest="ids", help="replay only this id (repeatable)")
    dead.add_argument("--json", action="store_true", help="one JSON object per line")
    common(dead)
    status = commands.add_parser("status", help="live nodes, their actors, mailbox depths")
    status.add_argument("--json", action="store_true", help="print one JSON document")
    common(status)
    return parser


def _url(args: argparse.Namespace, system: ActorSystem | None) -> str:
    if args.url:
        return str(args.url)
    if os.environ.get("ACTORS_URL"):
        return os.environ["ACTORS_URL"]
    return system.url if system is not None else DEFAULT_URL


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "run":
            system = load_system(args.target)
            system.url = _url(args, system)
            if args.workers:
                if args.workers < 1:
                    raise ConfigurationError(f"--workers must be >= 1, not {args.workers}")
                argv = worker_argv(args.target, args.log_level)
                return trio.run(run_workers, argv, args.workers, system.url)
            if args.worker is not None:
                system.node = f"{system.node}-w{args.worker}"
            return trio.run(_serve, system)
        if args.command == "status":
            return trio.run(_status, args)
        return trio.run(_dead_letters, args)
    except BaseExceptionGroup as group:
        # Nurseries wrap errors in groups; one error of ours is reported as itself.
        error = sole_error(group, ActorsError)
        if error is None:
            raise
        return _report(error)
    except ActorsError as exc:
        return _report(exc)


def _report(exc: ActorsError) -> int:
    """Print ``exc`` as one line; return the exit status it calls for."""
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_FAILED


async def _serve(system: ActorSystem) -> int:
    """Run ``system`` until SIGINT/SIGTERM; a second signal cuts the shutdown short."""
    forced = False
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal forced
                async for signum in signals:
                    if not system._stop.is_set():
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
            try:
                await _run_reporting(system)
            finally:
                nursery.cancel_scope.cancel()
    return EXIT_INTERRUPTED if forced else EXIT_OK


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
    from transports import MailboxSpec

    spec = MailboxSpec.parse(args.mailbox)
    system = ActorSystem(_url(args, None))
    transport = system._open_transport()
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
            count = await transport.replay_dead_letters(spec, args.ids)
            print(f"replayed {count} dead letter(s) into {spec}")
    finally:
        await transport.aclose()
    return EXIT_OK


async def _status(args: argparse.Namespace) -> int:
    from transports import MailboxSpec

    transport = ActorSystem(_url(args, None))._open_transport()
    try:
        await transport.ping()
        nodes = await transport.nodes()
        now = time.time()
        boxes: dict[str, MailboxSpec] = {}
        for node in nodes:
            for actor in node.info.get("actors", {}).values():
                spec = MailboxSpec.parse(actor["mailbox"])
                if spec.kind == "stream":
                    spec = attrs.evolve(spec, group=actor.get("group"))
                boxes[f"{spec} ({spec.group_name})" if spec.kind == "stream" else str(spec)] = spec
        stats = {name: await transport.mailbox_stats(spec) for name, spec in sorted(boxes.items())}
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
            {"mailbox": name, "depth": s.depth, "pending": s.pending, "dead": s.dead}
            for name, s in stats.items()
        ],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
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
        ["MAILBOX", "DEPTH", "PENDING", "DEAD"],
        [[name, st.depth, st.pending, st.dead] for name, st in stats.items()],
    )
    return EXIT_OK


def _table(header: list[str], rows: list[list[object]]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
