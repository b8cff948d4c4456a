"""The commands that append payloads to a mailbox: shared by the transport's ``send`` and
a consumer's ``settle`` (which sends a batch's results in the write of its acks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transports._exceptions import ConfigurationError

from .._values import MailboxSpec

__all__ = ["send_commands"]


def send_commands(
    spec: MailboxSpec, payloads: Sequence[bytes], *, sharded: bool
) -> list[tuple[Any, ...]]:
    """The commands that append ``payloads`` to ``spec`` (see ``RedisTransport.send``);
    ``sharded``: publish with ``SPUBLISH`` (sharded pub/sub, on a cluster).

    Raises:
        ConfigurationError: ``spec`` is a pub/sub pattern.
    """
    if spec.kind == "pubsub" and spec.pattern:
        raise ConfigurationError(f"cannot publish to pattern {spec.name!r}: use a channel")
    if not payloads:
        return []
    if spec.kind == "list":
        if spec.expire is not None:
            milliseconds = max(1, round(spec.expire * 1000))
            return [(b"RPUSH", spec.name, *payloads), (b"PEXPIRE", spec.name, milliseconds)]
        return [(b"RPUSH", spec.name, *payloads)]
    if spec.kind == "stream":
        head: tuple[Any, ...] = (b"XADD", spec.name)
        if spec.maxlen is not None:
            head += (b"MAXLEN", b"~", spec.maxlen)
        field = spec.field.encode()
        return [(*head, b"*", field, payload) for payload in payloads]
    publish = b"SPUBLISH" if sharded else b"PUBLISH"
    return [(publish, spec.name, payload) for payload in payloads]
