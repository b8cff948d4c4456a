"""The transport conformance suite: the tests every :class:`~transports.Transport` passes.

The memory and Redis transports run it in this project; run it against a transport
of your own with one test module::

    import pytest
    from transports.testing.conformance import TransportUnderTest
    from transports.testing.conformance.suite import *  # noqa: F403 (tests + fixtures)

    @pytest.fixture
    def under_test() -> TransportUnderTest:
        return TransportUnderTest(open_my_transport, mock_clock=False, lease=0.5)

where ``open_my_transport(request)`` returns an async context manager yielding an
open transport (see :class:`TransportUnderTest`). The tests need pytest, pytest-trio
and Hypothesis (``pip install actors[test]``); they run with or without ``trio_mode``.
The suite's helpers are yours to use in tests of your own: :func:`collect`,
:func:`fetch_within`, :func:`fresh_name`, :func:`payloads`, :func:`payloads_of`.
"""

import pytest

SUITE_MODULES = (
    "closing",
    "delivery",
    "fates",
    "invariants",
    "leases",
    "nodes",
    "pubsub",
    "scheduling",
    "settle",
)
"""The suite's modules, each a group of ``test_*`` functions."""

# The suite's modules are not test files by name: have pytest rewrite their asserts
# (this runs before any of them is imported).
pytest.register_assert_rewrite(
    *(f"{__name__}.{name}" for name in ("_support", "fixtures", "suite", *SUITE_MODULES))
)

from ._support import (  # noqa: E402
    MailboxFactory as MailboxFactory,
    TransportUnderTest as TransportUnderTest,
    collect as collect,
    fetch_within as fetch_within,
    fresh_name as fresh_name,
    payloads as payloads,
    payloads_of as payloads_of,
)
