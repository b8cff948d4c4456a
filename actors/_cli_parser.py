"""The command line's arguments, exit statuses and the URL it connects to."""

from __future__ import annotations

import argparse
import os
import sys

from transports import ActorsError, ConfigurationError

from ._lifecycle import DEFAULT_URL
from ._system import ActorSystem
from ._workers import workers_limit

__all__ = [
    "ADDRESS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NO_NODE",
    "EXIT_OK",
    "EXIT_UNACKED",
    "EXIT_USAGE",
    "parser",
    "positive",
    "report_error",
    "store_url",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_NO_NODE = 3  # `status --check`: the store answers, but no node is live
EXIT_UNACKED = 75  # sysexits' EX_TEMPFAIL: stopped, some messages will be redelivered


def parser() -> argparse.ArgumentParser:
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
    listing.add_argument("mailbox", metavar="MAILBOX", help=ADDRESS)
    listing.add_argument(
        "--count", type=positive, default=100, metavar="N", help="list at most N (default 100)"
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
    replay.add_argument("mailbox", metavar="MAILBOX", help=ADDRESS)
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


ADDRESS = "address such as stream:ledger, list:jobs or pubsub:news"


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def store_url(args: argparse.Namespace, system: ActorSystem | None) -> str:
    if args.url:
        return str(args.url)
    if os.environ.get("ACTORS_URL"):
        return os.environ["ACTORS_URL"]
    return system.url if system is not None else DEFAULT_URL


def report_error(exc: ActorsError) -> int:
    """Print ``exc`` as one line; return the exit status it calls for."""
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_FAILED
