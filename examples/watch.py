"""Death watch: an actor monitors others and handles a Down message when one stops.

python -m actors run examples/watch.py     # serve
python examples/watch.py                   # demo: a crash, a stop, a target that never ran
"""

import trio

from actors import Actor, ActorSystem, Down, Supervisor, handler, list_mailbox

system = ActorSystem()


class Worker(Actor):
    mailbox = list_mailbox("jobs")
    on_error = {ValueError: "restart", RuntimeError: "stop"}

    async def receive(self, job: str) -> None:
        if job == "bad input":
            raise ValueError(job)  # restarted: not a death
        if job == "fatal":
            raise RuntimeError(job)  # stopped for good: a death


class Janitor(Actor):
    mailbox = list_mailbox("janitor")

    async def on_start(self) -> None:
        await self.monitor("worker-0")
        await self.monitor("auditor")  # not running: Down "noproc" at once

    @handler
    async def down(self, msg: Down) -> None:
        print(f"down: {msg.who}: {msg.reason}")


system.supervise(Supervisor([Worker.spec(), Janitor.spec()], name="root", max_restarts=10))


async def demo() -> None:
    async with system:
        await system.redis.delete("jobs")
        await system.tell("jobs", "bad input")
        await system.tell("jobs", "fatal")
        await trio.sleep(1.0)  # the Downs are handled meanwhile


if __name__ == "__main__":
    trio.run(demo)
