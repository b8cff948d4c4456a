"""The dashboard's actions on dead letters: replay and delete, one or all."""

from __future__ import annotations

from collections.abc import Sequence

from transports import (
    CommandError,
    ConfigurationError,
    MailboxSpec,
    ReplayError,
    Transport,
    check_dead_letter_ids,
)

from ._monitor import Snapshot

__all__ = ["Refused", "act"]


class Refused(Exception):
    """An action not done (or done in part), with the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


async def act(
    what: str,
    spec: MailboxSpec,
    ids: Sequence[str] | None,
    transport: Transport,
    snapshot: Snapshot,
) -> str:
    """Replay or delete (``what``) the dead letters ``ids`` of ``spec`` (all for None);
    return what was done, in words.

    Replaying into a pub/sub channel that no live node reads is refused: the
    messages would reach nobody.

    Raises:
        Refused: 404 for an unknown action, 400 for a bad id, 409 when refused or
            done in part (ids not found, letters kept), 502 when the store refused.
    """
    if what not in ("replay", "delete"):
        raise Refused(f"unknown action {what!r}: replay or delete", 404)
    try:
        if ids is not None:
            ids = check_dead_letter_ids(ids)
        if what == "delete":
            deleted = await transport.delete_dead_letters(spec, ids)
            return f"deleted {deleted} dead letter(s) of {spec}"
        if spec.kind == "pubsub" and not any(v.readers for v in snapshot.mailbox(str(spec))):
            raise Refused(
                f"not replayed: no live node subscribes to {spec}, so the messages would be lost",
                409,
            )
        replayed = await transport.replay_dead_letters(spec, ids)
    except ReplayError as exc:
        raise Refused(str(exc), 409) from exc
    except ConfigurationError as exc:
        raise Refused(str(exc), 400) from exc
    except CommandError as exc:
        raise Refused(f"{spec}: the store refused: {exc}", 502) from exc
    return f"replayed {replayed} dead letter(s) into {spec}"
