"""Exponential backoff with jitter, shared by reconnects, consumer loops and restarts."""

from __future__ import annotations

import random

import attrs

from ._exceptions import ConfigurationError

__all__ = ["Backoff"]


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ConfigurationError(f"backoff {attribute.name} must be >= 0, not {value!r}")


@attrs.frozen
class Backoff:
    """Delays that double from ``min`` up to ``max``, each spread by ``jitter``.

    ``delay(n)`` is the wait before retry number ``n`` (0 for the first retry):
    ``min * factor**n`` capped at ``max``, then multiplied by a random factor in
    ``[1 - jitter, 1]`` so that many clients failing together do not retry in
    lockstep. ``reset_after`` is the quiet period after which a caller should
    start counting from 0 again.

    Raises:
        ConfigurationError: on a negative value, ``min > max``, ``factor < 1`` or
            ``jitter`` outside ``[0, 1]``.
    """

    min: float = attrs.field(default=0.1, validator=_non_negative)
    max: float = attrs.field(default=10.0, validator=_non_negative)
    factor: float = 2.0
    jitter: float = 0.2
    reset_after: float = attrs.field(default=30.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.min > self.max:
            raise ConfigurationError(f"backoff min {self.min} is above max {self.max}")
        if self.factor < 1:
            raise ConfigurationError(f"backoff factor must be >= 1, not {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"backoff jitter must be within [0, 1], not {self.jitter}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay in seconds before retry number ``attempt`` (counted from 0)."""
        # Cap the exponent: beyond ~1000 doublings the float overflows, and we are
        # at ``max`` long before that anyway.
        base = min(self.max, self.min * self.factor ** min(attempt, 1000))
        spread = (rng or random).random() * self.jitter
        return base * (1.0 - spread)
