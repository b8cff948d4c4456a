"""Which codec a mailbox's messages are written and read with, and reading replies
whatever their codec."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from transports import ConfigurationError, MailboxSpec

from . import _codec
from ._codec import DEFAULT_MAX_PAYLOAD
from ._codecs import Codec, JsonCodec, MsgpackCodec, is_msgpack
from ._envelope import Envelope
from ._faststream import FastStreamCodec, is_faststream

__all__ = ["CodecChoice", "codec_named", "decode_reply"]


def codec_named(codec: Codec | str | None) -> Codec | None:
    """The codec ``codec`` names (``"json"``, ``"msgpack"``, ``"faststream"``), or
    ``codec`` itself (None stays None).

    Raises:
        ConfigurationError: an unknown name, or a codec whose package is missing.
    """
    if codec is None or isinstance(codec, Codec):
        return codec
    if codec == "json":
        return JsonCodec()
    if codec == "msgpack":
        return MsgpackCodec()
    if codec == "faststream":
        return FastStreamCodec()
    raise ConfigurationError(
        f"unknown codec {codec!r}: use 'json', 'msgpack', 'faststream' or a Codec instance"
    )


_MSGPACK: list[MsgpackCodec] = []


def _msgpack() -> MsgpackCodec:
    """One MsgpackCodec for the replies (made at the first, as msgpack is optional)."""
    if not _MSGPACK:
        _MSGPACK.append(MsgpackCodec())
    return _MSGPACK[0]


def decode_reply(payload: bytes, *, max_size: int = DEFAULT_MAX_PAYLOAD) -> Envelope:
    """Decode a reply to an ask, whichever codec the replier used (a reply goes back
    in its request's codec): FastStream's binary or JSON message, a MessagePack
    envelope, or JSON.

    Raises:
        CodecError: the payload is too large or malformed.
    """
    if is_faststream(payload):
        return FastStreamCodec().decode(payload, max_size=max_size)
    if is_msgpack(payload):
        return _msgpack().decode(payload, max_size=max_size)
    envelope = _codec.decode(payload, max_size=max_size)
    body = envelope.body
    if envelope.foreign and isinstance(body, dict) and body.keys() == {"data", "headers"}:
        return FastStreamCodec().decode(payload, max_size=max_size)  # its JSON format
    return envelope


class CodecChoice:
    """The codec of each mailbox: its own (``list_mailbox(..., codec=...)``), else that
    of the actor declared on it (found by ``declared``), else ``default``."""

    def __init__(self, default: Codec, declared: Callable[[], Iterable[MailboxSpec]]) -> None:
        self.default = default
        self._declared = declared
        self._routes: dict[tuple[MailboxSpec, int], tuple[MailboxSpec, Codec]] = {}
        # The hot path (an actor's own spec object, sent to again and again): by
        # identity, the spec kept so that its id is not reused while it is here.
        self._by_id: dict[int, tuple[MailboxSpec, MailboxSpec, Codec]] = {}

    def route(self, spec: MailboxSpec) -> tuple[MailboxSpec, Codec]:
        """``spec`` with its codec's stream field, and its codec."""
        known = self._by_id.get(id(spec))
        if known is not None and known[0] is spec:
            return known[1], known[2]
        key = (spec, id(spec.codec))
        found = self._routes.get(key)
        if found is None:
            codec: Any = spec.codec
            if codec is None:
                codec = next(
                    (d.codec for d in self._declared() if d == spec and d.codec is not None),
                    self.default,
                )
            routed = spec
            if spec.kind == "stream" and spec.field != codec.stream_field:
                routed = attrs.evolve(spec, field=codec.stream_field)
            found = (routed, codec)
        if len(self._routes) > 1024 or len(self._by_id) > 1024:
            # Ad hoc addresses come and go: keep it bounded.
            self._routes.clear()
            self._by_id.clear()
        self._routes[key] = found
        self._by_id[id(spec)] = (spec, *found)
        return found
