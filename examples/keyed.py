"""Keyed (virtual) actors: one bank account per key, activated on its first message,
passivated when idle, handled by one activation at a time across every process.

python -m actors run examples/keyed.py --workers 4   # serve: accounts spread over workers
python examples/keyed.py                             # demo: deposits, withdrawals, balances
"""

import attrs
import trio

from actors import ActorSystem, KeyedActor, Reject, handler

system = ActorSystem()


@attrs.frozen
class Deposit:
    account: str
    amount: int


@attrs.frozen
class Withdraw:
    account: str
    amount: int


@attrs.frozen
class GetBalance:
    account: str


class Account(KeyedActor):
    partitions = 16  # the units of work spread over instances and worker processes
    idle_timeout = 60.0  # passivate an account a minute after its last message

    async def on_start(self) -> None:
        # self.key is this activation's account; its state lives in Redis.
        raw = await self.context.redis.hget("bank:balances", self.key)
        self.balance = int(raw or 0)

    @classmethod
    def key_of(cls, msg: Deposit | Withdraw | GetBalance) -> str:
        return msg.account

    @handler
    async def deposit(self, msg: Deposit) -> int:
        self.balance = await self.context.redis.hincrby("bank:balances", self.key, msg.amount)
        return self.balance

    @handler
    async def withdraw(self, msg: Withdraw) -> int:
        # Safe without a lock: one activation per key handles one message at a time.
        if msg.amount > self.balance:
            raise Reject(f"{self.key} has {self.balance}, cannot withdraw {msg.amount}")
        self.balance = await self.context.redis.hincrby("bank:balances", self.key, -msg.amount)
        return self.balance

    @handler
    async def get(self, msg: GetBalance) -> int:
        return self.balance


system.actor(Account, instances=4)


async def demo() -> None:
    async with system:
        await system.redis.delete("bank:balances")
        for name in ("alice", "bob", "carol"):
            await system.tell_many(Account, [Deposit(name, n) for n in range(1, 11)])
        await system.tell(Account, Withdraw("ignored", 1), key="bob")  # key= overrides key_of
        for name in ("alice", "bob", "carol"):
            print(f"{name}: {await system.ask(Account, GetBalance(name), timeout=5.0)}")
        try:
            await system.ask(Account, Withdraw("alice", 100), timeout=5.0)
        except Exception as exc:
            print(f"withdraw 100 from alice: {type(exc).__name__}")


if __name__ == "__main__":
    trio.run(demo)
