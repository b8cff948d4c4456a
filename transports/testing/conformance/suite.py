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
from typing import Any

from . import SUITE_MODULES
from .fixtures import clock as clock, lease as lease, mailbox as mailbox, transport as transport


def _tests() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in SUITE_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        for attr, value in vars(module).items():
            if attr.startswith("test_") and callable(value):
                if attr in found:
                    raise RuntimeError(f"two conformance tests are named {attr}")
                found[attr] = value
    return found


_TESTS = _tests()
globals().update(_TESTS)
__all__ = ["clock", "lease", "mailbox", "transport", *sorted(_TESTS)]
