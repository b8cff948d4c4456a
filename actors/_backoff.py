"""Restart and retry backoff, re-exported from the transport layer where it is defined."""

from transports._backoff import Backoff as Backoff
