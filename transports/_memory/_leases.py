"""The partition leases of keyed actors in a memory store: pure state, the same rules
as the Redis script ``lua/lease_partitions.lua`` (see :meth:`Transport.lease_partitions`)."""

from __future__ import annotations

from collections.abc import Collection

import attrs

from .._values import PartitionLeases

__all__ = ["PartitionTable"]


@attrs.define
class PartitionTable:
    """The owners (name -> expiry) and leases (partition -> (owner, expiry)) of one
    group of partitions, in the store's clock."""

    owners: dict[str, float] = attrs.Factory(dict)
    leases: dict[int, tuple[str, float]] = attrs.Factory(dict)

    def lease(
        self,
        owner: str,
        partitions: int,
        ttl: float,
        now: float,
        keep: Collection[int],
        leave: bool,
    ) -> PartitionLeases:
        """Heartbeat ``owner`` and renew, take and release its leases at ``now``."""
        if leave:
            self.owners.pop(owner, None)
        else:
            self.owners[owner] = now + ttl
        self.owners = {name: until for name, until in self.owners.items() if until > now}
        live = sorted(self.owners)
        index = live.index(owner) if owner in self.owners else -1
        held: list[int] = []
        wanted: list[int] = []
        for p in range(partitions):
            desired = index >= 0 and p % len(live) == index
            holder, expiry = self.leases.get(p, (None, 0.0))
            if holder == owner:
                if desired or p in keep:
                    self.leases[p] = (owner, now + ttl)
                    held.append(p)
                    if desired:
                        wanted.append(p)
                else:
                    del self.leases[p]
            elif desired and (holder is None or expiry <= now):
                self.leases[p] = (owner, now + ttl)
                held.append(p)
                wanted.append(p)
        return PartitionLeases(tuple(held), tuple(wanted), len(live))
