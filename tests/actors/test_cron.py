"""The cron parser of ``system.schedule`` (issue 16 item 2): Hypothesis checks ``next_after``
and ``last_at_or_before`` against a brute-force scan of the minutes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from actors import ConfigurationError
from actors._cron import Cron, Every

WINDOW = timedelta(days=70)  # every generated expression has a due time within this


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    step = st.integers(1, high - low + 1)

    @st.composite
    def ranged(draw: st.DrawFn) -> str:
        first = draw(number)
        last = draw(st.integers(first, high))
        text = f"{first}-{last}"
        return text + (f"/{draw(step)}" if draw(st.booleans()) else "")

    part = st.one_of(
        st.just("*"),
        step.map(lambda n: f"*/{n}"),
        number.map(str),
        ranged(),
    )
    return st.lists(part, min_size=1, max_size=3).map(",".join)


EXPRESSIONS = st.tuples(
    _field(0, 59), _field(0, 23), _field(1, 28), st.just("*"), _field(0, 7)
).map(" ".join)
TIMES = st.integers(0, 4_000_000_000).map(float)


def _expand(text: str, low: int, high: int) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        body, _, step = part.partition("/")
        if body == "*":
            first, last = low, high
        elif "-" in body:
            first, last = map(int, body.split("-"))
        else:
            first = int(body)
            last = high if step else first
        out.update(range(first, last + 1, int(step or 1)))
    return out


def _matcher(expression: str):  # type: ignore[no-untyped-def]
    minute, hour, dom, month, dow = expression.split()
    minutes, hours = _expand(minute, 0, 59), _expand(hour, 0, 23)
    doms, months = _expand(dom, 1, 31), _expand(month, 1, 12)
    dows = {d % 7 for d in _expand(dow, 0, 7)}

    def day_ok(t: datetime) -> bool:
        in_dom, in_dow = t.day in doms, t.isoweekday() % 7 in dows
        either = dom != "*" and dow != "*"  # both restricted: either day field will do
        day = (in_dom or in_dow) if either else (in_dom and in_dow)
        return day and t.month in months

    return day_ok, hours, minutes


def _brute_next(expression: str, when: float) -> float:
    day_ok, hours, minutes = _matcher(expression)
    t = datetime.fromtimestamp(when, UTC).replace(second=0, microsecond=0)
    t += timedelta(minutes=1)
    end = t + WINDOW
    while t < end:
        if not (day_ok(t) and t.hour in hours):
            t = t.replace(minute=0) + timedelta(hours=1)
            continue
        if t.minute in minutes:
            return t.timestamp()
        t += timedelta(minutes=1)
    return math.inf


def _brute_last(expression: str, when: float) -> float:
    day_ok, hours, minutes = _matcher(expression)
    t = datetime.fromtimestamp(when, UTC).replace(second=0, microsecond=0)
    end = t - WINDOW
    while t > end:
        if not (day_ok(t) and t.hour in hours):
            t = t.replace(minute=0) - timedelta(minutes=1)
            continue
        if t.minute in minutes:
            return t.timestamp()
        t -= timedelta(minutes=1)
    return -math.inf


@settings(max_examples=150, deadline=None)
@given(EXPRESSIONS, TIMES)
def test_next_after_is_the_first_matching_minute(expression: str, when: float) -> None:
    cron = Cron.parse(expression)
    due = cron.next_after(when)
    assert due > when
    assert due == _brute_next(expression, when)


@settings(max_examples=150, deadline=None)
@given(EXPRESSIONS, TIMES)
def test_last_at_or_before_is_the_latest_matching_minute(expression: str, when: float) -> None:
    cron = Cron.parse(expression)
    due = cron.last_at_or_before(when)
    assert due <= when
    assert due == _brute_last(expression, when)
    assert cron.next_after(due) > due
    assert cron.last_at_or_before(cron.next_after(when)) == cron.next_after(when)


@given(st.floats(0.001, 10_000), TIMES)
def test_every_is_due_at_multiples_of_its_period(seconds: float, when: float) -> None:
    every = Every(seconds)
    last, following = every.last_at_or_before(when), every.next_after(when)
    assert last <= when < following
    assert following - last == pytest.approx(seconds)


def test_examples() -> None:
    base = datetime(2026, 12, 5, 16, 23, 30, tzinfo=UTC).timestamp()  # a Saturday

    def at(expression: str) -> datetime:
        return datetime.fromtimestamp(Cron.parse(expression).next_after(base), UTC)

    assert at("*/5 * * * *") == datetime(2026, 12, 5, 16, 25, tzinfo=UTC)
    assert at("0 9 * * mon-fri") == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert at("30 0 1 jan *") == datetime(2027, 1, 1, 0, 30, tzinfo=UTC)
    assert at("0 0 29 feb *") == datetime(2028, 2, 29, tzinfo=UTC)
    assert at("0 12 1 * 7") == datetime(2026, 12, 6, 12, tzinfo=UTC)  # Sunday or the 1st


@pytest.mark.parametrize(
    "expression",
    ["* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "5-1 * * * *", "x * * * *",
     "0 0 31 feb *"],
)  # fmt: skip
def test_malformed_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ConfigurationError, match="cron"):
        Cron.parse(expression)


@pytest.mark.parametrize("seconds", [0, -1, math.inf, math.nan])
def test_a_bad_period_is_refused(seconds: float) -> None:
    with pytest.raises(ConfigurationError, match="every"):
        Every(seconds)
