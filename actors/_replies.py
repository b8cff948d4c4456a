"""An asker's side of a reply (its value, or the remote failure it reports), and the
check of ``reply_to_allowed``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transports import ConfigurationError, MailboxSpec

from ._codec import Envelope, structure
from ._errors import RemoteError

__all__ = ["ERROR_MESSAGE", "ERROR_TYPE", "read_reply", "reply_patterns"]

ERROR_TYPE = "actors-error-type"
ERROR_MESSAGE = "actors-error"


def read_reply(reply: Envelope, spec: MailboxSpec, expected: Any) -> Any:
    """The value of ``reply``, an answer from ``spec`` to an ask: its body structured as
    ``expected`` (None: plain JSON data).

    Raises:
        RemoteError: the handler failed for good or rejected the message.
        CodecError: the body does not fit ``expected``.
    """
    if ERROR_TYPE in reply.headers:
        error_type = reply.headers[ERROR_TYPE]
        raise RemoteError(
            f"{spec} failed: {error_type}: {reply.headers.get(ERROR_MESSAGE, '')}",
            error_type=error_type,
        )
    if expected is None:
        return reply.body
    return structure(reply, expected)


def reply_patterns(allowed: Sequence[str]) -> tuple[str, ...]:
    """``reply_to_allowed``, checked: addresses, and prefixes ending in ``*``.

    Raises:
        ConfigurationError: a string rather than a sequence of them, or an entry that
            is neither an address nor a prefix of one.
    """
    if isinstance(allowed, str):
        raise ConfigurationError(
            f"reply_to_allowed must be a sequence of addresses, not the string {allowed!r}"
        )
    for entry in allowed:
        if entry == "*":
            continue
        try:
            if not isinstance(entry, str):
                raise ConfigurationError(f"{entry!r} is not a string")
            # A prefix is checked as an address it would allow.
            MailboxSpec.parse(f"{entry[:-1]}x" if entry.endswith("*") else entry)
        except ConfigurationError as exc:
            raise ConfigurationError(f"reply_to_allowed: {entry!r}: {exc}") from None
    return tuple(allowed)
