"""A trio-native Redis client that knows no mailbox: redis-py's commands, hiredis, a bounded pool.

One server (:class:`Redis`), a Redis Cluster (:class:`RedisCluster`) or a master found
through Sentinel (:class:`SentinelRedis`); :func:`client_from_url` picks one from the URL.
Errors are ``transports._exceptions`` errors; see :class:`Redis`.
"""

from ._blocking import BlockingConnection as BlockingConnection
from ._client import (
    DedicatedConnection as DedicatedConnection,
    Redis as Redis,
    from_url as from_url,
)
from ._cluster import RedisCluster as RedisCluster
from ._connection import Connection as Connection
from ._errors import command_error as command_error
from ._features import Features as Features
from ._open import (
    client_from_url as client_from_url,
    cluster_from_url as cluster_from_url,
    sentinel_from_url as sentinel_from_url,
)
from ._pipeline import Pipeline as Pipeline
from ._pool import ConnectionPool as ConnectionPool
from ._pubsub import Message as Message, PubSub as PubSub
from ._replies import RAW as RAW
from ._scripts import LuaScript as LuaScript
from ._sentinel import SentinelRedis as SentinelRedis
from ._url import ConnectionConfig as ConnectionConfig, parse_url as parse_url

__all__ = [
    "RAW",
    "BlockingConnection",
    "Connection",
    "ConnectionConfig",
    "ConnectionPool",
    "DedicatedConnection",
    "Features",
    "LuaScript",
    "Message",
    "Pipeline",
    "PubSub",
    "Redis",
    "RedisCluster",
    "SentinelRedis",
    "client_from_url",
    "cluster_from_url",
    "command_error",
    "from_url",
    "parse_url",
    "sentinel_from_url",
]
