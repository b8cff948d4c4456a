"""Children started and stopped at run time: a Pool (OTP's simple_one_for_one) and
start_child / stop_child on a running supervisor.

python -m actors run examples/spawn.py     # serve (an empty pool: spawn from your code)
python examples/spawn.py                   # demo: spawn two crawlers, stop one, add a reporter
"""

import trio

from actors import Actor, ActorSystem, Pool, Supervisor, list_mailbox

system = ActorSystem()


class Crawler(Actor):
    mailbox = list_mailbox("crawl")

    def __init__(self, region: str) -> None:
        self.region = region

    async def receive(self, url: str) -> str:
        return f"{self.region} crawled {url}"


class Reporter(Actor):
    mailbox = list_mailbox("report")

    async def receive(self, what: str) -> str:
        return f"report on {what} by {self.context.path}"


crawlers = Pool(Crawler, name="crawlers", max_restarts=5, within=10.0)
system.supervise(Supervisor([crawlers], name="root"))


def show(system: ActorSystem) -> None:
    for child in system.tree().children:
        names = ", ".join(c.name for c in child.children)
        print(f"{child.name}: [{names}]" if child.kind == "supervisor" else child.name)


async def demo() -> None:
    async with system:
        await system.redis.delete("crawl", "report")
        for region in ("eu", "us"):
            name = await crawlers.spawn(args=(region,))  # each instance its own arguments
            print(f"spawned {name} ({region})")
        show(system)
        await crawlers.stop_child("crawler-0")
        print("stopped crawler-0")
        print(await system.ask("crawl", "example.org", reply_type=str))
        # Any running supervisor takes new children: found by name in the tree.
        await system.supervisor("root").start_child(Reporter.spec())
        print(await system.ask("report", "crawls", reply_type=str))
        show(system)


if __name__ == "__main__":
    trio.run(demo)
