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

from .client import (
    Connection as Connection,
    ConnectionConfig as ConnectionConfig,
    ConnectionPool as ConnectionPool,
    DedicatedConnection as DedicatedConnection,
    Message as Message,
    Pipeline as Pipeline,
    PubSub as PubSub,
    Redis as Redis,
    RedisCluster as RedisCluster,
    SentinelRedis as SentinelRedis,
    client_from_url as client_from_url,
    cluster_from_url as cluster_from_url,
    command_error as command_error,
    from_url as from_url,
    parse_url as parse_url,
    sentinel_from_url as sentinel_from_url,
)
from .scheduler import (
    delay_ms as delay_ms,
    index_command as index_command,
    schedule_command as schedule_command,
)
from .sends import send_commands as send_commands
from .transport import RedisTransport as RedisTransport

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
    "command_error",
    "delay_ms",
    "from_url",
    "index_command",
    "parse_url",
    "schedule_command",
    "send_commands",
    "sentinel_from_url",
]
