"""Tracebacks for dead letters: what Python prints, for less than half the cost."""

from __future__ import annotations

import traceback

__all__ = ["format_error"]


def format_error(exc: BaseException) -> str:
    """``exc`` with its traceback and chained exceptions, as Python prints them, but
    without the ``^^^^`` marks under each source line.

    Python 3.11 finds those marks by parsing each frame's source line: most of the cost
    of dead-lettering a message, which a burst of poison messages pays once each.
    """
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
    return "".join(summary.format())
