"""One entry point for every topology: the URL's scheme picks the client."""

from __future__ import annotations

from typing import Any

from ._client import Redis, from_url
from ._cluster import cluster_from_url
from ._multi_url import _CLUSTER_SCHEMES, _SENTINEL_SCHEMES
from ._sentinel import sentinel_from_url

__all__ = ["client_from_url"]


def client_from_url(url: str, **overrides: Any) -> Redis:
    """A client for any of our URLs: one server, a cluster or a sentinel-managed master.

    ``redis://``, ``rediss://`` and ``unix://`` give a :class:`Redis`;
    ``redis+cluster://`` a :class:`RedisCluster`; ``redis+sentinel://`` a
    :class:`SentinelRedis`.

    Raises:
        ConfigurationError: a malformed URL or option (never shows the password).
    """
    scheme = url.partition("://")[0].lower()
    if scheme in _CLUSTER_SCHEMES:
        return cluster_from_url(url, **overrides)
    if scheme in _SENTINEL_SCHEMES:
        return sentinel_from_url(url, **overrides)
    return from_url(url, **overrides)
