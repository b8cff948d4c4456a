"""Clients from URLs: a cluster's, a sentinel-managed master's, and one for any URL
(its scheme picks the topology)."""

from __future__ import annotations

from typing import Any

from ._client import Redis, from_url
from ._cluster import RedisCluster
from ._multi_url import _CLUSTER_SCHEMES, _SENTINEL_SCHEMES, parse_cluster_url, parse_sentinel_url
from ._sentinel import SentinelRedis

__all__ = ["client_from_url", "cluster_from_url", "sentinel_from_url"]


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


def cluster_from_url(url: str, **overrides: Any) -> RedisCluster:
    """A :class:`RedisCluster` for ``redis+cluster://host:port[,host:port...]``.

    See :mod:`transports.redis.client._multi_url` for the URL form; keyword arguments
    win over the URL's options.

    Raises:
        ConfigurationError: a malformed URL or option (never shows the password).
    """
    seeds, kwargs = parse_cluster_url(url)
    kwargs.update(overrides)
    return RedisCluster(seeds, **kwargs)


def sentinel_from_url(url: str, **overrides: Any) -> SentinelRedis:
    """A :class:`SentinelRedis` for ``redis+sentinel://host:port[,host:port...]/service[/db]``.

    See :mod:`transports.redis.client._multi_url` for the URL form; keyword arguments
    win over the URL's options.

    Raises:
        ConfigurationError: a malformed URL or option (never shows the password).
    """
    sentinels, service, kwargs, sentinel = parse_sentinel_url(url)
    kwargs.update(overrides)
    kwargs.setdefault("sentinel_username", sentinel.get("username"))
    kwargs.setdefault("sentinel_password", sentinel.get("password"))
    return SentinelRedis(sentinels, service, **kwargs)
