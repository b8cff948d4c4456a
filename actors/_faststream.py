"""FastStream interop: a codec that reads and writes FastStream's Redis messages.

FastStream (0.6 and later) writes a message in its ``BinaryMessageFormatV1``::

    b"\\x89BIN\\r\\n\\x1a\\n"  version: u16 = 1  headers_start: u32  data_start: u32
    header_count: u16  (key_len: u16, key, value_len: u16, value) * count  data

(big-endian), and still reads its older JSON format, ``{"data": "<text>", "headers":
{...}}``. The headers carry ``correlation_id``, ``reply_to`` (a channel name: a
FastStream responder PUBLISHes its reply there), ``content-type`` and ``message_id``;
the data is the body (JSON for ``application/json``, text for ``text/plain``). On a
stream the message is the entry's ``__data__`` field. This module implements the
formats itself: FastStream need not be installed.

An envelope maps onto it field by field; our type tag rides in the ``actors-type``
header (a FastStream handler ignores it), so a message without one, as a FastStream
publisher writes it, goes to the first handler whose type its body validates as.
A request's ``reply_to`` channel ``X`` is our ``pubsub:X``; a mailbox with this codec
may reply there (as a FastStream responder does), and an ask through it gives a
channel of its own as ``reply_to``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any, Literal

from transports import ConfigurationError, MailboxSpec

from . import _codec
from ._codec import DEFAULT_MAX_PAYLOAD
from ._codecs import Codec
from ._envelope import Envelope, new_id, type_tag
from ._errors import CodecError
from ._types import converter, named

__all__ = ["FastStreamCodec", "is_faststream"]

#: FastStream's mark of its binary format (``BinaryMessageFormatV1.IDENTITY_HEADER``).
MAGIC = b"\x89BIN\r\n\x1a\n"
_VERSION = 1
_TYPE_HEADER = "actors-type"
# Headers that are envelope fields, not the message's headers.
_OWN = frozenset({"correlation_id", "reply_to", "content-type", "message_id", _TYPE_HEADER})
_JSON = "application/json"
_TEXT = "text/plain"


def is_faststream(payload: bytes) -> bool:
    """True when ``payload`` is a message in FastStream's binary format."""
    return payload.startswith(MAGIC)


def _pack(headers: Mapping[str, str], data: bytes) -> bytes:
    """FastStream's ``BinaryMessageFormatV1`` of ``headers`` and ``data``."""
    parts = []
    for key, value in headers.items():
        for text in (key.encode(), value.encode()):
            parts.append(struct.pack(">H", len(text)))
            parts.append(text)
    packed = b"".join(parts)
    headers_start = len(MAGIC) + 2 + 8
    data_start = headers_start + 2 + len(packed)
    head = struct.pack(">HIIH", _VERSION, headers_start, data_start, len(headers))
    return b"".join((MAGIC, head, packed, data))


def _unpack(payload: bytes) -> tuple[dict[str, str], bytes]:
    """The headers and data of a binary message.

    Raises:
        CodecError: a truncated or malformed message, or another version.
    """
    try:
        version, headers_start, data_start = struct.unpack_from(">HII", payload, len(MAGIC))
        if version != _VERSION:
            raise CodecError(f"FastStream binary message of version {version}, not 1")
        (count,) = struct.unpack_from(">H", payload, headers_start)
        offset = headers_start + 2
        headers: dict[str, str] = {}
        for _ in range(count):
            texts = []
            for _ in range(2):
                (size,) = struct.unpack_from(">H", payload, offset)
                offset += 2
                if offset + size > len(payload):
                    raise CodecError("truncated FastStream binary message")
                texts.append(payload[offset : offset + size].decode())
                offset += size
            headers[texts[0]] = texts[1]
    except (struct.error, UnicodeDecodeError) as exc:
        raise CodecError(f"malformed FastStream binary message: {named(exc)}") from exc
    return headers, payload[data_start:]


