"""The store-administration commands: ``status`` and ``dead-letters``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import attrs

from transports import (
    CommandError,
    ConfigurationError,
    MailboxSpec,
    MailboxStats,
    ReplayError,
    check_dead_letter_ids,
)

from ._cli_parser import EXIT_FAILED, EXIT_NO_NODE, EXIT_OK, report_error, store_url
from ._codec import encode
from ._envelope import new_id
from ._groups import sole_error
from ._system import ActorSystem


async def dead_letters(args: argparse.Namespace) -> int:
    spec = MailboxSpec.parse(args.mailbox)
    ids = None if args.action == "list" or args.ids is None else check_dead_letter_ids(args.ids)
    system = ActorSystem(store_url(args, None))
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
                return report_error(problem)
    finally:
        await transport.aclose()
    return EXIT_OK


async def status(args: argparse.Namespace) -> int:
    named = [MailboxSpec.parse(address) for address in args.mailboxes]
    if args.group is not None:
        if not any(spec.kind == "stream" for spec in named):
            raise ConfigurationError("--group applies to stream MAILBOX arguments")
        named = [
            attrs.evolve(spec, group=args.group) if spec.kind == "stream" else spec
            for spec in named
        ]
    transport = ActorSystem(store_url(args, None)).lifecycle.open_transport()
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


async def publish(args: argparse.Namespace) -> int:
    """``publish``: send one JSON body to a mailbox in an envelope; print its id."""
    spec = MailboxSpec.parse(args.mailbox)
    message_id = new_id()  # printed below: no need to decode the payload for it
    payload = encode(args.body, id=message_id, headers=dict(args.header), tag=args.type)
    system = ActorSystem(store_url(args, None))
    transport = system.lifecycle.open_transport()
    try:
        await transport.send(spec, [payload])
    finally:
        await transport.aclose()
    print(message_id)
    return EXIT_OK


async def dashboard(args: argparse.Namespace) -> int:
    """``dashboard``: serve the web dashboard until SIGINT or SIGTERM.

    Raises:
        ConfigurationError: the dashboard extra is not installed.
        OSError: the address cannot be bound.
    """
    try:
        from .dashboard._serve import serve
    except ImportError as exc:
        raise ConfigurationError(
            f"the dashboard needs its extra ({exc.name} is missing):"
            " pip install 'actors[dashboard]'"
        ) from None
    transport = ActorSystem(store_url(args, None)).lifecycle.open_transport()
    try:
        await transport.ping()
        try:
            await serve(transport, args.host, args.port, args.token)
        except BaseExceptionGroup as group:
            bind = sole_error(group, OSError)
            if bind is None:
                raise
            print(f"error: cannot listen on {args.host}:{args.port}: {bind}", file=sys.stderr)
            return EXIT_FAILED
    finally:
        await transport.aclose()
    return EXIT_OK
