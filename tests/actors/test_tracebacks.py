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


def _fail_with(message: str, note: str = "") -> None:
    exc = ValueError(message)
    if note:
        exc.add_note(note)
    raise exc


def test_a_stack_seen_before_is_reused_with_this_exception_s_own_message() -> None:
    """The second poison message failing where the first did: same stack text, its own
    message and notes (the stack's text is kept, the exception line never is)."""
    first, second = [
        _caught(lambda: _fail_with(message, note))  # noqa: B023 (called at once)
        for message, note in [("poison 1", ""), ("poison 2", "id 2")]
    ]
    assert first.__traceback__ and second.__traceback__
    for exc in (first, second, first):
        python = [
            line
            for line in "".join(traceback.format_exception(exc)).splitlines()
            if not _MARKS.match(line)
        ]
        assert format_error(exc).splitlines() == python
    assert format_error(second).endswith("ValueError: poison 2\nid 2\n")
