"""The activations of one partition of a keyed actor: key -> live instance, made on
the first message for the key, passivated when idle, when too many, or at the end."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from ._context import ActorContext

if TYPE_CHECKING:
    from ._actor import Actor
    from ._keyed import KeyedActor

__all__ = ["Activations"]

logger = logging.getLogger("actors.actor")


class Activations:
    """The live activations of one partition of ``cls``, least recently used first.

    One task handles the partition's messages (:meth:`get`, with :attr:`busy` set
    to the key being handled); :meth:`sweep` passivates idle ones beside it, never
    the busy one. A key being passivated is not activated again before its
    ``on_stop`` returned: one activation per key at a time.
    """

    def __init__(
        self,
        cls: type[KeyedActor],
        context_for: Callable[[str], ActorContext],
        build: Callable[[ActorContext], Actor],
    ) -> None:
        self.cls = cls
        self._context_for = context_for
        self._build = build
        self._live: OrderedDict[str, KeyedActor] = OrderedDict()
        self._used: dict[str, float] = {}
        self._passivating: dict[str, trio.Event] = {}
        #: The key whose message is being handled.
        self.busy: str | None = None

    def __len__(self) -> int:
        return len(self._live)

    async def get(self, key: str) -> KeyedActor:
        """The activation of ``key``, activated (``on_start``) if it is not live; the
        least recently used is passivated first when ``max_activations`` are live.

        Raises:
            Exception: what ``on_start`` raised (the key stays inactive).
        """
        while (passivating := self._passivating.get(key)) is not None:
            await passivating.wait()
        actor = self._live.get(key)
        now = trio.current_time()
        if actor is not None:
            self._live.move_to_end(key)
            self._used[key] = now
            return actor
        while len(self._live) >= self.cls.max_activations:
            await self._passivate(next(iter(self._live)))
        context = self._context_for(key)
        built = self._build(context)
        assert isinstance(built, self.cls)  # the builder checks what a factory makes
        actor = built
        actor.key = key
        actor.context = context
        await actor.on_start()
        self._live[key] = actor
        self._used[key] = trio.current_time()
        return actor

    async def _passivate(self, key: str) -> None:
        """Take ``key``'s activation out and run its ``on_stop`` (an error is logged)."""
        actor = self._live.pop(key)
        del self._used[key]
        done = self._passivating[key] = trio.Event()
        try:
            await actor.on_stop()
        except Exception:
            logger.exception("%s: on_stop of key %r failed", actor.context.path, key)
        finally:
            del self._passivating[key]
            done.set()

    async def sweep(self) -> None:
        """Passivate activations idle for ``idle_timeout``, as they fall due, until
        cancelled."""
        idle = self.cls.idle_timeout
        while True:
            now = trio.current_time()
            due = now + idle
            while self._live:
                key = next(iter(self._live))
                if self._used[key] + idle > now:
                    due = self._used[key] + idle
                    break
                if key == self.busy:  # a handler longer than idle_timeout: in use
                    self._live.move_to_end(key)
                    self._used[key] = now
                    continue
                await self._passivate(key)
            await trio.sleep_until(due)

    async def passivate_all(self) -> None:
        """Passivate every activation (the partition stops), and wait for those the
        sweep is passivating."""
        while self._live:
            await self._passivate(next(iter(self._live)))
        for done in list(self._passivating.values()):
            await done.wait()
