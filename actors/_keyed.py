"""Keyed (virtual) actors: one logical actor per key, like Orleans grains or Akka
Cluster Sharding entities. This module declares them and routes messages to their
partitions; ``_keyed_owner`` runs them, ``_activations`` keeps the live ones.

A keyed actor's messages go to one of ``partitions`` list mailboxes,
``<mailbox>:p<n>`` (each on its own cluster slot), chosen by a stable hash of the
key (CRC-32), with the key in the ``actors-key`` header. Each partition is
consumed by one owner at a time: the owners (the actor's instances, in every
worker process and host) lease the partitions in the store
(:meth:`Transport.lease_partitions`), spread evenly over the live owners.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from transports import ConfigurationError, MailboxSpec

from ._actor import Actor
from ._mailbox import list_mailbox
from ._tree import ChildSpec, Restart

if TYPE_CHECKING:
    from ._context import ActorContext

__all__ = ["KEY_HEADER", "KeyedActor", "KeyedRouter", "keyed_actor_of"]

#: The header that carries a keyed message's key.
KEY_HEADER = "actors-key"


class KeyedActor(Actor):
    """Base class of keyed (virtual) actors: one logical actor per key.

    An instance of the class (an *activation*, with its key in ``self.key``) is made
    on the first message for a key (``on_start`` runs then), and passivated
    (``on_stop``) after ``idle_timeout`` seconds without a message, when more than
    ``max_activations`` are live in its partition (the least recently used first),
    or when its partition moves to another owner. State kept in attributes lives
    as long as the activation: keep what must survive in the store.

    Send with a key: ``await system.tell(Account, Deposit(10), key="alice")``, or
    define ``key_of(msg)`` to read it from the message. What is promised:

    - at-least-once delivery (a message is acked after its handler returned; one
      whose owner died is handled again by the next owner);
    - per-key order: the messages of one key are handled in the order they were
      sent (by one sender), the unacked ones of a dead owner first. A handler that
      raises and is retried (the default ``on_error``) lets later messages of its
      partition pass; declare ``on_error = {Exception: "restart"}`` to keep strict
      order (the partition restarts and the message comes back first);
    - a single activation: one key is handled by one activation, in one task, at
      a time, across all instances, worker processes and hosts. An owner handles
      its partitions only while its lease on them is valid, and stops (settling
      what it handled) well before the lease can expire.

    Within a partition, messages are handled one after another (keys too): the
    ``partitions`` spread the work over owners, so declare several per owner
    (the default, 32, serves up to 32 instances in all).

    Class attributes (besides those of :class:`Actor`):
        mailbox: the base list mailbox (default: ``list_mailbox(name)``); its name
            prefixes the partitions' and names the leases. Nothing reads it itself.
        partitions: how many partition mailboxes (fixed for the data's life:
            changing it moves keys between partitions).
        idle_timeout: seconds without a message after which an activation is
            passivated.
        max_activations: the most live activations per partition.
        lease: seconds an owner's partition leases last; renewed every
            ``lease / 5``. An owner that dies hands its partitions over after this
            long. Handlers must take well under ``lease / 2``.
    """

    partitions: ClassVar[int] = 32
    idle_timeout: ClassVar[float] = 300.0
    max_activations: ClassVar[int] = 10_000
    lease: ClassVar[float] = 10.0

    #: The key of this activation (set before ``on_start``).
    key: str

    _partition_boxes: ClassVar[tuple[MailboxSpec, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("mailbox") is None:
            cls.mailbox = list_mailbox(cls.name)
        cls._partition_boxes = ()

    @classmethod
    def key_of(cls, msg: Any) -> str:
        """The key of ``msg`` when none is given to ``tell``/``ask``; override it.

        Raises:
            ConfigurationError: not overridden (the default): pass ``key=``.
        """
        raise ConfigurationError(
            f"keyed actor {cls.__name__}: pass key= to tell/ask or define key_of(msg)"
        )

    @classmethod
    def partition_of(cls, key: str) -> int:
        """The partition of ``key``: a stable hash (CRC-32 of its UTF-8), modulo
        ``partitions``."""
        return zlib.crc32(key.encode()) % cls.partitions

    @classmethod
    def partition_mailbox(cls, index: int) -> MailboxSpec:
        """The mailbox of partition ``index``: ``<mailbox>:p<index>``, a list with the
        base mailbox's options (lease, dead letters kept, codec)."""
        if len(cls._partition_boxes) != cls.partitions:
            base = cls.mailbox
            assert base is not None
            cls._partition_boxes = tuple(
                attrs.evolve(base, name=f"{base.name}:p{n}") for n in range(cls.partitions)
            )
        return cls._partition_boxes[index]

    @classmethod
    def route(
        cls, msg: Any, key: str | None, headers: Mapping[str, str] | None
    ) -> tuple[MailboxSpec, dict[str, str]]:
        """Where ``msg`` goes (its key's partition) and its headers, key included.

        Raises:
            ConfigurationError: no key given and no ``key_of``, or a key that is not
                a string.
        """
        if key is None:
            key = cls.key_of(msg)
        if not isinstance(key, str):
            raise ConfigurationError(f"keyed actor {cls.__name__}: a key is a str, not {key!r}")
        routed = dict(headers) if headers else {}
        routed[KEY_HEADER] = key
        return cls.partition_mailbox(cls.partition_of(key)), routed

    @classmethod
    def spec(
        cls,
        *,
        instances: int = 1,
        restart: Restart = "permanent",
        shutdown: float = 5.0,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        factory: Callable[[ActorContext], Actor] | None = None,
    ) -> list[ChildSpec]:
        """Child specs for a supervisor: ``instances`` partition owners (see
        :meth:`Actor.spec`); the partitions are spread over the owners of every
        process sharing the store. Every activation is built with ``args`` and
        ``kwargs`` or by ``factory`` (its context's ``path`` ends with the key, which
        is set on the activation after, before ``on_start``).

        Raises:
            ConfigurationError: as :meth:`Actor.spec` says, or a base mailbox that is
                not an at-least-once list, or a non-positive ``partitions``,
                ``idle_timeout``, ``max_activations`` or ``lease``.
        """
        box = cls.mailbox
        if box is not None and (box.kind != "list" or not box.durable):
            raise ConfigurationError(
                f"keyed actor {cls.__name__}: the mailbox must be an at-least-once list"
            )
        for option in ("partitions", "idle_timeout", "max_activations", "lease"):
            value = getattr(cls, option)
            if not (isinstance(value, int | float) and value > 0):
                raise ConfigurationError(
                    f"keyed actor {cls.__name__}: {option} must be positive, not {value!r}"
                )
        if not isinstance(cls.partitions, int) or not isinstance(cls.max_activations, int):
            raise ConfigurationError(
                f"keyed actor {cls.__name__}: partitions and max_activations are whole numbers"
            )
        return super().spec(
            instances=instances,
            restart=restart,
            shutdown=shutdown,
            args=args,
            kwargs=kwargs,
            factory=factory,
        )


