"""Messages on the wire: the envelope in JSON (the converter is in ``_types``).

A payload is UTF-8 JSON. Messages the runtime sends are wrapped in an envelope
object marked ``"actors": 1``::

    {"actors": 1, "id": "…", "type": "Deposit", "body": {...},
     "correlation_id": null, "reply_to": "list:…", "headers": {}, "sent_at": 1732…}

Anything else is a *foreign* payload, written by another client
(``redis-cli RPUSH orders '{"id": 1}'``): the whole JSON value is the body, and
text that is not JSON is a body for handlers that take ``str``. Payloads are
data only: no pickle, no eval, no import of names. A type tag only selects among
the types a handler declared.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import orjson

from ._envelope import Envelope, new_id, type_tag
from ._errors import CodecError
from ._types import (
    converter,
    describe_type as describe_type,
    named,
    structure as structure,
    too_large,
    unsupported as unsupported,
)

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "Envelope",
    "converter",
    "decode",
    "describe_type",
    "dumps",
    "encode",
    "from_wire",
    "structure",
    "to_wire",
    "type_tag",
    "unsupported",
]

DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024
_MARK = "actors"
# orjson turns an integer beyond 64 bits into a float, silently rounding it; any run of
# 19 digits might be one, and sends the payload down the standard library's exact path.
# (Found by translating digits to "0" and the rest to " ": 4x cheaper than a regex.)
_DIGITS_ONLY = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_RUN = b"0" * 19
_UNPARSED = object()


# The C scanner json.loads uses, without its whitespace regexes (not in typeshed).
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def dumps(wire: Any) -> bytes:
    """Compact UTF-8 JSON: orjson (about 20x faster), else the standard library for
    what orjson refuses (integers beyond 64 bits).

    Raises:
        TypeError, ValueError: ``wire`` is not JSON data.
    """
    try:
        return orjson.dumps(wire, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode()


def _loads(text: str) -> Any:
    """``json.loads`` for one document, skipping its whitespace regexes when there is
    no whitespace around the value (compact JSON, as every actors payload is)."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)  # leading whitespace, or not JSON: the slow, exact path
    if end != len(text):
        return json.loads(text)  # trailing whitespace, or extra data
    return value


def encode(
    body: Any,
    *,
    id: str | None = None,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    headers: Mapping[str, str] | None = None,
    tag: str | Literal[True] | None = True,
) -> bytes:
    """Encode ``body`` (an attrs instance, or plain JSON data) in an envelope.

    ``tag`` is the envelope's type tag: by default the body's own (:func:`type_tag`);
    ``None`` leaves it out, so that the message goes to the first handler whose type
    the body validates as, as a foreign payload does.

    Raises:
        CodecError: the body cannot be unstructured to JSON (whatever the converter or
            the JSON encoder raised, named in the message).
    """
    try:
        return dumps(to_wire(body, id, correlation_id, reply_to, headers, tag))
    except Exception as exc:  # a hook of the user's may raise anything
        raise CodecError(f"cannot encode {type(body).__name__}: {named(exc)}") from exc


def to_wire(
    body: Any,
    id: str | None,
    correlation_id: str | None,
    reply_to: str | None,
    headers: Mapping[str, str] | None,
    tag: str | Literal[True] | None,
) -> dict[str, Any]:
    """The envelope of :func:`encode` as plain data, for any serialization of it.

    Raises:
        Exception: whatever the converter raised unstructuring ``body``.
    """
    data = converter.unstructure(body)
    out: dict[str, Any] = {_MARK: 1, "id": id or new_id(), "body": data, "sent_at": time.time()}
    if tag is not None:
        out["type"] = type_tag(type(body)) if tag is True else tag
    if correlation_id is not None:
        out["correlation_id"] = correlation_id
    if reply_to is not None:
        out["reply_to"] = reply_to
    if headers:
        out["headers"] = dict(headers)
    return out


def _malformed(name: str, value: object) -> CodecError:
    return CodecError(f"malformed envelope: {name!r} is {type(value).__name__}")


def decode(payload: bytes, *, max_size: int = DEFAULT_MAX_PAYLOAD) -> Envelope:
    """Decode a payload into an :class:`Envelope`.

    Raises:
        CodecError: the payload is too large, not UTF-8, or an envelope with
            fields of the wrong type.
    """
    if len(payload) > max_size:
        raise CodecError(f"payload of {len(payload)} bytes exceeds the limit of {max_size}")
    # orjson parses strict RFC 8259 JSON about 5x faster than the standard library;
    # whatever it refuses (not JSON, not UTF-8, NaN, deep nesting) or would round
    # (integers beyond 64 bits) takes the standard library's path, which is exact.
    wire: Any = _UNPARSED
    if _LONG_RUN not in payload.translate(_DIGITS_ONLY):
        try:  # noqa: SIM105  # suppress() would cost a context manager per message
            wire = orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    if wire is _UNPARSED:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"payload is not UTF-8: {exc}") from exc
        try:
            wire = _loads(text)
        except RecursionError as exc:
            raise CodecError("payload JSON is nested too deeply") from exc
        except json.JSONDecodeError:
            return Envelope(body=text, foreign=True, text=True)
        except ValueError as exc:
            # JSON, but with an integer longer than Python converts (a guard against
            # quadratic work): text for str handlers, and named as what it is.
            return Envelope(body=text, foreign=True, text=True, unreadable=too_large(exc))
    return from_wire(wire)


def from_wire(wire: Any, codec: Any = None) -> Envelope:
    """The :class:`Envelope` of a parsed payload: an envelope's fields, checked, or a
    foreign body. ``codec`` is the codec that parsed it (None: JSON).

    Raises:
        CodecError: an envelope with fields of the wrong type.
    """
    if type(wire) is not dict or wire.get(_MARK) != 1:
        return Envelope(body=wire, foreign=True, codec=codec)
    # The hot path: every message the runtime sends comes through here, so the
    # checks are inline rather than one helper call per field.
    get = wire.get
    id_, type_, cid, reply_to = get("id"), get("type"), get("correlation_id"), get("reply_to")
    if id_ is not None and type(id_) is not str:
        raise _malformed("id", id_)
    if type_ is not None and type(type_) is not str:
        raise _malformed("type", type_)
    if cid is not None and type(cid) is not str:
        raise _malformed("correlation_id", cid)
    if reply_to is not None and type(reply_to) is not str:
        raise _malformed("reply_to", reply_to)
    headers = get("headers")
    if headers is None:
        headers = {}
    elif type(headers) is not dict or not all(
        type(k) is str and type(v) is str for k, v in headers.items()
    ):
        raise CodecError("malformed envelope: headers must map strings to strings")
    sent_at = get("sent_at")
    if sent_at is not None and type(sent_at) not in (int, float):
        raise _malformed("sent_at", sent_at)
    if "body" not in wire:
        raise CodecError("malformed envelope: no 'body'")
    return Envelope(
        body=wire["body"],
        id=id_ or new_id(),
        type=type_,
        correlation_id=cid,
        reply_to=reply_to,
        headers=headers,
        sent_at=sent_at,
        codec=codec,
    )
