"""Pluggable codecs: how an envelope becomes bytes in a mailbox, and back.

A codec is chosen per mailbox (``list_mailbox("orders", codec="msgpack")``), else per
system (``ActorSystem(url, codec=...)``), else JSON. What a message *is* (attrs
class, pydantic model, msgspec Struct, plain data) is the converter's business
(``_types``); a codec only serializes the envelope around its unstructured body:

- :class:`JsonCodec`: the default, the wire format of the README (``_codec``).
- :class:`MsgpackCodec`: the same envelope as a MessagePack map (``msgpack`` package,
  the ``actors[msgpack]`` extra). A payload that is not a MessagePack map is read as
  the JSON codec reads it, so plain clients (``redis-cli``) can still write JSON.
- ``FastStreamCodec`` (``_faststream``): FastStream's Redis message formats.

A reply goes back in the codec its request came in; an asker reads its replies
whatever their codec (``_codec_choice.decode_reply``); ``_codec_choice`` also
chooses each mailbox's codec.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from transports import ConfigurationError, MailboxSpec

from . import _codec
from ._codec import DEFAULT_MAX_PAYLOAD
from ._envelope import Envelope
from ._errors import CodecError
from ._types import named

__all__ = ["Codec", "JsonCodec", "MsgpackCodec", "is_msgpack"]


class Codec:
    """How envelopes are written into a mailbox and read back: subclass and override
    :meth:`encode` and :meth:`decode`.

    Class attributes:
        name: what ``codec="..."`` calls it.
        reply_kind: the kind of reply box an ask through this codec gives as its
            ``reply_to``: ``"list"`` (ours) or ``"pubsub"`` (a channel, FastStream's).
        stream_field: the stream entry field a payload is written to.
    """

    name: ClassVar[str] = ""
    reply_kind: ClassVar[Literal["list", "pubsub"]] = "list"
    stream_field: ClassVar[str] = "message"

    def encode(
        self,
        body: Any,
        *,
        id: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
        tag: str | Literal[True] | None = True,
    ) -> bytes:
        """Encode ``body`` in an envelope (see ``_codec.encode`` for the arguments).

        Raises:
            CodecError: the body cannot be encoded.
        """
        raise NotImplementedError

    def decode(self, payload: bytes, *, max_size: int = DEFAULT_MAX_PAYLOAD) -> Envelope:
        """Decode a payload into an :class:`Envelope`.

        Raises:
            CodecError: the payload is too large or malformed.
        """
        raise NotImplementedError

    def may_reply_to(self, box: MailboxSpec) -> bool:
        """True when a request read by this codec may be answered in ``box`` although
        ``reply_to_allowed`` does not name it (FastStream's reply channels)."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class JsonCodec(Codec):
    """The default codec: UTF-8 JSON envelopes (the README's "Wire format")."""

    name = "json"

    def encode(
        self,
        body: Any,
        *,
        id: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
        tag: str | Literal[True] | None = True,
    ) -> bytes:
        return _codec.encode(
            body, id=id, correlation_id=correlation_id, reply_to=reply_to, headers=headers, tag=tag
        )

    def decode(self, payload: bytes, *, max_size: int = DEFAULT_MAX_PAYLOAD) -> Envelope:
        return _codec.decode(payload, max_size=max_size)


# The first byte of a MessagePack map (fixmap, map 16, map 32): never the first byte
# of JSON or UTF-8 text, so a msgpack mailbox still reads what plain clients write.
_MSGPACK_MAP = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}


class MsgpackCodec(Codec):
    """The envelope of the JSON codec as a MessagePack map (smaller, faster to parse
    for large bodies). Needs the ``msgpack`` package (``pip install actors[msgpack]``).

    Raises:
        ConfigurationError: msgpack is not installed.
    """

    name = "msgpack"

    def __init__(self) -> None:
        try:
            # Optional: imported by those who use it (and untyped).
            msgpack = importlib.import_module("msgpack")
        except ImportError as exc:
            raise ConfigurationError(
                "the msgpack codec needs the msgpack package: pip install 'actors[msgpack]'"
            ) from exc
        self._msgpack: Any = msgpack

    def encode(
        self,
        body: Any,
        *,
        id: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
        tag: str | Literal[True] | None = True,
    ) -> bytes:
        try:
            data = _codec.to_wire(body, id, correlation_id, reply_to, headers, tag)
            return self._msgpack.packb(data)  # type: ignore[no-any-return]
        except Exception as exc:  # a hook of the user's may raise anything
            raise CodecError(f"cannot encode {type(body).__name__}: {named(exc)}") from exc

    def decode(self, payload: bytes, *, max_size: int = DEFAULT_MAX_PAYLOAD) -> Envelope:
        if len(payload) > max_size:
            raise CodecError(f"payload of {len(payload)} bytes exceeds the limit of {max_size}")
        if not payload or payload[0] not in _MSGPACK_MAP:
            return _codec.decode(payload, max_size=max_size)  # JSON or text, from a client
        try:
            data = self._msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception as exc:  # ExtraData, FormatError, StackError, ValueError...
            try:  # UTF-8 text may begin with 0xDE or 0xDF too (Thaana, N'Ko)
                return _codec.decode(payload, max_size=max_size)
            except CodecError:
                raise CodecError(f"payload is not MessagePack: {named(exc)}") from exc
        return _codec.from_wire(data, self)


def is_msgpack(payload: bytes) -> bool:
    """True when ``payload`` begins as a MessagePack map does (a msgpack envelope)."""
    return bool(payload) and payload[0] in _MSGPACK_MAP
