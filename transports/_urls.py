"""URL helpers shared by the transports and the runtime: never show a password."""

from __future__ import annotations

__all__ = ["redact"]


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (best effort, for messages)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<invalid url>"
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}://{userinfo}{at}{hostport}{slash}{tail}"
