"""Messages on the wire: the envelope, and a cattrs converter of our own.

A payload is UTF-8 JSON. Messages the runtime sends are wrapped in an envelope
object marked ``"actors": 1``::

    {"actors": 1, "id": "…", "type": "Deposit", "body": {...},
     "correlation_id": null, "reply_to": "list:…", "headers": {}, "sent_at": 1732…}

Anything else is a *foreign* payload, written by another client
(``redis-cli RPUSH orders '{"id": 1}'``): the whole JSON value is the body, and
text that is not JSON is a body for handlers that take ``str``. Payloads are
data only: no pickle, no eval, no import of names. A type tag only selects among
the types a handler declared.

The converter is strict where JSON is typed (``1.5`` is not an ``int``, ``true``
is not an ``int``, ``1`` is not a ``str``) and lenient where Redis is not: stream
fields arrive as strings, so ``"42"`` structures as ``int`` and ``"true"`` as
``bool``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import sys
import time
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

import attrs
import cattrs
import orjson
from cattrs.errors import StructureHandlerNotFoundError
from cattrs.preconf.json import make_converter

from ._errors import CodecError

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "Envelope",
    "converter",
    "decode",
    "describe_type",
    "encode",
    "structure",
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
# What the standard library says of an integer beyond sys.get_int_max_str_digits().
_DIGIT_COUNT = re.compile(r"value has (\d+) digits")


def _int(value: object, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError as exc:
            if reason := _too_large(exc):  # a stream field of 5,000 digits, say
                raise ValueError(reason) from None
    raise TypeError(f"expected an integer, got {value!r:.80}")


def _float(value: object, _: type) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise TypeError(f"expected a number, got {value!r:.80}")


def _str(value: object, _: type) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {value!r:.80}")


_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _bool(value: object, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLS:
        return _BOOLS[value.strip().lower()]
    raise TypeError(f"expected a boolean, got {value!r:.80}")


def _make_converter() -> cattrs.Converter:
    conv = make_converter()
    conv.register_structure_hook(int, _int)
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(str, _str)
    conv.register_structure_hook(bool, _bool)
    return conv


#: The converter every message goes through. Register hooks on it for your own
#: types (``actors.converter.register_structure_hook(...)``); never the global one.
converter = _make_converter()


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is Union or origin is types.UnionType


def describe_type(tp: Any) -> str:
    """``tp`` as a user wrote it: ``module.Name`` for a class, the generic's repr otherwise."""
    if isinstance(tp, type):
        return f"{tp.__module__}.{tp.__qualname__}"
    return repr(tp)


def _no_hook(tp: Any) -> str:
    """Why the converter cannot structure ``tp``, the type it has no hook for."""
    advice = "register a structure hook on actors.converter"
    if isinstance(tp, type):
        if any(
            base.__name__ == "BaseModel" and base.__module__.startswith("pydantic")
            for base in tp.__mro__[1:]
        ):
            return (
                f"pydantic.BaseModel subclass {describe_type(tp)}: the converter has no structure "
                f"hook for it; {advice} or use an attrs class"
            )
        return (
            f"{describe_type(tp)} is not an attrs class and the converter has no structure hook "
            f"for it; {advice} or make it an attrs class"
        )
    return f"the converter has no structure hook for {describe_type(tp)}; {advice}"


def _parts(tp: Any) -> list[Any]:
    """The types ``tp`` is made of: an attrs class's or dataclass's field types, a
    generic's or union's arguments (not a Literal's values, nor an ``...``)."""
    if isinstance(tp, type) and attrs.has(tp):
        names = [a.name for a in attrs.fields(tp)]
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        names = [f.name for f in dataclasses.fields(tp)]
    else:
        names = None
    if names is not None:
        try:
            hints = typing.get_type_hints(tp)
        except Exception:  # cattrs made its hook; a part it could not resolve failed there
            return []
        return [hints[name] for name in names if name in hints]
    return [
        arg
        for arg in typing.get_args(tp)
        if isinstance(arg, type | typing.TypeVar) or typing.get_origin(arg) is not None
    ]


def unsupported(tp: Any, _seen: frozenset[int] = frozenset()) -> str | None:
    """Why :data:`converter` cannot structure and unstructure ``tp``, or None when it can.

    The converter itself is asked, so that hooks registered on it count. A hook
    cattrs made for ``tp`` from its parts (an attrs class's fields, a list's items,
    a union's members) is checked part by part, since cattrs looks up some of them
    (union members, tuple and set items) only when a value comes; a hook from
    elsewhere (the user's) is trusted with the whole type.
    """
    if tp is Any or tp is object or tp is type(None) or id(tp) in _seen:
        return None  # (a class seen on the way down: a recursive type)
    try:
        hook = converter.get_structure_hook(tp)
        converter.get_unstructure_hook(tp)
    except StructureHandlerNotFoundError as exc:
        return _no_hook(exc.type_)
    except Exception as exc:  # cattrs refuses the type (an ambiguous union of classes...)
        return f"the converter cannot handle {describe_type(tp)}: {exc}"
    module = getattr(hook, "__module__", None)
    if module is None or module == "cattrs" or module.startswith("cattrs."):
        for part in _parts(tp):
            why = unsupported(part, _seen | {id(tp)})
            if why is not None:
                return why
    return None


