"""Mailbox constructors: the readable way to declare where an actor's messages live."""

from __future__ import annotations

from typing import Any

from transports import DEAD_MAXLEN, ConfigurationError, MailboxSpec

from ._codec_choice import codec_named
from ._codecs import Codec

__all__ = ["channel_mailbox", "list_mailbox", "one_mailbox", "stream_mailbox"]


def list_mailbox(
    name: str,
    *,
    at_most_once: bool = False,
    lease: float = 30.0,
    dead_maxlen: int | None = DEAD_MAXLEN,
    codec: Codec | str | None = None,
) -> MailboxSpec:
    """A Redis list mailbox: at-least-once (or at-most-once, faster, when asked).

    ``lease``: seconds after which the messages held by a silent (dead) consumer
    are requeued for others. ``dead_maxlen``: how many dead letters are kept (the
    newest; ``None`` for all). ``codec``: how its messages are encoded (``"json"``,
    ``"msgpack"``, ``"faststream"`` or a :class:`Codec`; default: the system's).

    Raises:
        ConfigurationError: on a bad name or a non-positive number, an unknown codec.
    """
    return MailboxSpec(
        "list",
        name,
        at_most_once=at_most_once,
        lease=lease,
        dead_maxlen=dead_maxlen,
        codec=codec_named(codec),
    )


def stream_mailbox(
    name: str,
    *,
    group: str | None = None,
    maxlen: int | None = None,
    lease: float = 30.0,
    dead_maxlen: int | None = DEAD_MAXLEN,
    codec: Codec | str | None = None,
) -> MailboxSpec:
    """A Redis stream mailbox read by a consumer group (default: the stream's name).

    At-least-once, ordered per instance. ``maxlen`` caps the stream (``MAXLEN ~``)
    on send; ``lease`` is the idle time after which a dead consumer's pending
    entries are claimed by another consumer; ``dead_maxlen`` is how many dead
    letters are kept (the newest; ``None`` for all); ``codec`` as for
    :func:`list_mailbox` (it also names the entry field: ``__data__`` for FastStream).

    Raises:
        ConfigurationError: on a bad name or a non-positive number, an unknown codec.
    """
    chosen = codec_named(codec)
    return MailboxSpec(
        "stream",
        name,
        group=group,
        maxlen=maxlen,
        lease=lease,
        dead_maxlen=dead_maxlen,
        codec=chosen,
        field=chosen.stream_field if chosen is not None else "message",
    )


def channel_mailbox(
    name: str,
    *,
    pattern: bool = False,
    dead_maxlen: int | None = DEAD_MAXLEN,
    codec: Codec | str | None = None,
) -> MailboxSpec:
    """A Pub/Sub channel (or a glob ``pattern`` of channels): broadcast, at-most-once.

    ``dead_maxlen`` is how many dead letters are kept (the newest; ``None`` for all);
    ``codec`` as for :func:`list_mailbox`.

    Raises:
        ConfigurationError: on a bad name or a non-positive ``dead_maxlen``, an unknown
            codec.
    """
    return MailboxSpec(
        "pubsub", name, pattern=pattern, dead_maxlen=dead_maxlen, codec=codec_named(codec)
    )


def one_mailbox(
    *,
    channel: str | None,
    pattern: str | None,
    list: str | None,  # the FastStream-style keyword users expect
    stream: str | None,
    mailbox: MailboxSpec | None,
    **options: Any,
) -> MailboxSpec:
    """The mailbox named by exactly one of the keywords of ``@system.actor`` / ``publisher``.

    Raises:
        ConfigurationError: none or several given.
    """
    candidates = {
        "channel": channel,
        "pattern": pattern,
        "list": list,
        "stream": stream,
        "mailbox": mailbox,
    }
    given = {k: v for k, v in candidates.items() if v is not None}
    if len(given) != 1:
        raise ConfigurationError(
            "give exactly one of channel=, pattern=, list=, stream= or mailbox=, "
            f"not {sorted(given) or 'none'}"
        )
    if mailbox is not None:
        return mailbox
    if channel is not None:
        return channel_mailbox(channel)
    if pattern is not None:
        return channel_mailbox(pattern, pattern=True)
    if list is not None:
        return list_mailbox(list, **options)
    assert stream is not None
    return stream_mailbox(stream, **options)
