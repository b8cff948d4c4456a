"""Reading what a mailbox's store keeps about it: dead letters and node records."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._values import DeadLetter, Failure, NodeInfo
from .client import RAW, Redis

__all__ = ["delete_dead_letters", "parse_dead_letter", "parse_node"]


async def delete_dead_letters(client: Redis, dead: str, ids: Sequence[str] | None) -> int:
    """Delete the entries ``ids`` of the dead-letter stream ``dead`` (all: those up to
    its newest entry now); return how many were there."""
    if ids is not None:
        if not ids:
            return 0
        return int(await client.execute_command(b"XDEL", dead, *ids))
    newest = await client.execute_command(b"XREVRANGE", dead, b"+", b"-", b"COUNT", 1, **RAW)
    if not newest:
        return 0
    ms, _, seq = newest[0][0].decode().partition("-")
    return int(await client.execute_command(b"XTRIM", dead, b"MINID", f"{ms}-{int(seq) + 1}"))


def parse_dead_letter(entry_id: str, fields: Sequence[bytes]) -> DeadLetter:
    # "replace": the entry:<field> names of a kept stream entry may be any bytes.
    values = {
        fields[i].decode("utf-8", "replace"): fields[i + 1] for i in range(0, len(fields) - 1, 2)
    }

    def text(name: str) -> str:
        return values.get(name, b"").decode("utf-8", "replace")

    try:
        attempts = int(values.get("attempts", b"1"))
        dead_at = float(values.get("dead_at", b"0"))
    except ValueError:
        attempts, dead_at = 1, 0.0
    return DeadLetter(
        id=entry_id,
        payload=values.get("payload", b""),
        failure=Failure(
            reason=text("reason"),
            actor=text("actor"),
            error_type=text("error_type"),
            error=text("error"),
            traceback=text("traceback"),
        ),
        attempts=attempts,
        dead_at=dead_at,
    )


def parse_node(node: str, raw: bytes) -> NodeInfo | None:
    """The node record ``raw`` (JSON of info, ``seen_at``, ``instance``), or None when
    it was not written by us."""
    try:
        record = json.loads(raw)
        return NodeInfo(
            node, dict(record["info"]), float(record["seen_at"]), str(record.get("instance", ""))
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
