"""What processes coordinate through a Redis transport besides mailboxes: schedule
marks (one firing per due time) and keyed actors' partition leases."""

from __future__ import annotations

from collections.abc import Sequence

from .._values import PartitionLeases
from . import timing_scripts
from .client import RAW, Redis
from .keys import SCHEDULE_MARKS

__all__ = ["Coordination"]


class Coordination:
    """The schedule-mark and partition-lease methods of
    :class:`~transports.redis.RedisTransport` (a base class of it)."""

    _client: Redis

    def _check_open(self) -> None:
        raise NotImplementedError

    # -- schedule marks ---------------------------------------------------------------

    async def read_mark(self, name: str) -> int | None:
        """The due time (ms) the schedule ``name`` last fired for (``HGET`` of
        :data:`~transports.redis.keys.SCHEDULE_MARKS`), or None.

        Raises:
            TransportError: the store failed. ClosedError: the transport is closed.
        """
        self._check_open()
        mark = await self._client.execute_command(b"HGET", SCHEDULE_MARKS, name, **RAW)
        return None if mark is None else int(mark)

    async def advance_mark(self, name: str, due_ms: int) -> bool:
        """Raise the mark of ``name`` to ``due_ms`` if lower or unset (one script); True
        when this call raised it.

        Raises:
            TransportError: the store failed. ClosedError: the transport is closed.
        """
        self._check_open()
        return await timing_scripts.advance_mark(self._client, name=name, due_ms=due_ms)

    async def lease_partitions(
        self,
        group: str,
        owner: str,
        partitions: int,
        ttl: float,
        *,
        keep: Sequence[int] = (),
        leave: bool = False,
    ) -> PartitionLeases:
        """Lease ``owner`` its share of ``group``'s partitions in one script; see
        :meth:`Transport.lease_partitions` (keys: :func:`~transports.redis.keys.partition_keys`).

        Raises:
            CommandError: a key of the leases holds another type (nothing changed).
            TransportError: the store failed.
            ClosedError: the transport is closed.
        """
        self._check_open()
        held, wanted, owners = await timing_scripts.lease_partitions(
            self._client,
            group=group,
            owner=owner,
            partitions=partitions,
            ttl_ms=max(1, round(ttl * 1000)),
            leave=leave,
            keep=keep,
        )
        return PartitionLeases(tuple(held), tuple(wanted), owners)
