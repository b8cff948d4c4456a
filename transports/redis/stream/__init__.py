"""The stream mailbox: a Redis stream read through a consumer group, pending until acked."""

from .consumer import StreamConsumer as StreamConsumer, entry_payload as entry_payload

__all__ = ["StreamConsumer", "entry_payload"]
