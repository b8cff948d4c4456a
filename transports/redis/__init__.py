"""A trio-native Redis client: redis-py's command methods, hiredis, a bounded pool.

::

    from transports.redis import from_url

    async with from_url("redis://localhost:6379/0") as client:
        await client.set("greeting", "hello")
        assert await client.get("greeting") == b"hello"
        async with client.pipeline(transaction=False) as pipe:
            pipe.incr("n").incr("n")
            assert await pipe.execute() == [1, 2]
        async with client.dedicated() as conn:        # blocking reads, outside the pool
            await conn.blmove("jobs", "working", 5, "RIGHT", "LEFT")
        async with client.pubsub() as ps:
            await ps.subscribe("news")
            message = await ps.get_message(timeout=1.0)

Errors are ``actors`` errors (``transports._exceptions``); see :class:`Redis`.
"""

from ._client import (
    DedicatedConnection as DedicatedConnection,
    Redis as Redis,
    from_url as from_url,
)
from ._cluster import RedisCluster as RedisCluster, cluster_from_url as cluster_from_url
from ._connection import Connection as Connection
from ._multi_url import client_from_url as client_from_url
from ._pipeline import Pipeline as Pipeline
from ._pool import ConnectionPool as ConnectionPool
from ._pubsub import Message as Message, PubSub as PubSub
from ._sentinel import SentinelRedis as SentinelRedis, sentinel_from_url as sentinel_from_url
from ._transport import RedisTransport as RedisTransport
from ._url import ConnectionConfig as ConnectionConfig, parse_url as parse_url

__all__ = [
    "Connection",
    "ConnectionConfig",
    "ConnectionPool",
    "DedicatedConnection",
    "Message",
    "Pipeline",
    "PubSub",
    "Redis",
    "RedisCluster",
    "RedisTransport",
    "SentinelRedis",
    "client_from_url",
    "cluster_from_url",
    "from_url",
    "parse_url",
    "sentinel_from_url",
]
