"""A system's lifespan: hooks that open what its actors share before they start, and
close it after they stopped (``@system.lifespan``, ``on_startup``, ``on_shutdown``)."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal, TypeVar

import attrs
import trio

from transports import ConfigurationError

from ._errors import LifespanError
from ._handlers import qualified

__all__ = ["SHUTDOWN_HOOKS_TIMEOUT", "Lifespan"]

logger = logging.getLogger("actors.system")

F = TypeVar("F", bound=Callable[..., Any])

Kind = Literal["lifespan", "startup", "shutdown"]

#: Seconds the shutdown side of all hooks gets, together, once the actors stopped;
#: they run even when the stop is cut short (shielded), so a hook that hangs is cut.
SHUTDOWN_HOOKS_TIMEOUT = 30.0


@attrs.define
class Lifespan:
    """The lifespan hooks of one system, in declaration order."""

    hooks: list[tuple[Kind, Callable[..., Any]]] = attrs.Factory(list)

    def add(self, kind: Kind, fn: F) -> F:
        """Declare ``fn`` as a hook of ``kind``; returns it unchanged.

        Raises:
            ConfigurationError: ``fn`` is not an async generator function (or a
                callable returning an async context manager) for ``lifespan``, or
                not ``async def`` for ``startup``/``shutdown``.
        """
        if kind == "lifespan":
            if not callable(fn):
                raise ConfigurationError(f"lifespan must be callable, not {fn!r}")
        elif not inspect.iscoroutinefunction(fn):
            raise ConfigurationError(f"{kind} hook {qualified(fn)} must be async def")
        self.hooks.append((kind, fn))
        return fn

    @asynccontextmanager
    async def running(self, resources: dict[str, Any]) -> AsyncIterator[None]:
        """Run the start side of every hook, in declaration order, for the body of
        the block, then the stop side of those that started, in reverse order.

        What a lifespan yields (a mapping, or None) is merged into ``resources``.
        The stop side runs shielded from cancellation, for at most
        :data:`SHUTDOWN_HOOKS_TIMEOUT` seconds; a failing one is logged, and the
        others still run.

        Raises:
            LifespanError: a start hook failed (the stop side of those before it ran),
                or, when the body raised nothing, a stop hook failed.
        """
        exits: list[tuple[Callable[[], Awaitable[Any]], str]] = []
        failed: BaseException | None = None
        try:
            for kind, fn in self.hooks:
                if kind == "shutdown":
                    exits.append((fn, f"shutdown hook {qualified(fn)}"))
                    continue
                what = f"{'lifespan' if kind == 'lifespan' else 'startup hook'} {qualified(fn)}"
                try:
                    if kind == "startup":
                        await fn()
                        continue
                    manager = _manager(fn)
                    got = await manager.__aenter__()
                    exits.append((functools.partial(manager.__aexit__, None, None, None), what))
                    _merge(resources, got, what)
                except Exception as exc:
                    raise LifespanError(f"{what} failed at start: {exc!r}") from exc
            yield
        except BaseException as exc:
            failed = exc
            raise
        finally:
            errors = await _run_exits(exits)
            if errors and failed is None:
                hook, error = errors[0]
                raise LifespanError(f"{hook} failed at stop: {error!r}") from error


def _manager(fn: Callable[..., Any]) -> AbstractAsyncContextManager[Any]:
    """The async context manager of a lifespan: its generator's, or what it returns.

    Raises:
        TypeError: it gives no async context manager.
    """
    if inspect.isasyncgenfunction(fn):
        return asynccontextmanager(fn)()
    manager = fn()
    if not (hasattr(manager, "__aenter__") and hasattr(manager, "__aexit__")):
        raise TypeError(
            f"a lifespan must yield once, or return an async context manager: got {manager!r}"
        )
    return manager  # type: ignore[no-any-return]


def _merge(resources: dict[str, Any], got: Any, what: str) -> None:
    """Add what a lifespan yielded to ``resources``.

    Raises:
        TypeError: it is neither a mapping nor None.
    """
    if got is None:
        return
    if not isinstance(got, Mapping):
        raise TypeError(f"{what} yielded {got!r}: yield a mapping of resources, or None")
    resources.update(got)


async def _run_exits(
    exits: list[tuple[Callable[[], Awaitable[Any]], str]],
) -> list[tuple[str, Exception]]:
    """Run the stop side of the hooks that started, last first; the failures."""
    errors: list[tuple[str, Exception]] = []
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + SHUTDOWN_HOOKS_TIMEOUT
        for close, what in reversed(exits):
            try:
                await close()
            except Exception as exc:
                logger.error("%s failed at stop: %r", what, exc, exc_info=exc)
                errors.append((what, exc))
    if scope.cancelled_caught:
        logger.error("the shutdown hooks did not finish within %.0f s", SHUTDOWN_HOOKS_TIMEOUT)
    return errors