def _json_message(payload: bytes) -> tuple[dict[str, str], bytes] | None:
    """The headers and data of FastStream's JSON format, or None if it is not one.
    (On a stream, an entry ``__data__ <json>`` reaches the codec as ``{"__data__":
    "<json>"}``, the transport's reading of an entry with fields of its own.)"""
    try:
        document = json.loads(payload)
        if isinstance(document, dict) and set(document) == {"__data__"}:
            document = json.loads(document["__data__"])
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("data"), str):
        return None
    headers = document.get("headers", {})
    if not isinstance(headers, dict):
        return None
    return {str(k): str(v) for k, v in headers.items()}, document["data"].encode()


class FastStreamCodec(Codec):
    """FastStream's Redis message formats: ``format="binary"`` (its default,
    ``BinaryMessageFormatV1``) or ``"json"`` (its older JSON format) for writing;
    both are read, and so are our own JSON envelopes and plain payloads.

    Raises:
        ConfigurationError: an unknown format.
    """

    name = "faststream"
    reply_kind = "pubsub"
    stream_field = "__data__"

    def __init__(self, format: Literal["binary", "json"] = "binary") -> None:
        if format not in ("binary", "json"):
            raise ConfigurationError(f"unknown FastStream format {format!r}: 'binary' or 'json'")
        self.format = format

    def __repr__(self) -> str:
        return f"FastStreamCodec(format={self.format!r})"

    def may_reply_to(self, box: MailboxSpec) -> bool:
        # FastStream's request/reply: the reply is PUBLISHed on the request's channel.
        return box.kind == "pubsub" and not box.pattern

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
        message_id = id or new_id()
        out = {"correlation_id": correlation_id or message_id, "message_id": message_id}
        try:
            # As FastStream's own encoder: None is empty, str is text, bytes as is,
            # anything else JSON.
            if body is None:
                data = b""
            elif isinstance(body, str):
                data, out["content-type"] = body.encode(), _TEXT
            elif isinstance(body, bytes):
                data = body
            else:
                data, out["content-type"] = _codec.dumps(converter.unstructure(body)), _JSON
        except Exception as exc:  # a hook of the user's may raise anything
            raise CodecError(f"cannot encode {type(body).__name__}: {named(exc)}") from exc
        if reply_to is not None:
            out["reply_to"] = reply_to.removeprefix("pubsub:")
        if tag is not None and not isinstance(body, bytes):  # (raw bytes have no tag)
            out[_TYPE_HEADER] = type_tag(type(body)) if tag is True else tag
        if headers:
            out.update(headers)
        if self.format == "json":
            return _codec.dumps({"data": data.decode("utf-8", "replace"), "headers": out})
        return _pack(out, data)

    def decode(self, payload: bytes, *, max_size: int = DEFAULT_MAX_PAYLOAD) -> Envelope:
        if len(payload) > max_size:
            raise CodecError(f"payload of {len(payload)} bytes exceeds the limit of {max_size}")
        if is_faststream(payload):
            headers, data = _unpack(payload)
        else:
            found = _json_message(payload) if payload[:1] == b"{" else None
            if found is None:
                # Our own envelope (a tell with another codec), or a plain payload:
                # FastStream too reads a message without its format as the body.
                return _codec.decode(payload, max_size=max_size)
            headers, data = found
        kind = headers.get("content-type")
        if not data and kind is None:
            envelope = Envelope(body=None, foreign=True)  # FastStream's None
        elif kind == _TEXT:
            try:
                envelope = Envelope(body=data.decode(), foreign=True, text=True)
            except UnicodeDecodeError as exc:
                raise CodecError(f"text/plain body is not UTF-8: {exc}") from exc
        else:
            envelope = _codec.decode(data, max_size=max_size)  # JSON, else text
            if not envelope.foreign:  # JSON data that looks like our envelope: data
                envelope = Envelope(body=json.loads(data), foreign=True)
        type_ = headers.get(_TYPE_HEADER)
        reply_to = headers.get("reply_to")
        envelope.id = headers.get("message_id") or envelope.id
        envelope.type = type_
        envelope.foreign = type_ is None
        envelope.correlation_id = headers.get("correlation_id")
        envelope.reply_to = f"pubsub:{reply_to}" if reply_to else None
        envelope.headers = {k: v for k, v in headers.items() if k not in _OWN}
        envelope.codec = self
        return envelope
