"""Fates: what a handler raises to decide what happens to the current message.

Fates are signals, not errors, so they stand outside ``ActorsError``::

    MessageFate
    ├── Retry    deliver the message again after ``delay`` seconds
    ├── Reject   dead-letter it now, with ``reason``
    └── Drop     ack it without processing
"""

from __future__ import annotations

__all__ = ["Drop", "MessageFate", "Reject", "Retry"]


class MessageFate(Exception):  # a signal, not an error
    """Raised by a handler to decide the fate of the message it is handling."""


class Retry(MessageFate):
    """Ack the message now and deliver it again after ``delay`` seconds.

    The retry counts as a failed attempt: past the actor's ``max_deliveries``
    the message is dead-lettered instead.
    """

    def __init__(self, delay: float = 1.0, reason: str = "") -> None:
        super().__init__(reason or f"retry in {delay}s")
        self.delay = delay
        self.reason = reason


class Reject(MessageFate):
    """Dead-letter the message now, with ``reason``; the actor goes on."""

    def __init__(self, reason: str = "rejected by handler") -> None:
        super().__init__(reason)
        self.reason = reason


class Drop(MessageFate):
    """Ack the message without processing it further; the actor goes on."""
