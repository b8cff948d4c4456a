"""What a Redis transport shares with its consumers: the client, whether the transport is
closed, the consumers open on it, and the nursery their background tasks run in."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol

import trio

from .client import Redis

__all__ = ["Abortable", "ConsumerHost"]

logger = logging.getLogger("transports.redis")


class Abortable(Protocol):
    """A consumer as its host sees it: something to close at once when the transport closes."""

    async def _abort(self) -> None: ...


class ConsumerHost:
    """The transport's side of its consumers (they know their transport only through
    this, so that they need not import it).

    Background tasks (lease renewal, heartbeats) run in one nursery the host owns:
    opened by the transport's ``async with`` (:meth:`open`), or, for a transport
    used without one, by a trio system task started with the first background task.
    Either way the nursery ends when the transport closes. A task must not raise
    (the nursery would cancel its siblings): the consumer's keep-alive catches
    what kills it and fails its consumer instead.
    """

    __slots__ = (
        "_exit",
        "_host_scope",
        "_nursery",
        "_pending",
        "_scopes",
        "client",
        "closed",
        "consumers",
    )

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.closed = False
        self.consumers: set[Abortable] = set()
        self._nursery: trio.Nursery | None = None
        self._scopes: set[trio.CancelScope] = set()  # one per running task
        self._host_scope: trio.CancelScope | None = None  # of the system task's nursery
        self._exit: AsyncExitStack | None = None
        self._pending: list[tuple[Callable[..., Awaitable[object]], tuple[Any, ...], str]] = []

    async def open(self) -> None:
        """Open the nursery in the calling task (the transport's ``async with``); the
        matching :meth:`close` must run in the same task. A no-op when background
        tasks run already (in a system task's nursery, the transport being used
        before its ``async with``).

        Raises:
            RuntimeError: the transport's ``async with`` was entered already.
        """
        if self._exit is not None:
            raise RuntimeError("the transport's async with was entered already")
        if self._nursery is not None or self._pending:
            await trio.lowlevel.checkpoint()
            return
        stack = AsyncExitStack()
        nursery = await stack.enter_async_context(trio.open_nursery())
        self._exit = stack
        self._adopt(nursery)

    async def abort(self) -> None:
        """The transport closes: cancel the background tasks and close every consumer
        open on it at once (their blocked calls raise ``ClosedError``)."""
        self.cancel()
        consumers, self.consumers = self.consumers, set()
        for consumer in consumers:
            await consumer._abort()
        await trio.lowlevel.checkpoint()

    def cancel(self) -> None:
        """Cancel the background tasks (the transport closes); idempotent.

        Each task has a scope of its own: the nursery's scope would also cancel the
        body of the transport's ``async with``, which is not ours to cancel.
        """
        self.closed = True
        for scope in self._scopes:
            scope.cancel()
        if self._host_scope is not None:
            self._host_scope.cancel()

    async def close(self) -> None:
        """Cancel the background tasks and, when :meth:`open` opened the nursery, leave
        it (waiting for them to finish); idempotent."""
        self.cancel()
        stack, self._exit = self._exit, None
        if stack is not None:
            await stack.aclose()
        else:
            await trio.lowlevel.checkpoint()

    def start_soon(self, task: Callable[..., Awaitable[object]], *args: Any, name: str) -> None:
        """Run ``task(*args)`` in the nursery (starting a system task to host it when the
        transport was not entered with ``async with``)."""
        if self._nursery is not None:
            self._nursery.start_soon(self._run, task, args, name=name)
            return
        first = not self._pending
        self._pending.append((task, args, name))
        if first:
            trio.lowlevel.spawn_system_task(self._host, name=f"{self.client.url} consumers")

    async def _run(self, task: Callable[..., Awaitable[object]], args: tuple[Any, ...]) -> None:
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        scope = trio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                await task(*args)
        finally:
            self._scopes.discard(scope)

    async def _host(self) -> None:
        async with trio.open_nursery() as nursery:
            self._host_scope = nursery.cancel_scope
            if self.closed:
                nursery.cancel_scope.cancel()
            self._adopt(nursery)
            await trio.sleep_forever()

    def _adopt(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        pending, self._pending = self._pending, []
        for task, args, name in pending:
            nursery.start_soon(self._run, task, args, name=name)
