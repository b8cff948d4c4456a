"""The list mailbox: a Redis list, and a processing list per consumer until the ack."""

from .consumer import ListConsumer as ListConsumer
from .ledger import ListDelivery as ListDelivery

__all__ = ["ListConsumer", "ListDelivery"]
