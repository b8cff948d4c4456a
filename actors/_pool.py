"""Pools: OTP's ``simple_one_for_one``, a supervisor of instances of one actor that
are started at run time (:meth:`Pool.spawn`), each with its own constructor arguments."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from transports import Backoff

from ._actor import Actor, ActorRun, builder
from ._supervision import DEFAULT_RESTART_BACKOFF, Supervisor
from ._tree import ChildSpec, Restart, check_restart, check_timeout

if TYPE_CHECKING:
    from ._context import ActorContext

__all__ = ["Pool"]


class Pool(Supervisor):
    """A ``one_for_one`` supervisor that starts empty and runs the instances of
    ``actor`` that :meth:`spawn` starts while it runs (OTP's ``simple_one_for_one``).

    The instances share ``actor``'s mailbox, as those of :meth:`Actor.spec` do, and
    are named ``<actor name>-<n>`` (n counts up from 0 for the pool's life; their
    consumer names derive from it, so the actor must not also run elsewhere on the
    node). Each is restarted by ``child_restart`` (default ``permanent``) and stopped
    within ``child_shutdown`` seconds; their restarts count against the pool's
    intensity (``max_restarts`` in ``within`` seconds, as for a Supervisor). When the
    pool itself stops or is restarted, its instances are gone: spawn them again.

    ``name`` (default ``<actor name>-pool``), ``restart`` and ``shutdown`` describe
    the pool as the child of another supervisor.

    Raises:
        ConfigurationError: ``actor`` declares no mailbox or no handler; bad
            supervisor options (see :class:`Supervisor`).
    """

    def __init__(
        self,
        actor: type[Actor],
        *,
        name: str | None = None,
        child_restart: Restart = "permanent",
        child_shutdown: float = 5.0,
        max_restarts: int = 3,
        within: float = 5.0,
        backoff: Backoff | None = DEFAULT_RESTART_BACKOFF,
        restart: Restart = "permanent",
        shutdown: float = math.inf,
    ) -> None:
        actor.spec()  # the actor's own checks (mailbox, handlers), now
        check_restart(child_restart)
        check_timeout(child_shutdown, what="child_shutdown")
        super().__init__(
            (),
            strategy="one_for_one",
            max_restarts=max_restarts,
            within=within,
            backoff=backoff,
            name=name or f"{actor.name}-pool",
            restart=restart,
            shutdown=shutdown,
        )
        self.actor = actor
        self.child_restart: Restart = child_restart
        self.child_shutdown = child_shutdown
        self._next = 0

    async def spawn(
        self,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        factory: Callable[[ActorContext], Actor] | None = None,
    ) -> str:
        """Start one more instance of the pool's actor, built as :meth:`Actor.spec`
        says (``args``/``kwargs``, or ``factory``), at every (re)start; returns its
        name once it started (for :meth:`stop_child`).

        Raises:
            SpawnError: the pool is not running, or the instance failed to start (the
                cause chained).
            ConfigurationError: ``factory`` with ``args``/``kwargs``, or not callable.
        """
        build = builder(self.actor, args, kwargs, factory)
        index = self._next
        self._next += 1
        name = f"{self.actor.name}-{index}"
        run = ActorRun(self.actor, index, self.child_shutdown, build)
        spec = ChildSpec(
            name=name,
            run=run,
            restart=self.child_restart,
            shutdown=self.child_shutdown,
            pool=self.actor.name,
        )
        await self.start_child(spec)
        return name
