"""pydantic v2 models and msgspec Structs as message types, beside attrs classes.

They are recognised by type, and neither library is imported here: a class can only
be a pydantic model or a msgspec Struct if that library is imported already (by the
module that defines the class), so the checks look in ``sys.modules``. Their hooks
are registered on the converter (see :func:`install`), so a model works wherever an
attrs class does: as a handler's message type, as a return type (an ask's reply),
as ``ask(reply_type=...)``, inside an attrs class or a ``list[...]``.

A body that does not validate raises :class:`ModelInvalid` with the library's
reasons, each with where it is (``qty: ... @ $.qty``), which the codec turns into
a ``CodecError`` and the runner into a dead letter with that reason.
"""

from __future__ import annotations

import sys
from typing import Any

import cattrs

__all__ = ["ModelInvalid", "install"]


class ModelInvalid(ValueError):
    """A body does not validate as a pydantic model or msgspec Struct: the reasons."""


def _pydantic_model(tp: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(tp, type):
        return False
    try:
        return issubclass(tp, pydantic.BaseModel)
    except TypeError:  # a generic alias posing as a type
        return False


def _msgspec_struct(tp: Any) -> bool:
    msgspec = sys.modules.get("msgspec")
    if msgspec is None or not isinstance(tp, type):
        return False
    try:
        return issubclass(tp, msgspec.Struct)
    except TypeError:
        return False


def _pydantic_reasons(exc: Any) -> str:
    reasons = []
    for error in exc.errors(include_url=False):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        reasons.append(f"{error['msg']} @ ${where}")
    return "; ".join(reasons) or str(exc)


def _structure_pydantic(value: Any, tp: Any) -> Any:
    pydantic = sys.modules["pydantic"]
    try:
        return tp.model_validate(value)
    except pydantic.ValidationError as exc:
        raise ModelInvalid(_pydantic_reasons(exc)) from exc


def _unstructure_pydantic(model: Any) -> Any:
    # JSON mode: datetimes, UUIDs, enums... as the JSON data a FastStream or
    # pydantic reader on the other side expects.
    return model.model_dump(mode="json")


def _structure_msgspec(value: Any, tp: Any) -> Any:
    msgspec = sys.modules["msgspec"]
    try:
        # Not strict: stream fields arrive as strings ("42" is an int), as with attrs.
        return msgspec.convert(value, tp, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec says "Expected `int`, got `str` - at `$.qty`": in our form.
        text = str(exc)
        message, sep, where = text.rpartition(" - at `")
        raise ModelInvalid(f"{message} @ {where.rstrip('`')}" if sep else text) from exc


def _unstructure_msgspec(struct: Any) -> Any:
    return sys.modules["msgspec"].to_builtins(struct)


def install(converter: cattrs.Converter) -> None:
    """Register the hooks for pydantic models and msgspec Structs on ``converter``."""
    converter.register_structure_hook_func(_pydantic_model, _structure_pydantic)
    converter.register_unstructure_hook_func(_pydantic_model, _unstructure_pydantic)
    converter.register_structure_hook_func(_msgspec_struct, _structure_msgspec)
    converter.register_unstructure_hook_func(_msgspec_struct, _unstructure_msgspec)