def keyed_actor_of(actors: Sequence[type[Actor]], spec: MailboxSpec) -> type[KeyedActor] | None:
    """The keyed actor among ``actors`` whose base mailbox is ``spec``, if any."""
    for cls in actors:
        if issubclass(cls, KeyedActor) and cls.mailbox == spec:
            return cls
    return None


class KeyedRouter:
    """Where a system's sends to keyed actors go: which mailbox is a keyed actor's
    (among ``actors()``, the registered ones; cached), and the partition of a key."""

    def __init__(self, actors: Callable[[], Iterable[type[Actor]]]) -> None:
        self._actors = actors
        self._keyed: dict[MailboxSpec, type[KeyedActor] | None] = {}

    def actor_of(self, spec: MailboxSpec) -> type[KeyedActor] | None:
        """The keyed actor whose base mailbox is ``spec``, if any."""
        if spec not in self._keyed:
            if len(self._keyed) > 1024:  # ad hoc addresses come and go: keep it bounded
                self._keyed.clear()
            self._keyed[spec] = keyed_actor_of(list(self._actors()), spec)
        return self._keyed[spec]

    def route(
        self, spec: MailboxSpec, msg: Any, key: str | None, headers: Mapping[str, str] | None
    ) -> tuple[MailboxSpec, Mapping[str, str] | None]:
        """Where ``msg`` for ``spec`` goes: a keyed actor's to the partition of its key
        (see :meth:`KeyedActor.route`), with the key in its headers; others to ``spec``.

        Raises:
            ConfigurationError: a key for an actor that is not keyed, or no key for
                one that is (and no ``key_of``).
        """
        keyed = self.actor_of(spec)
        if keyed is None:
            if key is not None:
                raise ConfigurationError(f"key= given for {spec}, which is not a keyed actor")
            return spec, headers
        return keyed.route(msg, key, headers)

    def split(
        self,
        spec: MailboxSpec,
        msgs: Sequence[Any],
        encode: Callable[[Any, Mapping[str, str] | None], bytes],
    ) -> dict[MailboxSpec, list[bytes]]:
        """The payloads of ``msgs`` to the keyed actor of ``spec``, by partition (each
        key by ``key_of``), in order within each.

        Raises:
            ConfigurationError: as :meth:`route`. CodecError: as ``encode``.
        """
        batches: dict[MailboxSpec, list[bytes]] = {}
        for msg in msgs:
            box, headers = self.route(spec, msg, None, None)
            batches.setdefault(box, []).append(encode(msg, headers))
        return batches
