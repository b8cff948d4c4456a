"""The rendezvous of one ``ask``: the reply reader delivers, the asking task waits."""

from __future__ import annotations

import outcome
import trio

from ._codec import Envelope

__all__ = ["ReplyWaiter"]


class ReplyWaiter:
    """One ask's reply slot: delivered at most once, awaited by one task.

    A parked task instead of a memory channel: every ask makes one, and a channel's
    pair of objects and statistics cost more than the rest of the bookkeeping.
    """

    __slots__ = ("_task", "reply")

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None
        #: The reply, once delivered.
        self.reply: Envelope | None = None

    def deliver(self, reply: Envelope) -> bool:
        """Hand ``reply`` over (waking the waiting task); False when one came already."""
        if self.reply is not None:
            return False
        self.reply = reply
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task, outcome.Value(None))
        return True

    async def wait(self) -> Envelope:
        """Wait until a reply is delivered and return it.

        Raises:
            trio.Cancelled: the surrounding cancel scope (the ask's timeout) expired.
        """
        if self.reply is None:
            if self._task is not None:
                raise RuntimeError("a ReplyWaiter has one waiter at a time")
            self._task = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        assert self.reply is not None
        return self.reply

    def _abort(self, _: object) -> trio.lowlevel.Abort:
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED
