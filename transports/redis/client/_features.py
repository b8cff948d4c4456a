"""What a client's topology offers, for code that must act differently on it."""

from __future__ import annotations

import attrs

__all__ = ["Features"]


@attrs.frozen
class Features:
    """What a client offers, so that callers ask instead of testing its class.

    ``sharded_pubsub``: channels are sharded (a cluster): publish with ``SPUBLISH``,
    subscribe with ``SSUBSCRIBE`` on ``pubsub(key=channel)``; there are no patterns.
    ``ordered_batches``: :meth:`~transports.redis.Redis.batch` runs all its commands
    on one server, in order, whatever their keys (false on a cluster, where the
    order holds only among commands on one node).
    """

    sharded_pubsub: bool
    ordered_batches: bool
