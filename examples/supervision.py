"""A supervision tree that survives a crashing actor.

`Thumbnailer` crashes on a corrupt image (its `on_error` says a ValueError calls for a
restart; by default a failed message is retried and the instance goes on); its
supervisor restarts it at once, the message comes back to the fresh instance, and
after `max_deliveries` it goes to the dead letters. Its sibling `Counter` and the
messages behind the poison one keep flowing.

    python -m actors run examples/supervision.py    # serve
    python examples/supervision.py                  # demo
"""

import attrs
import trio

from actors import Actor, ActorSystem, Backoff, Supervisor, list_mailbox, stream_mailbox

system = ActorSystem()


@attrs.frozen
class Image:
    name: str
    corrupt: bool = False


class Thumbnailer(Actor):
    mailbox = stream_mailbox("images")
    max_deliveries = 3
    # A decoder that failed may be left in a bad state: start afresh.
    on_error = {ValueError: "restart"}

    async def receive(self, image: Image) -> str:
        if image.corrupt:
            raise ValueError(f"cannot decode {image.name}")
        await self.tell("count", image.name)
        return f"thumb-{image.name}"


class Counter(Actor):
    mailbox = list_mailbox("count")

    def __init__(self) -> None:
        self.count = 0

    async def receive(self, name: str) -> None:
        self.count += 1
        print(f"{self.context.path}: thumbnail #{self.count} made for {name}")
        if self.count == 3:
            all_done.set()


all_done = trio.Event()

system.supervise(
    Supervisor(
        [
            Counter.spec(),
            Supervisor(
                [Thumbnailer.spec(instances=2)],
                name="media",
                strategy="one_for_one",
                max_restarts=5,
                within=10.0,
                backoff=Backoff(min=0.05, max=1.0),
            ),
        ],
        name="root",
        strategy="rest_for_one",
    )
)


async def demo() -> None:
    async with system:
        await system.redis.delete("images", "{images}:dead", "{images}:failures")
        images = [Image("a.png"), Image("bad.png", corrupt=True), Image("b.png"), Image("c.png")]
        await system.tell_many(Thumbnailer, images)
        with trio.fail_after(10):
            await all_done.wait()
            while not await system.dead_letters(Thumbnailer):  # noqa: ASYNC110  # in Redis
                await trio.sleep(0.05)
        for letter in await system.dead_letters(Thumbnailer):
            print(
                f"dead letter: {letter.failure.error_type}: {letter.failure.error} "
                f"after {letter.attempts} attempts"
            )
        print(_render(system.tree()))


def _render(node: object, depth: int = 0) -> str:
    from actors import ChildInfo

    assert isinstance(node, ChildInfo)
    line = f"{'  ' * depth}{node.name} [{node.kind}, {node.state.value}]"
    if node.kind == "worker":
        line += f" restarts={node.restarts}"
    return "\n".join([line, *(_render(c, depth + 1) for c in node.children)])


if __name__ == "__main__":
    trio.run(demo)
