"""The seed example: a subscriber on `in-channel` publishes "Received: <msg>" to `out-channel`.

Run the actors as a service:   python -m actors run examples/basic.py
Or this demo, which also sends a message and prints what comes out:   python examples/basic.py
"""

import trio

from actors import ActorSystem

system = ActorSystem()  # $ACTORS_URL, else redis://localhost:6379


@system.actor(channel="in-channel")
@system.publisher(channel="out-channel")
async def echo(msg: str) -> str:
    return f"Received: {msg}"


received = trio.Event()


@system.actor(channel="out-channel")
async def show(msg: str) -> None:
    print(msg)
    received.set()


async def demo() -> None:
    async with system:
        await system.tell("in-channel", "Hello, Redis!")
        with trio.fail_after(5):
            await received.wait()


if __name__ == "__main__":
    trio.run(demo)