# The C scanner json.loads uses, without its whitespace regexes (not in typeshed).
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _dumps(wire: Any) -> bytes:
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


_hooks: dict[Any, Any] = {}


def _hook(tp: Any) -> Any:
    """The converter's structure function for ``tp``, looked up once per type."""
    hook = _hooks.get(tp)
    if hook is None:
        hook = _hooks[tp] = converter.get_structure_hook(tp)
    return hook


# Message ids: a random per-process prefix and a counter, unique without a uuid4
# per message (a third of the cost of encoding a small message).
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count()


def _new_id() -> str:
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
    id: str = attrs.field(factory=lambda: _new_id())
    type: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    sent_at: float | None = None
    foreign: bool = False
    text: bool = False
    unreadable: str = ""


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
        data = converter.unstructure(body)
        wire: dict[str, Any] = {
            _MARK: 1,
            "id": id or _new_id(),
            "body": data,
            "sent_at": time.time(),
        }
        if tag is not None:
            wire["type"] = type_tag(type(body)) if tag is True else tag
        if correlation_id is not None:
            wire["correlation_id"] = correlation_id
        if reply_to is not None:
            wire["reply_to"] = reply_to
        if headers:
            wire["headers"] = dict(headers)
        return _dumps(wire)
    except Exception as exc:  # a hook of the user's may raise anything
        raise CodecError(f"cannot encode {type(body).__name__}: {_named(exc)}") from exc


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
            return Envelope(body=text, foreign=True, text=True, unreadable=_too_large(exc))
    if type(wire) is not dict or wire.get(_MARK) != 1:
        return Envelope(body=wire, foreign=True)
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
        id=id_ or _new_id(),
        type=type_,
        correlation_id=cid,
        reply_to=reply_to,
        headers=headers,
        sent_at=sent_at,
    )


def _too_large(exc: ValueError) -> str:
    """Why JSON with an integer beyond ``sys.get_int_max_str_digits()`` is unreadable
    (empty when ``exc`` is not about that)."""
    found = _DIGIT_COUNT.search(str(exc))
    if found is None:
        return ""
    limit = sys.get_int_max_str_digits()
    return f"integer too large: {found[1]} digits; JSON integers are limited to {limit} digits"


def structure(envelope: Envelope, tp: Any) -> Any:
    """Structure the envelope's body as ``tp``.

    A text body (not JSON) is accepted only by ``str`` and ``bytes`` handlers;
    a JSON body is structured by the converter (``Any`` and ``object`` take it as is).

    Raises:
        CodecError: the body does not fit ``tp``, with cattrs' detailed reasons; also
            whatever else structuring raised (a hook of the user's raising anything,
            a type the converter cannot handle), named in the message: it is this
            message's problem, never the actor's.
    """
    body = envelope.body
    if tp is Any or tp is object:
        return body
    if tp is bytes:
        if envelope.type == "bytes" and not envelope.foreign and isinstance(body, str):
            try:  # sent by actors: the converter's own text form (base85)
                return _hook(bytes)(body, bytes)
            except Exception as exc:
                raise CodecError(f"body is not the base85 text of bytes: {_named(exc)}") from exc
        # From another client: the raw text (or JSON) is the bytes.
        return body.encode() if isinstance(body, str) else json.dumps(body).encode()
    if envelope.text and tp is not str:
        if envelope.unreadable:
            raise CodecError(f"{envelope.unreadable} (the handler expects {type_tag(tp)})")
        raise CodecError(f"payload is not JSON and the handler expects {type_tag(tp)}")
    try:
        return _hook(tp)(body, tp)
    except cattrs.BaseValidationError as exc:
        raise CodecError(f"body does not fit {type_tag(tp)}: {_reasons(exc)}") from exc
    except Exception as exc:
        # Hooks (ours, cattrs', the user's) may raise anything: ValueError, decimal's
        # InvalidOperation, RecursionError... (a BaseException such as Cancelled goes on).
        raise CodecError(f"body does not fit {type_tag(tp)}: {_named(exc)}") from exc


def _named(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _format_error(exc: BaseException, tp: type | None) -> str:
    """cattrs' wording for one error, with the error itself when it says more (a hook's
    own message, the type of an error cattrs does not know)."""
    said = cattrs.v.format_exception(exc, tp)
    if isinstance(exc, KeyError | cattrs.ForbiddenExtraKeysError):
        return said  # "required field missing", "extra fields found (...)": all there is
    if said.startswith("unknown error"):
        return _named(exc)
    return f"{said} ({_named(exc)})" if str(exc) and str(exc) not in said else said


def _reasons(exc: cattrs.BaseValidationError) -> str:
    """Every reason in a cattrs validation error, with where it is (``@ $.price``)."""
    try:
        return "; ".join(cattrs.transform_error(exc, format_exception=_format_error))
    except Exception:  # an error shape the formatter does not expect: its plain text
        return str(exc)
