"""Handler discovery and dispatch: the ``@handler`` mark, the message types a handler
declares, and the table that picks a handler for a message."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Union

import attrs

from transports import ConfigurationError

from ._codec import Envelope, describe_type, structure, type_tag, unsupported
from ._errors import CodecError

__all__ = [
    "CATCH_ALL",
    "HANDLER_MARK",
    "HandlerTable",
    "check_early",
    "handler",
    "message_types",
    "qualified",
]

HANDLER_MARK = "__actors_handler__"
CATCH_ALL: tuple[Any, ...] = (Any, object)


def handler(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Mark an ``async`` method of an :class:`Actor` as a message handler.

    The handler's first parameter annotation says which message type(s) it takes
    (a union takes several). ``receive`` is a handler without the mark.

    Raises:
        ConfigurationError: a message or return type the converter cannot handle
            (checked here when the annotations can be resolved already, else when
            the actor's handler table is built).
    """
    check_early(fn, qualified(fn))
    setattr(fn, HANDLER_MARK, True)
    return fn


def qualified(obj: Any) -> str:
    """``module.Qual.name`` of a function or class: where to find it in a large program."""
    name = getattr(obj, "__qualname__", None) or repr(obj)
    module = getattr(obj, "__module__", None)
    return f"{module}.{name}" if module else name


def _expand(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return [t for arg in typing.get_args(tp) for t in _expand(arg)]
    return [tp]


def message_types(fn: Callable[..., Any], owner: str, *, checked: bool = False) -> list[Any]:
    """The message types a handler declares by its first (non-self) parameter.

    ``checked`` also asks the converter about them and the return annotation.

    Raises:
        ConfigurationError: no message parameter, annotations that cannot be
            resolved, or (``checked``) a type the converter cannot handle.
    """
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    if not params:
        raise ConfigurationError(f"handler {owner} takes no message parameter")
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # a NameError from a forward reference, typically
        raise ConfigurationError(f"cannot resolve the annotations of {owner}: {exc}") from exc
    tp = hints.get(params[0].name, Any)
    found = [t for t in _expand(tp) if t is not type(None)]
    if checked:
        # Each member on its own: the handler table dispatches a union by member.
        for member in found:
            why = unsupported(member)
            if why is not None:
                raise ConfigurationError(f"handler {owner} takes {describe_type(member)}: {why}")
        # The whole return type: an asker structures the reply as it is annotated.
        returns = hints.get("return", Any)
        why = unsupported(returns)
        if why is not None:
            raise ConfigurationError(f"handler {owner} returns {describe_type(returns)}: {why}")
    return found


def check_early(fn: Callable[..., Any], owner: str) -> None:
    """Check a handler's types now if its annotations resolve already (a forward
    reference to a class defined later waits for the handler table).

    Raises:
        ConfigurationError: a message or return type the converter cannot handle.
    """
    try:
        typing.get_type_hints(fn)
    except Exception:
        return
    if any(p.name != "self" for p in inspect.signature(fn).parameters.values()):
        message_types(fn, owner, checked=True)


@attrs.frozen
class HandlerTable:
    """Which handler takes which message type, in declaration order."""

    entries: Sequence[tuple[Any, str]]  # (message type, method name)
    #: Typed entries by their wire tag (catch-all entries have no tag).
    by_tag: Mapping[str, tuple[Any, str]] = attrs.field(init=False)
    catch_all: str | None = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        tags = {type_tag(tp): (tp, name) for tp, name in self.entries if tp not in CATCH_ALL}
        catch_all = next((name for tp, name in self.entries if tp in CATCH_ALL), None)
        object.__setattr__(self, "by_tag", tags)
        object.__setattr__(self, "catch_all", catch_all)

    def resolve(self, envelope: Envelope) -> tuple[str, Any]:
        """Pick the handler for ``envelope`` and structure its body for it.

        A tagged message (sent by actors) goes to the handler of that type, else to a
        catch-all (``Any``/``object``) handler. A foreign payload goes to the first
        handler whose type it validates as.

        Raises:
            CodecError: no handler takes the message; the reasons are in the message.
        """
        if envelope.type is not None and not envelope.foreign:
            match = self.by_tag.get(envelope.type)
            if match is not None:
                return match[1], structure(envelope, match[0])
            if self.catch_all is not None:
                return self.catch_all, envelope.body
            raise CodecError(f"no handler takes messages of type {envelope.type!r}")
        reasons = []
        for tp, name in self.entries:
            try:
                return name, structure(envelope, tp)
            except CodecError as exc:
                reasons.append(str(exc))
        raise CodecError("; ".join(reasons) or "the actor has no handlers")
