"""Fixtures of the transport conformance suite, built on ``under_test``.

Every test of the suite asks for ``transport``, an open :class:`~transports.Transport`,
made by the :class:`TransportUnderTest` that the ``under_test`` fixture returns (you
provide that one; parametrize it to run the suite against several transports).

Timed tests ask for ``clock`` as well: pytest-trio runs a test on the Clock among its
arguments, here a ``MockClock`` that jumps ahead whenever every task waits (for
``mock_clock`` transports), or ``None``, meaning real time. Timed tests measure time
in multiples of ``lease``.

Mailbox and consumer names are fresh for every test (see ``mailbox``), so a server
shared by the whole session needs no cleanup between tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from trio.testing import MockClock

from transports import MailboxKind, MailboxSpec, Transport

from ._support import MailboxFactory, TransportUnderTest, fresh_name

__all__ = ["clock", "lease", "mailbox", "supported", "transport"]


@pytest.fixture
def supported(request: pytest.FixtureRequest, under_test: TransportUnderTest) -> TransportUnderTest:
    """``under_test``, after skipping the test when ``under_test.unsupported`` names it.

    A sync fixture: pytest-trio would report a skip from an async one without its reason.
    """
    reason = under_test.unsupported.get(request.node.originalname)
    if reason is not None:
        pytest.skip(reason)
    return under_test


@pytest.fixture
async def transport(
    request: pytest.FixtureRequest, supported: TransportUnderTest
) -> AsyncIterator[Transport]:
    """An open transport, closed after the test (tests may close it first); the test is
    skipped when ``under_test.unsupported`` names it."""
    async with supported.open(request) as opened:
        yield opened
        await opened.aclose()


@pytest.fixture
def clock(under_test: TransportUnderTest) -> MockClock | None:
    """The test's clock: autojumping mock time where the transport allows it."""
    return MockClock(autojump_threshold=0) if under_test.mock_clock else None


@pytest.fixture
def lease(under_test: TransportUnderTest) -> float:
    """The lease of the mailboxes made by ``mailbox``, and the time unit of timed tests."""
    return under_test.lease


@pytest.fixture
def mailbox(lease: float) -> MailboxFactory:
    """A factory of mailbox specs with fresh names and the suite's lease."""

    def make(kind: MailboxKind, **options: Any) -> MailboxSpec:
        options.setdefault("lease", lease)
        return MailboxSpec(kind, fresh_name(f"conformance-{kind}"), **options)

    return make
