"""The envelope: a decoded message's body and metadata, and message ids and type tags."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Envelope", "new_id", "type_tag"]


# Message ids: a random per-process prefix and a counter, unique without a uuid4
# per message (a third of the cost of encoding a small message).
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count()


def new_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


def type_tag(tp: Any) -> str:
    """The tag naming ``tp`` on the wire: ``__message_type__`` if set, else its name."""
    tag = getattr(tp, "__message_type__", None)
    if isinstance(tag, str):
        return tag
    return str(getattr(tp, "__name__", repr(tp)))


@attrs.define(slots=True)
class Envelope:
    """A decoded message: its body (plain JSON data, not yet structured) and metadata.

    ``foreign`` is True when the payload was not written by actors (no envelope);
    ``text`` is True when it was not even JSON (the body is the text);
    ``unreadable`` then says why, when the text is JSON that cannot be read
    (an integer too large), and is empty otherwise.
    """

    body: Any
    id: str = attrs.field(factory=lambda: new_id())
    type: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    sent_at: float | None = None
    foreign: bool = False
    text: bool = False
    unreadable: str = ""
    #: The codec that decoded it (None: JSON): a reply goes back in the same.
    codec: Any = attrs.field(default=None, eq=False, repr=False)
