"""Mailbox constructors: the readable way to declare where an actor's messages live."""

from __future__ import annotations

from transports import MailboxSpec

__all__ = ["channel_mailbox", "list_mailbox", "stream_mailbox"]


def list_mailbox(name: str, *, at_most_once: bool = False, lease: float = 30.0) -> MailboxSpec:
    """A Redis list mailbox: at-least-once (or at-most-once, faster, when asked).

    ``lease``: seconds after which the messages held by a silent (dead) consumer
    are requeued for others.

    Raises:
        ConfigurationError: on a bad name or a non-positive lease.
    """
    return MailboxSpec("list", name, at_most_once=at_most_once, lease=lease)


def stream_mailbox(
    name: str, *, group: str | None = None, maxlen: int | None = None, lease: float = 30.0
) -> MailboxSpec:
    """A Redis stream mailbox read by a consumer group (default: the stream's name).

    At-least-once, ordered per instance. ``maxlen`` caps the stream (``MAXLEN ~``)
    on send; ``lease`` is the idle time after which a dead consumer's pending
    entries are claimed by another consumer.

    Raises:
        ConfigurationError: on a bad name or a non-positive number.
    """
    return MailboxSpec("stream", name, group=group, maxlen=maxlen, lease=lease)


def channel_mailbox(name: str, *, pattern: bool = False) -> MailboxSpec:
    """A Pub/Sub channel (or a glob ``pattern`` of channels): broadcast, at-most-once.

    Raises:
        ConfigurationError: on a bad name.
    """
    return MailboxSpec("pubsub", name, pattern=pattern)
