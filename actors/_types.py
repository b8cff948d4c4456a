"""Message types: the cattrs converter of our own, which types it supports, and
structuring an envelope's body into a handler's type.

The converter is strict where JSON is typed (``1.5`` is not an ``int``, ``true``
is not an ``int``, ``1`` is not a ``str``) and lenient where Redis is not: stream
fields arrive as strings, so ``"42"`` structures as ``int`` and ``"true"`` as
``bool``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import types
import typing
from typing import Any, Union

import attrs
import cattrs
from cattrs.errors import StructureHandlerNotFoundError
from cattrs.preconf.json import make_converter

from ._envelope import Envelope, type_tag
from ._errors import CodecError
from ._models import ModelInvalid, install as install_models

__all__ = [
    "converter",
    "describe_type",
    "named",
    "structure",
    "too_large",
    "unsupported",
]

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
            if reason := too_large(exc):  # a stream field of 5,000 digits, say
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
    install_models(conv)  # pydantic models, msgspec Structs
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
            # (pydantic v2 models have hooks: this is pydantic.v1's BaseModel)
            return (
                f"pydantic v1 model {describe_type(tp)}: the converter has no structure hook "
                f"for it; {advice}, or use a pydantic v2 model or an attrs class"
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


_hooks: dict[Any, Any] = {}


def _hook(tp: Any) -> Any:
    """The converter's structure function for ``tp``, looked up once per type."""
    hook = _hooks.get(tp)
    if hook is None:
        hook = _hooks[tp] = converter.get_structure_hook(tp)
    return hook


def too_large(exc: ValueError) -> str:
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
                raise CodecError(f"body is not the base85 text of bytes: {named(exc)}") from exc
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
    except ModelInvalid as exc:  # a pydantic model's or msgspec Struct's own reasons
        raise CodecError(f"body does not fit {type_tag(tp)}: {exc}") from exc
    except Exception as exc:
        # Hooks (ours, cattrs', the user's) may raise anything: ValueError, decimal's
        # InvalidOperation, RecursionError... (a BaseException such as Cancelled goes on).
        raise CodecError(f"body does not fit {type_tag(tp)}: {named(exc)}") from exc


def named(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _format_error(exc: BaseException, tp: type | None) -> str:
    """cattrs' wording for one error, with the error itself when it says more (a hook's
    own message, the type of an error cattrs does not know)."""
    said = cattrs.v.format_exception(exc, tp)
    if isinstance(exc, KeyError | cattrs.ForbiddenExtraKeysError):
        return said  # "required field missing", "extra fields found (...)": all there is
    if said.startswith("unknown error"):
        return named(exc)
    return f"{said} ({named(exc)})" if str(exc) and str(exc) not in said else said


def _reasons(exc: cattrs.BaseValidationError) -> str:
    """Every reason in a cattrs validation error, with where it is (``@ $.price``)."""
    try:
        return "; ".join(cattrs.transform_error(exc, format_exception=_format_error))
    except Exception:  # an error shape the formatter does not expect: its plain text
        return str(exc)
