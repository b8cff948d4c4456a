"""Every test of the conformance suite and the fixtures they use, in one namespace.

A test module that does ``from transports.testing.conformance.suite import *`` and
provides an ``under_test`` fixture runs the whole suite (pytest collects the imported
``test_*`` functions and fixtures as the module's own).

Raises:
    RuntimeError: (on import) two suite modules define a test of the same name, which
        would silently hide one of them.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

from . import SUITE_MODULES
from .fixtures import (
    clock as clock,
    lease as lease,
    mailbox as mailbox,
    supported as supported,
    transport as transport,
)


def _tests() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in SUITE_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        for attr, value in vars(module).items():
            if attr.startswith("test_") and callable(value):
                if attr in found:
                    raise RuntimeError(f"two conformance tests are named {attr}")
                # Marked for pytest-trio, so that the suite runs without trio_mode.
                found[attr] = pytest.mark.trio(value) if _is_async(value) else value
    return found


def _is_async(test: Any) -> bool:
    # Hypothesis' @given wraps an async test in a sync function; the original is kept.
    inner = getattr(getattr(test, "hypothesis", None), "inner_test", test)
    return inspect.iscoroutinefunction(inner)


_TESTS = _tests()
globals().update(_TESTS)
__all__ = ["clock", "lease", "mailbox", "supported", "transport", *sorted(_TESTS)]
