"""Message stores for actors: the Transport interface, in-memory and Redis."""

from ._backoff import Backoff as Backoff
from ._base import (
    BrokenConsumerError as BrokenConsumerError,
    Consumer as Consumer,
    Transport as Transport,
)
from ._dead_letters import check_dead_letter_ids as check_dead_letter_ids
from ._exceptions import (
    ActorsError as ActorsError,
    AuthenticationError as AuthenticationError,
    BrokenConnectionError as BrokenConnectionError,
    ClosedError as ClosedError,
    CommandError as CommandError,
    ConfigurationError as ConfigurationError,
    ConnectError as ConnectError,
    ReplayError as ReplayError,
    TransportError as TransportError,
    TransportTimeout as TransportTimeout,
    UnavailableError as UnavailableError,
    is_outage as is_outage,
)
from ._urls import redact as redact
from ._values import (
    DEAD_MAXLEN as DEAD_MAXLEN,
    DeadLetter as DeadLetter,
    Delivery as Delivery,
    FailedAttempt as FailedAttempt,
    Failure as Failure,
    MailboxKind as MailboxKind,
    MailboxSpec as MailboxSpec,
    MailboxStats as MailboxStats,
    NodeInfo as NodeInfo,
    Outcome as Outcome,
    PartitionLeases as PartitionLeases,
    Settlement as Settlement,
    Verdict as Verdict,
)


def open_transport(url: str) -> Transport:
    """The transport for ``url``: ``memory://``, or Redis (``redis://``, ``rediss://``,
    ``unix://``, ``redis+cluster://``, ``redis+sentinel://`` and their TLS forms).

    Raises:
        ConfigurationError: an unsupported scheme, or a malformed Redis URL.
    """
    scheme = url.partition("://")[0]
    if scheme == "memory":
        from .memory import MemoryTransport

        return MemoryTransport()
    if scheme in ("redis", "rediss", "unix") or scheme.endswith(("+cluster", "+sentinel")):
        from .redis import RedisTransport

        return RedisTransport.from_url(url)
    raise ConfigurationError(
        f"unsupported URL scheme {scheme!r}: use redis://, rediss://, unix://, "
        "redis+cluster://, redis+sentinel:// or memory://"
    )
