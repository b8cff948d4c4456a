"""URLs naming several hosts: ``redis+cluster://`` seeds and ``redis+sentinel://`` sentinels.

::

    redis+cluster://[[user]:password@]host:port[,host:port...][/0][?option=value...]
    rediss+cluster://...                          (TLS to every node)
    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db][?option=value...]
    rediss+sentinel://...                         (TLS to the master; sentinels: plain)

Options are those of ``redis://`` URLs (:func:`~transports.redis.parse_url`); the
credentials are the data nodes' (cluster nodes, sentinel-managed master and
replicas). Sentinels take ``sentinel_username`` and ``sentinel_password`` options
of their own. A cluster port defaults to 6379, a sentinel port to 26379.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from transports._exceptions import ConfigurationError
from transports._urls import redact

from ._url import parse_url

__all__ = ["Address", "parse_cluster_url", "parse_sentinel_url"]

Address = tuple[str, int]

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_SENTINEL_SCHEMES = {"redis+sentinel": "redis", "rediss+sentinel": "rediss"}


def _split(
    url: str, schemes: dict[str, str], default_port: int
) -> tuple[str, str, list[Address], str, str]:
    """(base scheme, userinfo with ``@`` or '', hosts, path, query with ``?`` or '')."""
    scheme, sep, rest = url.partition("://")
    base = schemes.get(scheme.lower())
    if not sep or base is None:
        raise ConfigurationError(
            f"invalid URL {redact(url)}: the scheme must be one of {', '.join(schemes)}"
        )
    rest, mark, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    hosts: list[Address] = []
    for item in hostlist.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):
            host, _, tail = item[1:].partition("]")
            port_text = tail[1:] if tail.startswith(":") else ""
        else:
            host, _, port_text = item.partition(":")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ConfigurationError(f"invalid port {port_text!r} in URL {redact(url)}") from None
        if not host or not 0 < port < 65536:
            raise ConfigurationError(f"invalid host {item!r} in URL {redact(url)}")
        hosts.append((host, port))
    if not hosts:
        raise ConfigurationError(f"no host in URL {redact(url)}")
    return base, userinfo + at, hosts, slash + path, mark + query


def _options(base: str, userinfo: str, path: str, query: str) -> dict[str, Any]:
    """Parse credentials, db and options as a one-host URL would; drop host and port."""
    kwargs = parse_url(f"{base}://{userinfo}placeholder:1{path}{query}")
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    return kwargs


def parse_cluster_url(url: str) -> tuple[list[Address], dict[str, Any]]:
    """The seed nodes and client options of a ``redis+cluster://`` URL.

    Raises:
        ConfigurationError: a malformed URL or option, or a db other than 0.
    """
    base, userinfo, hosts, path, query = _split(url, _CLUSTER_SCHEMES, 6379)
    kwargs = _options(base, userinfo, path, query)
    if kwargs.pop("db", 0):
        raise ConfigurationError(f"Redis Cluster has only db 0: {redact(url)}")
    return hosts, kwargs


def parse_sentinel_url(url: str) -> tuple[list[Address], str, dict[str, Any], dict[str, Any]]:
    """Sentinels, service name, master options and sentinel options of a sentinel URL.

    The sentinel options are ``username`` and ``password`` (from the query options
    ``sentinel_username`` and ``sentinel_password``).

    Raises:
        ConfigurationError: a malformed URL or option, or no service name.
    """
    base, userinfo, hosts, path, query = _split(url, _SENTINEL_SCHEMES, 26379)
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) > 2:
        raise ConfigurationError(
            f"invalid sentinel URL {redact(url)}: the path must be /service[/db]"
        )
    service, db = parts[0], parts[1] if len(parts) == 2 else ""
    sentinel: dict[str, Any] = {}
    kept = []
    for pair in query.lstrip("?").split("&") if query else []:
        name, _, value = pair.partition("=")
        if name in ("sentinel_username", "sentinel_password"):
            sentinel[name.removeprefix("sentinel_")] = unquote(value)
        elif pair:
            kept.append(pair)
    rest = "?" + "&".join(kept) if kept else ""
    kwargs = _options(base, userinfo, f"/{db}" if db else "", rest)
    return hosts, service, kwargs, sentinel
