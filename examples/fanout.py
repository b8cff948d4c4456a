"""Pub/Sub fan-out: every subscriber (and every instance) sees every message.

python examples/fanout.py
"""

import attrs
import trio

from actors import ActorContext, ActorSystem

system = ActorSystem()


@attrs.frozen
class PriceTick:
    symbol: str
    price: float


seen: list[str] = []
enough = trio.Event()


def _record(line: str) -> None:
    seen.append(line)
    if len(seen) == 6:  # 2 ticks x (2 dashboard instances + 1 auditor)
        enough.set()


@system.actor(channel="prices", instances=2)
async def dashboard(tick: PriceTick, context: ActorContext) -> None:
    _record(f"{context.path} shows {tick.symbol} at {tick.price}")


@system.actor(pattern="pri*")
async def auditor(tick: PriceTick, context: ActorContext) -> None:
    _record(f"{context.path} logs {tick.symbol} from {context.message.channel}")


async def demo() -> None:
    async with system:
        await system.tell("pubsub:prices", PriceTick("ACME", 12.5))
        await system.tell("pubsub:prices", PriceTick("INIT", 3.0))
        with trio.fail_after(5):
            await enough.wait()
    for line in sorted(seen):
        print(line)


if __name__ == "__main__":
    trio.run(demo)
