"""Tracebacks for dead letters: what Python prints, for a fraction of the cost."""

from __future__ import annotations

import traceback
from types import CodeType, TracebackType

__all__ = ["format_error"]

#: Formatted stacks by the code positions they pass through: a poison message fails
#: where the last one did, and its stack needs no formatting again.
_STACKS: dict[tuple[tuple[CodeType, int], ...], str] = {}
_MOST_STACKS = 256


def format_error(exc: BaseException) -> str:
    """``exc`` with its traceback and chained exceptions, as Python prints them, but
    without the ``^^^^`` marks under each source line.

    Python 3.11 finds those marks by parsing each frame's source line: most of the cost
    of dead-lettering a message, which a burst of poison messages pays once each. A
    lone exception (nothing chained, not a group) whose stack passes through the same
    lines as an earlier one reuses that stack's text.
    """
    if _alone(exc):
        key = _positions(exc.__traceback__)
        stack = _STACKS.get(key)
        if stack is None:
            summary = _unmarked(exc)
            stack = "".join(summary.format())[: -len("".join(summary.format_exception_only()))]
            if len(_STACKS) >= _MOST_STACKS:
                _STACKS.clear()
            _STACKS[key] = stack
        return stack + "".join(traceback.format_exception_only(exc))
    return "".join(_unmarked(exc).format())


def _alone(exc: BaseException) -> bool:
    """No cause or shown context chained to ``exc``, and not an exception group."""
    context = None if exc.__suppress_context__ else exc.__context__
    return exc.__cause__ is None and context is None and not isinstance(exc, BaseExceptionGroup)


def _positions(tb: TracebackType | None) -> tuple[tuple[CodeType, int], ...]:
    """The code and line of each frame of ``tb``, outermost first."""
    positions = []
    while tb is not None:
        positions.append((tb.tb_frame.f_code, tb.tb_lineno))
        tb = tb.tb_next
    return tuple(positions)


def _unmarked(exc: BaseException) -> traceback.TracebackException:
    """``exc``'s summary, its frames (chained exceptions' too) without positions."""
    summary = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    stack = [summary]
    while stack:
        each = stack.pop()
        if id(each) in seen:
            continue
        seen.add(id(each))
        for frame in each.stack:
            frame.colno = None  # no position: no marks
        stack.extend(chained for chained in (each.__cause__, each.__context__) if chained)
        stack.extend(getattr(each, "exceptions", None) or ())
    return summary
