"""ReplyWaiter: the rendezvous of one ask and the task that reads replies."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors._codec import Envelope, decode, encode
from actors._waiter import ReplyWaiter


def _reply(body: object) -> Envelope:
    return decode(encode(body, correlation_id="c1"))


async def test_a_reply_delivered_before_the_wait_is_returned_at_once() -> None:
    waiter = ReplyWaiter()
    reply = _reply(1)
    assert waiter.deliver(reply)
    assert await waiter.wait() is reply


async def test_a_waiting_task_is_woken_by_the_delivery() -> None:
    waiter = ReplyWaiter()
    reply = _reply("late")
    got: list[Envelope] = []

    async def wait() -> None:
        got.append(await waiter.wait())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        assert waiter.deliver(reply)
    assert got == [reply]


async def test_a_second_delivery_is_refused_and_the_first_kept() -> None:
    waiter = ReplyWaiter()
    first, second = _reply(1), _reply(2)
    assert waiter.deliver(first)
    assert not waiter.deliver(second)
    assert await waiter.wait() is first


async def test_a_cancelled_wait_leaves_the_waiter_deliverable() -> None:
    waiter = ReplyWaiter()
    with trio.move_on_after(0.01) as scope:
        await waiter.wait()
    assert scope.cancelled_caught
    assert waiter.deliver(_reply(3))  # no task to wake: must not reschedule a gone task
    assert (await waiter.wait()).body == 3


async def test_a_cancelled_wait_raises_cancelled_even_when_the_reply_came() -> None:
    waiter = ReplyWaiter()
    waiter.deliver(_reply(4))
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await waiter.wait()
