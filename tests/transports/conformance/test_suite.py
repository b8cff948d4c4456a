"""The conformance suite (:mod:`transports.testing.conformance`) for every transport of
``conftest.py``'s ``TRANSPORTS``."""

from transports.testing.conformance.suite import *  # noqa: F403
