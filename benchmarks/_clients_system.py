"""The system ``bench_clients.py`` runs with ``python -m actors run``: an actor that
answers each ``Job`` with its id (the asks)."""

from __future__ import annotations

import attrs

from actors import Actor, ActorSystem, list_mailbox

system = ActorSystem()


@attrs.frozen
class Job:
    """``_common.Job`` (same name, so the same type tag on the wire)."""

    id: int
    name: str
    payload: str


@system.actor
class Answer(Actor):
    mailbox = list_mailbox("bench-clients.answer")

    async def receive(self, msg: Job) -> int:
        return msg.id
