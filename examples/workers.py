"""A worker pool: 4 instances share one list mailbox; each job is handled once.

python examples/workers.py
"""

import attrs
import trio

from actors import ActorContext, ActorSystem

system = ActorSystem()


@attrs.frozen
class Job:
    number: int


@attrs.frozen
class Done:
    number: int
    square: int
    worker: str


@system.actor(list="jobs", instances=4, batch_size=1)  # slow jobs: spread them
@system.publisher(list="results")
async def work(job: Job, context: ActorContext) -> Done:
    await trio.sleep(0.01)  # pretend to work
    return Done(job.number, job.number**2, context.path)


results: list[Done] = []
all_done = trio.Event()


@system.actor(list="results")
async def collect(done: Done) -> None:
    results.append(done)
    if len(results) == 20:
        all_done.set()


async def demo() -> None:
    async with system:
        await system.tell_many("jobs", [Job(n) for n in range(20)])
        with trio.fail_after(10):
            await all_done.wait()
    workers = sorted({r.worker for r in results})
    total = sum(r.square for r in results)
    print(f"20 jobs done by {len(workers)} workers ({', '.join(workers)}); sum of squares {total}")


if __name__ == "__main__":
    trio.run(demo)
