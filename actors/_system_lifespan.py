"""The lifespan half of ActorSystem's API: hooks that open what actors share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from transports import ClosedError

from ._lifecycle import Lifecycle

F = TypeVar("F", bound=Callable[..., Any])


class LifespanHooks:
    """``lifespan``, ``on_startup``, ``on_shutdown`` and ``resources`` of an
    :class:`~actors.ActorSystem` (a base class of it, so its file stays one job)."""

    lifecycle: Lifecycle

    def lifespan(self, fn: F) -> F:
        """Declare (as a decorator) an async generator that opens what the actors share:
        the code before its one ``yield`` runs before the first actor starts, the
        code after it once the last one stopped (the store is open throughout). It
        yields a mapping of resources, merged into :attr:`resources` (actors see them
        as ``self.context.resources``), or None. A function returning an async
        context manager works too. Several run in declaration order, and close in
        reverse; they run wherever the system runs: ``async with system``, each
        process of ``python -m actors run --workers N``, the test kit.

        A failure before the ``yield`` fails the start with :class:`LifespanError`
        (``run`` exits with status 1), after what already started was closed.

        Raises:
            ConfigurationError: ``fn`` is not callable.
        """
        return self.lifecycle.lifespan.add("lifespan", fn)

    def on_startup(self, fn: F) -> F:
        """Declare (as a decorator) ``async def hook()``, run before the first actor
        starts, in declaration order with the lifespans; it may fill :attr:`resources`.
        Raising fails the start with :class:`LifespanError`.

        Raises:
            ConfigurationError: ``fn`` is not ``async def``.
        """
        return self.lifecycle.lifespan.add("startup", fn)

    def on_shutdown(self, fn: F) -> F:
        """Declare (as a decorator) ``async def hook()``, run once the actors stopped, in
        reverse declaration order with the lifespans' closing, if the start reached
        its declaration. A failure is logged, the other hooks still run, and the
        system's run raises :class:`LifespanError` after.

        Raises:
            ConfigurationError: ``fn`` is not ``async def``.
        """
        return self.lifecycle.lifespan.add("shutdown", fn)

    @property
    def resources(self) -> dict[str, Any]:
        """What the lifespan opened for this run, by name (hooks may add to it; actors
        read it as ``self.context.resources``). Emptied with each new run.

        Raises:
            ClosedError: the system is not running.
        """
        run = self.lifecycle.run
        if run is None:
            raise ClosedError("the actor system is not running")
        return run.resources
