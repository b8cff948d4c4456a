"""A stateful actor on a stream mailbox, answering `ask`: a bank ledger.

python -m actors run examples/bank.py     # serve
python examples/bank.py                   # demo: deposits, then a balance query
"""

import attrs
import trio

from actors import Actor, ActorSystem, Supervisor, handler, stream_mailbox

system = ActorSystem()


@attrs.frozen
class Deposit:
    account: str
    amount: int


@attrs.frozen
class GetBalance:
    account: str


@attrs.frozen
class Balance:
    account: str
    total: int


class Ledger(Actor):
    mailbox = stream_mailbox("ledger", group="ledger")

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}

    async def on_start(self) -> None:
        # State lives in Redis, so a restarted ledger picks up where it was.
        raw = await self.context.redis.hgetall("ledger:totals")
        self.totals = {k.decode(): int(v) for k, v in raw.items()}

    @handler
    async def deposit(self, msg: Deposit) -> Balance:
        total = await self.context.redis.hincrby("ledger:totals", msg.account, msg.amount)
        self.totals[msg.account] = total
        return Balance(msg.account, total)

    @handler
    async def balance(self, msg: GetBalance) -> Balance:
        return Balance(msg.account, self.totals.get(msg.account, 0))


system.supervise(Supervisor([Ledger.spec()], name="bank", max_restarts=3, within=5.0))


async def demo() -> None:
    async with system:
        await system.redis.delete("ledger:totals")
        for amount in (10, 20, 12):
            await system.tell("ledger", Deposit("alice", amount))
        reply = await system.ask("ledger", Deposit("bob", 5), timeout=5.0)
        print(f"ask(Deposit('bob', 5)) -> {reply}")
        balance = await system.ask(Ledger, GetBalance("alice"), timeout=5.0)
        print(f"ask(GetBalance('alice')) -> {balance}")


if __name__ == "__main__":
    trio.run(demo)
