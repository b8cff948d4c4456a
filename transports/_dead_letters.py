"""Checks shared by the stores' dead-letter replays: ids asked for, and what was replayed."""

from __future__ import annotations

import re
from collections.abc import Sequence

from transports._exceptions import ConfigurationError, ReplayError

from ._values import MailboxSpec

__all__ = ["check_dead_letter_ids", "check_replayed"]

_ENTRY_ID = re.compile(r"^[0-9]+-[0-9]+$")  # a stream entry id, as XADD makes them


def check_dead_letter_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` without repeats, once each is a dead letter id (``1700000000000-0``).

    Raises:
        ConfigurationError: naming the ids that are not.
    """
    bad = [id_ for id_ in ids if not (isinstance(id_, str) and _ENTRY_ID.match(id_))]
    if bad:
        raise ConfigurationError(
            f"not a dead letter id: {', '.join(map(repr, bad))}"
            " (dead letter ids look like 1700000000000-0)"
        )
    return list(dict.fromkeys(ids))


def check_replayed(
    spec: MailboxSpec,
    replayed: int,
    not_found: Sequence[str] = (),
    unheard: Sequence[str] = (),
    empty: Sequence[str] = (),
) -> int:
    """Return ``replayed`` when every dead letter asked for was replayed.

    Raises:
        ReplayError: naming the ids ``not_found``, the letters kept because no
            subscriber received them (``unheard``) and those kept because they hold
            no payload (``empty``), after how many were replayed.
    """
    if not (not_found or unheard or empty):
        return replayed

    def named(ids: Sequence[str]) -> str:
        shown = ", ".join(ids[:10])
        return shown if len(ids) <= 10 else f"{shown}, ... ({len(ids)} in all)"

    problems = []
    if unheard:
        problems.append(
            f"kept {len(unheard)} dead letter(s) that no subscriber received: {named(unheard)}"
            " (replay them once a subscriber listens)"
        )
    if empty:
        problems.append(f"kept {len(empty)} dead letter(s) without a payload: {named(empty)}")
    if not_found:
        problems.append(f"dead letter(s) not found: {named(not_found)}")
    raise ReplayError(
        f"{spec}: {'; '.join(problems)}; replayed {replayed}",
        replayed=replayed,
        not_found=tuple(not_found),
        kept=(*unheard, *empty),
    )
