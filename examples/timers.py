"""Time: a delayed message kept in Redis, an actor's own timer, and a periodic schedule.

python -m actors run examples/timers.py   # serve (the schedule fires once per due time
                                          # however many --workers run it)
python examples/timers.py                 # demo: a reminder, three heartbeats, reports
"""

import attrs
import trio

from actors import Actor, ActorSystem, Supervisor, handler, list_mailbox

system = ActorSystem()
reported_twice = trio.Event()  # the demo waits for two reports


@attrs.frozen
class Remind:
    text: str


@attrs.frozen
class Beat:
    pass


@attrs.frozen
class Report:
    pass


class Clock(Actor):
    mailbox = list_mailbox("clock")

    def __init__(self) -> None:
        self.beats = 0

    async def on_start(self) -> None:
        # Timers live in this instance: started here, a restarted instance has it once.
        self.start_timer("heartbeat", 0.2, Beat())

    @handler
    async def beat(self, msg: Beat) -> None:
        self.beats += 1
        print(f"heartbeat {self.beats}")
        if self.beats == 3:
            self.cancel_timer("heartbeat")

    @handler
    async def remind(self, msg: Remind) -> None:
        print(f"reminder: {msg.text}")

    @handler
    async def report(self, msg: Report) -> None:
        due = int(self.context.message.headers["actors-due"])
        await self.context.redis.sadd("timers:reports", due)
        if await self.context.redis.scard("timers:reports") >= 2:
            reported_twice.set()


system.supervise(Supervisor([Clock.spec()]))
# Every half second, once per due time across every process running this system.
system.schedule(Clock, Report(), every=0.5, name="timers-example-report")


async def demo() -> None:
    async with system:
        await system.redis.delete("timers:reports")
        # Held in Redis until due: it would survive a restart of everything meanwhile.
        await system.tell(Clock, Remind("stretch your legs"), delay=0.5)
        with trio.fail_after(10):
            await reported_twice.wait()
        await trio.sleep(0.6)  # the reminder and the last heartbeats
        print("reports arrive, one per due time")


if __name__ == "__main__":
    trio.run(demo)
