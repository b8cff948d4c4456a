"""Where and how to connect: :class:`ConnectionConfig`, parsed from redis-py style URLs.

URLs are parsed by redis-py's own ``parse_url``, so ``redis://``, ``rediss://`` and
``unix://`` URLs mean here what they mean to redis-py::

    redis://[[user]:password@]host[:port][/db][?option=value...]
    rediss://...?ssl_ca_certs=/path/ca.pem&ssl_cert_reqs=required
    unix://[[user]:password@]/path/to/redis.sock?db=1
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import attrs
from redis.connection import parse_url as _redis_parse_url

from transports._exceptions import ConfigurationError
from transports._urls import redact

__all__ = ["ConnectionConfig", "parse_url"]

_CERT_REQS = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}
_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "n", ""})

# URL query names (redis-py's, and ours) -> ConnectionConfig / client keyword names.
_QUERY_NAMES = {
    "db": "db",
    "socket_connect_timeout": "connect_timeout",
    "connect_timeout": "connect_timeout",
    "socket_timeout": "read_timeout",
    "timeout": "read_timeout",
    "read_timeout": "read_timeout",
    "client_name": "client_name",
    "ssl_cert_reqs": "ssl_cert_reqs",
    "ssl_ca_certs": "ssl_ca_certs",
    "ssl_certfile": "ssl_certfile",
    "ssl_keyfile": "ssl_keyfile",
    "ssl_check_hostname": "ssl_check_hostname",
    "decode_responses": "decode_responses",
    "max_connections": "max_connections",
    "connect_retries": "connect_retries",
    "pool_timeout": "pool_timeout",
}
_FLOAT_OR_NONE = frozenset({"connect_timeout", "read_timeout", "pool_timeout"})
_BOOLS = frozenset({"ssl_check_hostname", "decode_responses"})
_INTS = frozenset({"db", "max_connections", "connect_retries"})


def _to_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"redis URL option {name} must be a boolean, not {value!r}")


def _timeout(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ConfigurationError(f"{attribute.name} must be positive or None, not {value!r}")


@attrs.frozen
class ConnectionConfig:
    """Everything needed to open one connection; the password never shows in ``repr``.

    ``display_url`` is the URL to show in messages and logs: it has the user name
    but never the password. ``path`` set means a unix socket (``host``/``port`` are
    then ignored); ``tls`` means ``rediss://``.

    Raises:
        ConfigurationError: on a negative db, a non-positive timeout, or an unknown
            ``ssl_cert_reqs``.
    """

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    tls: bool = False
    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    client_name: str | None = None
    connect_timeout: float | None = attrs.field(default=5.0, validator=_timeout)
    read_timeout: float | None = attrs.field(default=30.0, validator=_timeout)

    def __attrs_post_init__(self) -> None:
        if self.db < 0:
            raise ConfigurationError(f"redis db must be >= 0, not {self.db}")
        if self.ssl_cert_reqs.lower() not in _CERT_REQS:
            raise ConfigurationError(
                f"ssl_cert_reqs must be one of none, optional, required; not {self.ssl_cert_reqs!r}"
            )

    @property
    def display_url(self) -> str:
        """The server's URL for humans: user name shown, password never."""
        user = f"{self.username}@" if self.username else ""
        if self.path is not None:
            return f"unix://{user}{self.path}"
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}/{self.db}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context from the ``ssl_*`` options.

        Raises:
            ConfigurationError: a certificate or key file cannot be loaded.
        """
        context = ssl.create_default_context()
        reqs = _CERT_REQS[self.ssl_cert_reqs.lower()]
        context.check_hostname = self.ssl_check_hostname and reqs != ssl.CERT_NONE
        context.verify_mode = reqs
        try:
            if self.ssl_ca_certs:
                context.load_verify_locations(cafile=self.ssl_ca_certs)
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load TLS files for {self.display_url}: {exc}"
            ) from exc
        return context


def parse_url(url: str) -> dict[str, Any]:
    """Keyword arguments for :class:`~transports.redis.Redis` from a redis-py style URL.

    Keys are among ``ConnectionConfig``'s fields plus ``decode_responses``,
    ``max_connections``, ``connect_retries`` and ``pool_timeout``. redis-py's query
    names are accepted (``socket_connect_timeout``, ``socket_timeout``...) next to
    ours (``connect_timeout``, ``read_timeout``).

    Raises:
        ConfigurationError: the URL has an unknown scheme, a bad port or db, or an
            unsupported or malformed query option. The message never contains the
            password.
    """
    try:
        parsed: dict[str, Any] = _redis_parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ConfigurationError(f"invalid redis URL {redact(url)}: {exc}") from None
    if not url.startswith("unix://"):
        # redis-py quietly reads a non-numeric path ("/notadb") as database 0.
        db_path = urlsplit(url).path.strip("/")
        if db_path and not db_path.isdigit():
            raise ConfigurationError(
                f"invalid redis URL {redact(url)}: database {db_path!r} is not a number"
            )
    kwargs: dict[str, Any] = {}
    connection_class = parsed.pop("connection_class", None)
    if connection_class is not None and connection_class.__name__ == "SSLConnection":
        kwargs["tls"] = True
    for key in ("host", "port", "path", "username", "password"):
        if key in parsed:
            kwargs[key] = parsed.pop(key)
    if url.startswith("unix://") and "path" not in kwargs:
        raise ConfigurationError(f"invalid redis URL {redact(url)}: no socket path")
    for query_name, value in parsed.items():
        name = _QUERY_NAMES.get(query_name)
        if name is None:
            raise ConfigurationError(
                f"unsupported option {query_name!r} in redis URL {redact(url)}"
            )
        try:
            if name in _FLOAT_OR_NONE:
                kwargs[name] = None if str(value).lower() in ("", "none") else float(value)
            elif name in _INTS:
                kwargs[name] = int(value)
            elif name in _BOOLS:
                kwargs[name] = _to_bool(query_name, value)
            else:
                kwargs[name] = value
        except ValueError:
            raise ConfigurationError(
                f"invalid value for {query_name!r} in redis URL {redact(url)}"
            ) from None
    return kwargs
