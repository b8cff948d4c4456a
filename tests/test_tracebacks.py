"""Dead letters' tracebacks: Python's own text, less the position marks."""

from __future__ import annotations

import re
import traceback

import pytest

from actors._tracebacks import format_error

_MARKS = re.compile(r"^[\s|]*[\^~]+\s*$")


def _raise(exc: BaseException) -> None:
    raise exc


def _caught(make: object) -> BaseException:
    try:
        make()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def _chained() -> None:
    try:
        _raise(KeyError("inner"))
    except KeyError as exc:
        raise ValueError("outer") from exc


def _context() -> None:
    try:
        _raise(KeyError("inner"))
    except KeyError:
        _raise(RuntimeError("while handling"))


def _group() -> None:
    raise ExceptionGroup("two", [_caught(lambda: _raise(ValueError("a"))), TypeError("b")])


@pytest.mark.parametrize("make", [lambda: _raise(ValueError("plain")), _chained, _context, _group])
def test_format_error_is_python_s_text_without_position_marks(make: object) -> None:
    exc = _caught(make)
    python = [
        line
        for line in "".join(traceback.format_exception(exc)).splitlines()
        if not _MARKS.match(line)
    ]
    ours = format_error(exc).splitlines()
    assert ours == python
    assert not any(_MARKS.match(line) for line in ours)
