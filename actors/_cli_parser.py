"""The command line's arguments, exit statuses and the URL it connects to."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from typing import Any

from transports import ActorsError, ConfigurationError

from . import __version__
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


# What each command's --help ends with: the exit statuses it may return.
_EXITS = {
    "run": {
        EXIT_OK: "stopped cleanly (SIGINT or SIGTERM)",
        EXIT_FAILED: "the system failed: its root supervisor gave up, a lifespan hook failed,"
        " or the store is unreachable",
        EXIT_USAGE: "a usage or configuration error: the file or module fails to import, "
        "defines no system or several, a bad URL, a node name another live process holds",
        EXIT_UNACKED: "stopped, but some messages could not be acked in time (they will be "
        "redelivered)",
        EXIT_INTERRUPTED: "a second signal cut the stop short, or SIGINT interrupted the start",
    },
    "status": {
        EXIT_OK: "printed",
        EXIT_FAILED: "the store failed or is unreachable",
        EXIT_USAGE: "a usage error: a bad address, URL or argument",
        EXIT_NO_NODE: "--check found no live node",
    },
    "dead-letters list": {
        EXIT_OK: "printed",
        EXIT_FAILED: "the store failed or is unreachable",
        EXIT_USAGE: "a usage error: a bad address, URL or argument",
    },
    "dead-letters replay": {
        EXIT_OK: "every letter asked for was replayed",
        EXIT_FAILED: "some were not (ids not found, or pub/sub letters no subscriber "
        "received: kept), or the store failed",
        EXIT_USAGE: "a usage error: a bad address, id, URL or argument",
    },
    "dashboard": {
        EXIT_OK: "stopped (SIGINT or SIGTERM)",
        EXIT_FAILED: "the store is unreachable, or the address cannot be bound",
        EXIT_USAGE: "a usage error: a bad URL or argument, or the dashboard extra is missing",
    },
    "publish": {
        EXIT_OK: "the store has the message (its id is printed)",
        EXIT_FAILED: "the store failed or is unreachable",
        EXIT_USAGE: "a usage error: a bad address, JSON body, header, URL or argument",
    },
}


def _epilog(command: str) -> str:
    lines = [
        textwrap.fill(meaning, 79, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
        for code, meaning in _EXITS[command].items()
    ]
    return "exit status:\n" + "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The parser of ``python -m actors``: every command has a description and ends its
    ``--help`` with its exit statuses."""
    top = argparse.ArgumentParser(
        prog="python -m actors",
        description="Run and operate actor systems on Redis: durable mailboxes, supervision.",
        epilog="exit status: 0 done; 1 failed (the system, or the store); 2 a usage or "
        "configuration error; 3 `status --check` found no live node; 75 `run` stopped "
        "with messages it could not ack; 130 interrupted. `python -m actors COMMAND "
        "--help` tells each command's arguments and exit statuses.",
    )
    top.add_argument("--version", action="version", version=f"actors {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, help: str, description: str, into: Any = commands
    ) -> argparse.ArgumentParser:
        return into.add_parser(  # type: ignore[no-any-return]
            name.rpartition(" ")[2],
            help=help,
            description=textwrap.fill(description, 79),
            epilog=_epilog(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def common(p: argparse.ArgumentParser, *, logs: bool = False) -> None:
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
        if logs:
            p.add_argument(
                "--log-format",
                choices=["text", "json"],
                default="text",
                help="text (default), or json: one JSON object per line",
            )
            p.add_argument(
                "--log-config",
                metavar="FILE",
                help="a logging configuration (JSON, or TOML: a dict for "
                "logging.config.dictConfig); overrides --log-level and --log-format",
            )

    run = command(
        "run",
        "run the actor system defined in a file or module",
        "Import FILE (a path: app/system.py) or MODULE (a dotted name: myapp.system, "
        "imported with the current directory on the path), find its ActorSystem (or the "
        "one named NAME), connect and run its supervision tree until SIGINT or SIGTERM, "
        "then stop gracefully.",
    )
    run.add_argument(
        "target",
        metavar="FILE[:NAME]|MODULE[:NAME]",
        help="file or module defining an ActorSystem",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run N worker processes sharing the mailboxes, restarted if they die"
        f" (1 to {workers_limit()})",
    )
    run.add_argument(
        "--reload",
        action="store_true",
        help="for development: restart the system when a .py file under the current "
        "directory (or the file's) changes (needs watchfiles: pip install 'actors[reload]')",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="N",
        help="serve Prometheus metrics at http://HOST:N/metrics (with --workers, worker i "
        "on N+i; needs prometheus_client: pip install 'actors[metrics]')",
    )
    run.add_argument(
        "--metrics-host",
        default="0.0.0.0",
        metavar="HOST",
        help="the address --metrics-port listens on (default 0.0.0.0: all)",
    )
    run.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    run.add_argument("--parent-fd", type=int, default=None, help=argparse.SUPPRESS)
    common(run, logs=True)

    dead = commands.add_parser(
        "dead-letters",
        help="list or replay a mailbox's dead letters",
        description="List a mailbox's dead letters, or send them back into it.",
        epilog="`python -m actors dead-letters list --help` and `... replay --help` tell "
        "their arguments and exit statuses (0 done, 1 failed or not all replayed, 2 a "
        "usage error).",
    )
    actions = dead.add_subparsers(dest="action", required=True, metavar="{list,replay}")
    listing = command(
        "dead-letters list",
        "print a mailbox's dead letters, oldest first",
        "Print a mailbox's dead letters, oldest first: id, attempts, reason, error, payload.",
        actions,
    )
    listing.add_argument("mailbox", metavar="MAILBOX", help=ADDRESS)
    listing.add_argument(
        "--count", type=positive, default=100, metavar="N", help="list at most N (default 100)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    common(listing)
    replay = command(
        "dead-letters replay",
        "send dead letters back into their mailbox",
        "Send dead letters back into their mailbox, at attempt 1 (all of them, or those "
        "--id names). A pub/sub letter that no subscriber received is kept.",
        actions,
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
    status = command(
        "status",
        "live nodes, their actors, mailbox depths",
        "Print the live nodes (host, pid, actors, last heartbeat) and the depth, pending "
        "and dead counts of their mailboxes, or of the MAILBOXes named.",
    )
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
    publish = command(
        "publish",
        "send one message to a mailbox",
        "Send BODY (JSON) to MAILBOX in an envelope, as `tell` does, and print the "
        "message's id. Without --type, the message goes to the first handler whose type "
        "the body validates as; with it, to the handler of that type tag.",
    )
    publish.add_argument("mailbox", metavar="MAILBOX", help=ADDRESS)
    publish.add_argument("body", metavar="BODY", type=_json, help="a JSON value: '{\"a\": 1}'")
    publish.add_argument(
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="NAME=VALUE",
        help="a header of the message (repeatable)",
    )
    publish.add_argument(
        "--type", metavar="TAG", help="the body's type tag (a handler's message class name)"
    )
    common(publish)
    dashboard = command(
        "dashboard",
        "a live web dashboard of the store",
        "Serve a web page of the live nodes (their supervision trees) and their "
        "mailboxes (counts, throughput, dead letters to replay or delete), updated "
        "every second (needs the dashboard extra: pip install 'actors[dashboard]').",
    )
    dashboard.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    dashboard.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: 8000)"
    )
    dashboard.add_argument(
        "--token",
        default=os.environ.get("ACTORS_DASHBOARD_TOKEN") or None,
        help="require this token to replay or delete dead letters "
        "(default: $ACTORS_DASHBOARD_TOKEN; none: anyone who reaches the page may)",
    )
    common(dashboard)
    return top


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


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
