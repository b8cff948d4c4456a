"""RestartIntensity, the OTP restart window, against a brute-force model.

The model keeps every restart ever recorded and counts those in ``[now - within, now]``;
the implementation keeps a bounded deque. Hypothesis drives both with the same
sequence of "a crash at time t: restart or give up?" questions.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actors import ConfigurationError
from actors._tree import RestartIntensity


class IntensityModel:
    """Obviously right and unbounded: every restart in the inclusive window counts."""

    def __init__(self, max_restarts: int, within: float) -> None:
        self.max_restarts = max_restarts
        self.within = within
        self.history: list[float] = []

    def record(self, now: float) -> bool:
        self.history.append(now)
        in_window = [t for t in self.history if t >= now - self.within]
        return len(in_window) <= self.max_restarts


class IntensityMachine(RuleBasedStateMachine):
    """Random crash timelines: the implementation must answer exactly as the model."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.intensity: RestartIntensity | None = None
        self.model: IntensityModel | None = None

    @initialize(
        max_restarts=st.integers(min_value=0, max_value=6),
        # Whole and fractional windows: boundaries are hit exactly with the former.
        within=st.one_of(st.integers(1, 10).map(float), st.floats(0.01, 10.0)),
    )
    def configure(self, max_restarts: int, within: float) -> None:
        self.intensity = RestartIntensity(max_restarts, within)
        self.model = IntensityModel(max_restarts, within)

    @rule(
        step=st.one_of(
            st.just(0.0),  # simultaneous crashes (one_for_all bursts)
            st.integers(1, 12).map(float),  # lands exactly on window edges
            st.floats(0.0, 12.0, allow_nan=False),
        )
    )
    def advance(self, step: float) -> None:
        self.now += step

    @precondition(lambda self: self.intensity is not None)
    @rule()
    def crash(self) -> None:
        assert self.intensity is not None
        assert self.model is not None
        assert self.intensity.record(self.now) == self.model.record(self.now)

    @invariant()
    def memory_stays_bounded(self) -> None:
        if self.intensity is not None:
            assert self.intensity.count() <= self.intensity.max_restarts + 1


TestIntensityMachine = IntensityMachine.TestCase
TestIntensityMachine.settings = settings(max_examples=300, stateful_step_count=60)


@given(
    max_restarts=st.integers(0, 5),
    within=st.floats(0.1, 10.0),
    gap=st.floats(0.0, 20.0),
)
def test_evenly_spaced_restarts_escalate_iff_the_window_holds_too_many(
    max_restarts: int, within: float, gap: float
) -> None:
    intensity = RestartIntensity(max_restarts, within)
    answers = [intensity.record(i * gap) for i in range(max_restarts + 1)]
    # The first max_restarts restarts are always fine, whatever their spacing.
    assert all(answers[:max_restarts])
    # One more is refused exactly when all max_restarts + 1 fit in one window.
    assert answers[-1] == (max_restarts * gap > within)


def test_the_window_is_inclusive_like_otp() -> None:
    intensity = RestartIntensity(max_restarts=1, within=5.0)
    assert intensity.record(0.0)
    assert not intensity.record(5.0)  # 0.0 is still inside [0.0, 5.0]
    fresh = RestartIntensity(max_restarts=1, within=5.0)
    assert fresh.record(0.0)
    assert fresh.record(5.001)


def test_zero_max_restarts_refuses_every_restart() -> None:
    intensity = RestartIntensity(max_restarts=0, within=1.0)
    assert not intensity.record(0.0)
    assert not intensity.record(100.0)


@pytest.mark.parametrize(
    ("max_restarts", "within", "message"),
    [
        (-1, 5.0, "max_restarts must be an int >= 0"),
        (True, 5.0, "max_restarts must be an int >= 0"),
        (3, 0.0, "within must be > 0"),
        (3, float("inf") * 0, "within must be a number"),
    ],
)
def test_bad_intensity_raises_configuration_error(
    max_restarts: int, within: float, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RestartIntensity(max_restarts, within)
