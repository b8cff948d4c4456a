"""What the sync and the asyncio client share: targets, requests, replies, errors.

Neither client runs an actor system: they write the envelopes ``tell`` and ``ask``
write (README, "Wire format") with redis-py, and read an ask's reply from a reply list
of its own, so no node name, reply reader or background task is needed.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import redis.exceptions

from transports import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    MailboxSpec,
    TransportError,
    TransportTimeout,
    redact,
)
from transports.redis import (
    command_error,
    delay_ms,
    index_command,
    schedule_command,
    send_commands,
)

from .._actor import Actor
from .._codec import DEFAULT_MAX_PAYLOAD, decode, encode
from .._errors import AskTimeout
from .._keyed import KeyedActor, keyed_actor_of
from .._lifecycle import DEFAULT_URL
from .._messenger import REPLY_PREFIX, read_reply
from .._registry import Registry, reply_annotation

if TYPE_CHECKING:
    from .._system import ActorSystem

__all__ = [
    "AskRequest",
    "Targets",
    "check_timeout",
    "client_url",
    "due_index_command",
    "store_errors",
    "tell_commands",
]

# A reply list of its own per ask: `actors.reply.client.<pid>.<token>.<n>`. The
# replier deletes a list nobody reads REPLY_EXPIRE seconds after its last reply.
_TOKEN = os.urandom(6).hex()
_counter = itertools.count()


class Targets:
    """Turns a ``tell``/``ask`` target into a mailbox, and finds the type of a reply.

    Targets are what :meth:`ActorSystem.tell` takes: an address (``"list:jobs"``), a
    :class:`MailboxSpec`, an actor class or actor function, or, given ``system``, the
    name of one of its actors or mailboxes (looked up in the system's registry).
    """

    def __init__(self, system: ActorSystem | None) -> None:
        self._registry = system.lifecycle.registry if system is not None else Registry()

    def resolve(self, target: Any) -> MailboxSpec:
        """The mailbox of ``target``.

        Raises:
            ConfigurationError: the target is unknown.
        """
        return self._registry.resolve(target)

    def reply_type(self, target: Any, spec: MailboxSpec, msg: Any) -> Any:
        """What a reply to ``msg`` from ``target`` is structured as (None: plain JSON):
        the return annotation of the handler for ``type(msg)``, when the target's actor
        class is known (given as a class, or registered on ``system``)."""
        cls = _actor_class(target)
        if cls is not None:
            return reply_annotation(cls, type(msg))
        return self._registry.reply_type_for(spec, msg)

    def _keyed(self, target: Any, spec: MailboxSpec) -> type[KeyedActor] | None:
        """The keyed actor ``target`` is (a class, or one registered on the system)."""
        cls = _actor_class(target)
        if cls is not None:
            return cls if issubclass(cls, KeyedActor) else None
        return keyed_actor_of(list(self._registry.actors.values()), spec)

    def route(
        self, target: Any, msg: Any, key: str | None, headers: Mapping[str, str] | None
    ) -> tuple[MailboxSpec, Mapping[str, str] | None]:
        """The mailbox of ``msg`` to ``target`` and its headers: for a keyed actor, the
        partition of its key (``key``, else ``key_of(msg)``), the key in the headers.

        Raises:
            ConfigurationError: the target is unknown, or a key where none fits.
        """
        spec = self.resolve(target)
        keyed = self._keyed(target, spec)
        if keyed is not None:
            return keyed.route(msg, key, headers)
        if key is not None:
            raise ConfigurationError(f"key= given for {spec}, which is not a keyed actor")
        return spec, headers

    def sends(
        self,
        target: Any,
        msgs: Sequence[Any],
        headers: Mapping[str, str] | None,
        key: str | None = None,
    ) -> list[tuple[MailboxSpec, list[Any], Mapping[str, str] | None]]:
        """Where ``msgs`` to ``target`` go, in order: (mailbox, messages, headers) groups
        (a keyed actor's, one per message, to its key's partition).

        Raises:
            ConfigurationError: as :meth:`route`, or a pub/sub pattern.
        """
        spec = self.resolve(target)
        if self._keyed(target, spec) is None and key is None:
            return [(spec, list(msgs), headers)]
        groups: list[tuple[MailboxSpec, list[Any], Mapping[str, str] | None]] = []
        for msg in msgs:
            box, routed = self.route(target, msg, key, headers)
            groups.append((box, [msg], routed))
        return groups

    def tell_commands(
        self,
        target: Any,
        msgs: Sequence[Any],
        headers: Mapping[str, str] | None,
        key: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """The commands that send ``msgs`` to ``target`` now (a keyed actor's, each to
        its key's partition), in order.

        Raises:
            ConfigurationError: as :meth:`route`, or a pub/sub pattern. CodecError: a
                message cannot be encoded.
        """
        commands: list[tuple[Any, ...]] = []
        for box, group, routed in self.sends(target, msgs, headers, key):
            commands += tell_commands(box, group, routed)
        return commands

    def ask_request(
        self,
        target: Any,
        msg: Any,
        *,
        reply_type: Any,
        headers: Mapping[str, str] | None,
        max_payload: int,
        key: str | None = None,
    ) -> AskRequest:
        """The request of an ask of ``msg`` to ``target`` (for a keyed actor, with
        ``key``: see :meth:`route`), whose reply is structured as ``reply_type`` (None:
        see :meth:`reply_type`).

        Raises:
            ConfigurationError: unknown target, a key where none fits, or a pattern.
                CodecError: ``msg`` cannot be encoded.
        """
        spec = self.resolve(target)
        expected = reply_type if reply_type is not None else self.reply_type(target, spec, msg)
        spec, headers = self.route(target, msg, key, headers)
        return AskRequest.make(
            spec, msg, expected=expected, headers=headers, max_payload=max_payload
        )


def _actor_class(target: Any) -> type[Actor] | None:
    if isinstance(target, type) and issubclass(target, Actor):
        return target
    found = getattr(target, "__actors_class__", None)
    return found if isinstance(found, type) and issubclass(found, Actor) else None


def tell_commands(
    spec: MailboxSpec,
    msgs: Sequence[Any],
    headers: Mapping[str, str] | None,
    delay: float = 0.0,
) -> list[tuple[Any, ...]]:
    """The commands that send ``msgs`` to ``spec``, each in its own envelope; with a
    ``delay`` (seconds), the one command that holds them in Redis (its reply, their due
    time, goes to :func:`index_command`, which the caller runs next).

    Raises:
        CodecError: a message cannot be encoded. ConfigurationError: a pub/sub pattern,
            or a delay to pub/sub.
    """
    payloads = [encode(msg, headers=headers) for msg in msgs]
    wait = delay_ms(spec, delay)
    if wait:
        return [schedule_command(spec, payloads, wait)]
    return send_commands(spec, payloads, sharded=False)


def due_index_command(spec: MailboxSpec, due_ms: Any) -> tuple[Any, ...]:
    """The command that makes a delayed send (:func:`tell_commands` with a delay, whose
    reply is ``due_ms``) known to the runtimes that promote due messages."""
    return index_command(spec, int(due_ms))


@attrs.frozen
class AskRequest:
    """One ask: the commands that send it, the reply list to wait on, and how to read
    the reply."""

    spec: MailboxSpec
    commands: list[tuple[Any, ...]]
    reply_list: str
    correlation_id: str
    expected: Any
    max_payload: int

    @classmethod
    def make(
        cls,
        spec: MailboxSpec,
        msg: Any,
        *,
        expected: Any,
        headers: Mapping[str, str] | None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> AskRequest:
        """Encode ``msg`` with a fresh correlation id and reply list.

        Raises:
            CodecError: ``msg`` cannot be encoded. ConfigurationError: a pattern.
        """
        n = next(_counter)
        reply_list = f"{REPLY_PREFIX}client.{os.getpid()}.{_TOKEN}.{n}"
        correlation_id = f"{_TOKEN}.{n}"
        payload = encode(
            msg, correlation_id=correlation_id, reply_to=f"list:{reply_list}", headers=headers
        )
        return cls(
            spec,
            send_commands(spec, [payload], sharded=False),
            reply_list,
            correlation_id,
            expected,
            max_payload,
        )

    def timed_out(self, timeout: float) -> AskTimeout:
        return AskTimeout(f"no reply from {self.spec} within {timeout}s")

    def answer(self, payload: bytes | str) -> tuple[bool, Any]:
        """Read a payload of the reply list: ``(False, None)`` when it is not the reply
        to this request (a stray write), else ``(True, value)``. (A ``str``: from a
        redis-py client made with ``decode_responses=True``.)

        Raises:
            RemoteError: the handler failed for good or rejected the message.
            CodecError: the reply is not of the expected type.
        """
        if isinstance(payload, str):
            payload = payload.encode()
        reply = decode(payload, max_size=self.max_payload)
        if reply.correlation_id != self.correlation_id:
            return False, None
        return True, read_reply(reply, self.spec, self.expected)


@contextmanager
def store_errors(url: str) -> Iterator[None]:
    """Raise redis-py's errors as the ``actors`` errors the runtime raises for the same
    failure (the :class:`TransportError` tree: an error reply is a
    :class:`CommandError`, or an ``UnavailableError`` for an outage such as ``OOM``), the
    original chained. ``url`` is the display URL (no password)."""
    try:
        yield
    except redis.exceptions.AuthenticationError as exc:
        raise AuthenticationError(f"{url}: {exc}") from exc
    except redis.exceptions.ResponseError as exc:
        raise command_error(exc) from exc
    except redis.exceptions.TimeoutError as exc:
        raise TransportTimeout(f"timed out waiting for {url}: {exc}") from exc
    except redis.exceptions.ConnectionError as exc:
        raise ConnectError(f"cannot reach {url}: {exc}") from exc
    except redis.exceptions.RedisError as exc:
        raise TransportError(f"{url}: {exc}") from exc


def client_url(url: str | None, given: object, system: ActorSystem | None) -> str | None:
    """The URL a client connects to: ``url``, else the system's, else ``$ACTORS_URL`` or
    the default; None when a redis-py client is ``given``.

    Raises:
        ConfigurationError: both a URL and a client given, or a URL whose scheme
            redis-py's ``from_url`` does not take (a cluster or sentinel URL: pass a
            redis-py ``RedisCluster``, or the master of a ``Sentinel``, as ``redis=``).
    """
    if given is not None:
        if url is not None:
            raise ConfigurationError("pass a URL or a redis-py client (redis=), not both")
        return None
    url = url or (system.url if system is not None else None)
    url = url or os.environ.get("ACTORS_URL") or DEFAULT_URL
    scheme = url.partition("://")[0].lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"{redact(url)}: a client takes redis://, rediss:// or unix:// URLs; for a "
            "cluster or a sentinel, pass a redis-py client of that kind as redis="
        )
    return url


def check_timeout(timeout: float) -> None:
    """Raises: ConfigurationError: ``timeout`` is not positive."""
    if not timeout > 0:
        raise ConfigurationError(f"timeout must be positive, not {timeout!r}")
