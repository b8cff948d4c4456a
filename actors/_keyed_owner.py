"""Running a keyed actor's instance: a partition owner. It leases its share of the
partitions in the store (``Transport.lease_partitions``), runs one
:class:`PartitionRunner` (an :class:`InstanceRunner` on the partition's mailbox) per
partition it is wanted to consume, stops those it is no longer wanted on, and stops
all of them before its leases can expire when it cannot renew them.

The runner's consumer is named after the partition (``<mailbox>:p<n>``), not the
owner: the next owner of a partition opens it under the same name and gets the
messages the last one fetched and did not ack first, so a key's order survives a
handover and a dead owner.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import trio

from transports import Delivery, TransportError, TransportTimeout

from ._activations import Activations
from ._actor import Actor, Build
from ._codec import Envelope
from ._context import ActorContext
from ._keyed import KEY_HEADER, KeyedActor
from ._observe import ActorMessaging
from ._runner import InstanceRunner
from ._runtime import SystemRun

__all__ = ["PartitionOwner", "PartitionRunner"]

logger = logging.getLogger("actors.actor")

#: Renew the leases this often, in leases.
_RENEW = 0.2
#: Stop consuming (gracefully) when a lease has less than this left, in leases,
#: without a renewal: the partition runners then settle before it expires.
_STOP_AT = 0.5
#: Cancel what still runs when a lease has less than this left, in leases.
_CANCEL_AT = 0.15


class _Partition(Actor):
    """What a partition's runner runs: the partition's activations, passivated at
    its end; the handlers run on the activations (:meth:`PartitionRunner._invoke`)."""

    def __init__(self, activations: Activations) -> None:
        self.activations = activations

    async def on_stop(self) -> None:
        await self.activations.passivate_all()


class PartitionRunner(InstanceRunner):
    """An :class:`InstanceRunner` on partition ``index`` of ``cls``: each message is
    handled by the activation of its key, one message at a time."""

    def __init__(
        self,
        run: SystemRun,
        cls: type[KeyedActor],
        index: int,
        path: str,
        shutdown: float,
        build: Build,
    ) -> None:
        spec = cls.partition_mailbox(index)
        super().__init__(
            run, cls, spec.name, path, shutdown, build, spec=spec, consumer_name=spec.name
        )
        self.keyed = cls
        self.activations = Activations(cls, self._context_for, build)

    def _context_for(self, key: str) -> ActorContext:
        path = f"{self.path}/{key}"
        return ActorContext(
            ActorMessaging(self.messenger, self.cls.middleware, path),
            path,
            self.consumer_name,
            self.runtime.resources,
        )

    def _new_actor(self, context: ActorContext) -> Actor:
        return _Partition(self.activations)

    async def _invoke(
        self, actor: Actor, method: str, body: Any, envelope: Envelope, delivery: Delivery
    ) -> Any:
        key = envelope.headers.get(KEY_HEADER)
        if key is None:  # sent by another client, straight to the partition
            key = self.keyed.key_of(body)
        activations = self.activations
        activations.busy = key
        try:
            activation = await activations.get(key)
            context = activation.context
            context._current = (envelope, delivery)
            try:
                return await self._observe.handle(getattr(activation, method), body, context)
            finally:
                context._current = None
                context._message = None
        finally:
            activations.busy = None

    async def run(self, stop: trio.Event, task_status: trio.TaskStatus[None]) -> None:
        """Run the partition until ``stop`` or a crash, passivating idle activations
        meanwhile.

        Raises:
            Exception: what a handler or a hook raised (a crash).
        """
        crash: Exception | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.activations.sweep)
            try:
                await super().run(stop, task_status)
            except Exception as exc:
                crash = exc  # raised as itself, not in a group
            nursery.cancel_scope.cancel()
        if crash is not None:
            raise crash


class PartitionOwner:
    """Instance ``name`` of keyed actor ``cls`` (``path`` in the tree): see the module."""

    def __init__(
        self,
        run: SystemRun,
        cls: type[KeyedActor],
        name: str,
        path: str,
        shutdown: float,
        build: Build,
    ) -> None:
        assert cls.mailbox is not None
        self.build = build
        self.runtime = run
        self.cls = cls
        self.path = path
        self.owner = f"{run.node}/{name}"
        self.group = cls.mailbox.name
        self._shutdown = shutdown
        #: The partitions running, with the event that stops each and its cancel scope.
        self._running: dict[int, tuple[trio.Event, trio.CancelScope]] = {}
        self._crash: Exception | None = None
        self._changed = trio.Event()
        #: Until when (trio time) the leases of the running partitions are valid.
        self._valid_until = -math.inf

    async def run(self, stop: trio.Event, task_status: trio.TaskStatus[None]) -> None:
        """Own partitions until ``stop`` (or the system's stop) or a partition's crash.

        Raises:
            Exception: what a partition's handler or hook raised (a crash).
        """
        halt = trio.Event()
        async with trio.open_nursery() as watchers:
            watchers.start_soon(self._wake_on, stop, halt)
            watchers.start_soon(self._wake_on, self.runtime.stop, halt)
            async with trio.open_nursery() as partitions:
                task_status.started()
                try:
                    await self._lease(partitions, halt)
                finally:
                    for stop_one, _ in self._running.values():
                        stop_one.set()
                    with trio.CancelScope(shield=True):
                        await self._bound_partitions()
            if self._crash is None:
                await self._leave()
            watchers.cancel_scope.cancel()
        if self._crash is not None:
            raise self._crash

    async def _wake_on(self, source: trio.Event, halt: trio.Event) -> None:
        await source.wait()
        halt.set()
        self._changed.set()

    async def _lease(self, partitions: trio.Nursery, halt: trio.Event) -> None:
        """Renew the leases and start and stop partitions to match, until ``halt``."""
        ttl = self.cls.lease
        transport = self.runtime.transport
        failing = False
        while not halt.is_set() and self._crash is None:
            sent = trio.current_time()
            leases = None
            try:
                # Bounded: a store that hangs must not keep the partitions running
                # past their leases (the enforcement below comes after the call).
                bound = max(min(sent + ttl * _RENEW, self._stop_time(ttl)), sent + ttl * 0.02)
                with trio.move_on_at(bound):
                    leases = await transport.lease_partitions(
                        self.group, self.owner, self.cls.partitions, ttl, keep=list(self._running)
                    )
                if leases is None:
                    raise TransportTimeout(f"no answer within {bound - sent:.2f}s")
            except TransportError as exc:
                if not failing:
                    logger.warning("%s: cannot renew the partition leases: %s", self.path, exc)
                failing = True
            else:
                if failing:
                    logger.info("%s: partition leases renewed again", self.path)
                failing = False
                self._valid_until = sent + ttl
                for index in leases.wanted:
                    if index not in self._running:
                        self._start(partitions, index)
                for index, (stop_one, _) in self._running.items():
                    if index not in leases.wanted:
                        stop_one.set()  # another owner's share now: hand it over
            self._enforce(ttl)
            self._changed = trio.Event()
            # At least a little apart: a failing store answers at once.
            wake = max(min(sent + ttl * _RENEW, self._stop_time(ttl)), sent + ttl * 0.02)
            with trio.move_on_at(wake):
                await self._changed.wait()

    def _stop_time(self, ttl: float) -> float:
        """When the running partitions must be stopped (or cancelled) if no renewal
        comes first."""
        if not self._running:
            return math.inf
        return self._valid_until - ttl * (_CANCEL_AT if self._stopping() else _STOP_AT)

    def _stopping(self) -> bool:
        return any(stop_one.is_set() for stop_one, _ in self._running.values())

    def _enforce(self, ttl: float) -> None:
        """Stop the partitions when the leases run low, cancel them when lower."""
        left = self._valid_until - trio.current_time()
        for stop_one, scope in self._running.values():
            if left <= ttl * _STOP_AT:
                stop_one.set()
            if left <= ttl * _CANCEL_AT:
                scope.cancel()

    def _start(self, partitions: trio.Nursery, index: int) -> None:
        stop_one = trio.Event()
        scope = trio.CancelScope()
        self._running[index] = (stop_one, scope)
        partitions.start_soon(self._run_partition, index, stop_one, scope)

    async def _run_partition(
        self, index: int, stop_one: trio.Event, scope: trio.CancelScope
    ) -> None:
        # A partition's store writes at a stop must end well within the lease.
        shutdown = min(self._shutdown, self.cls.lease * (_STOP_AT - _CANCEL_AT) / 2)
        path = f"{self.path}/p{index}"
        runner = PartitionRunner(self.runtime, self.cls, index, path, shutdown, self.build)
        try:
            with scope:
                await runner.run(stop_one, trio.TASK_STATUS_IGNORED)
        except Exception as exc:
            if self._crash is None:
                self._crash = exc
        finally:
            del self._running[index]
            self._changed.set()

    async def _bound_partitions(self) -> None:
        """Wait for the running partitions to end, cancelling them before their leases
        can expire."""
        while self._running:
            deadline = self._valid_until - self.cls.lease * _CANCEL_AT
            with trio.move_on_at(deadline):
                self._changed = trio.Event()
                await self._changed.wait()
                continue
            for _, scope in self._running.values():
                scope.cancel()
            self._changed = trio.Event()
            await self._changed.wait()

    async def _leave(self) -> None:
        """Hand the partitions over at once (best effort: else they move when the
        leases expire)."""
        with trio.move_on_after(1.0) as scope:
            scope.shield = True
            try:
                await self.runtime.transport.lease_partitions(
                    self.group, self.owner, self.cls.partitions, self.cls.lease, leave=True
                )
            except TransportError as exc:
                logger.info("%s: partitions not handed over (%s): they move later", self.path, exc)
