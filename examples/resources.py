"""Constructor arguments and shared resources: a lifespan opens what the actors share.

python -m actors run examples/resources.py     # serve (the hooks run in every --workers process)
python examples/resources.py                   # demo: two price lists built from one table
"""

from collections.abc import AsyncIterator
from typing import Any

import trio

from actors import Actor, ActorContext, ActorSystem, Supervisor, list_mailbox

system = ActorSystem()


class PriceTable:
    """Stands in for a connection pool or a client: opened once per process."""

    def __init__(self) -> None:
        self.prices = {"apple": 2.0, "pear": 1.5}
        self.open = True

    def price(self, item: str) -> float:
        assert self.open, "the table was closed"
        return self.prices[item]


@system.lifespan
async def tables() -> AsyncIterator[dict[str, Any]]:
    table = PriceTable()
    print("price table opened")
    try:
        yield {"prices": table}  # what actors see as self.context.resources
    finally:
        table.open = False
        print("price table closed")


@system.on_startup
async def announce() -> None:
    # A startup hook may add resources of its own.
    system.resources["currency"] = "EUR"


class Quoter(Actor):
    mailbox = list_mailbox("quotes")

    def __init__(self, table: PriceTable, discount: float) -> None:
        self.table = table
        self.discount = discount

    async def receive(self, item: str) -> str:
        price = self.table.price(item) * (1 - self.discount)
        return f"{item}: {price:.2f} {self.context.resources['currency']}"


class Retail(Actor):
    mailbox = list_mailbox("retail")

    def __init__(self, *, margin: float) -> None:  # from Retail.spec(kwargs=...)
        self.margin = margin

    async def on_start(self) -> None:
        self.table: PriceTable = self.context.resources["prices"]

    async def receive(self, item: str) -> str:
        return f"{item}: {self.table.price(item) * (1 + self.margin):.2f}"


def quoter(context: ActorContext) -> Quoter:
    # A factory sees the instance's context, so it can hand resources to __init__.
    return Quoter(context.resources["prices"], discount=0.1)


system.supervise(Supervisor([Quoter.spec(factory=quoter), Retail.spec(kwargs={"margin": 0.5})]))


async def demo() -> None:
    async with system:
        for box in ("quotes", "retail"):
            for item in ("apple", "pear"):
                print(f"{box} {await system.ask(box, item, reply_type=str)}")


if __name__ == "__main__":
    trio.run(demo)
