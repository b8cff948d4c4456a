"""A two-hop pipeline: `parse` turns raw lines into orders, `price` totals them.

python examples/pipeline.py
"""

import attrs
import trio

from actors import ActorSystem

system = ActorSystem()


@attrs.frozen
class Order:
    item: str
    quantity: int


@attrs.frozen
class Priced:
    item: str
    total: float


PRICES = {"apple": 0.5, "pear": 0.75}


@system.actor(list="raw-orders")
@system.publisher(stream="orders")
async def parse(line: str) -> Order:
    item, quantity = line.split()
    return Order(item, int(quantity))


@system.actor(stream="orders")
@system.publisher(list="priced")
async def price(order: Order) -> Priced:
    return Priced(order.item, PRICES[order.item] * order.quantity)


priced: list[Priced] = []
finished = trio.Event()


@system.actor(list="priced")
async def report(p: Priced) -> None:
    priced.append(p)
    if len(priced) == 3:
        finished.set()


async def demo() -> None:
    async with system:
        await system.tell_many("raw-orders", ["apple 4", "pear 2", "apple 10"])
        with trio.fail_after(5):
            await finished.wait()
    for p in priced:
        print(f"{p.item}: {p.total:.2f}")


if __name__ == "__main__":
    trio.run(demo)
