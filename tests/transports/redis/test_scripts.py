"""The Lua scripts and their typed wrappers (issue 15): every ``KEYS[n]`` and ``ARGV[n]``
a script reads, its wrapper passes.

The class of bug this catches: a wrapper (or, before them, a call site) that passes
fewer arguments than its script reads (the batch-renewal bug); Lua reads a missing
one as ``nil`` and goes on. Each wrapper runs here with the fewest arguments it can
pass (empty sequences), against a client that records the command and stops.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import pytest

from transports.redis import scripts as _scripts, timing_scripts as _timing_scripts
from transports.redis.keys import Keys
from transports.redis.list import scripts as _list_scripts
from transports.redis.list.scripts import ListAck
from transports.redis.scripts import Script
from transports.redis.stream import scripts as _stream_scripts

KEYS = Keys("jobs")
NO_ACK = ListAck("")

SCRIPTS: dict[str, Script] = {
    value.name: value
    for module in (_scripts, _timing_scripts, _list_scripts, _stream_scripts)
    for value in vars(module).values()
    if isinstance(value, Script)
}


class Sent(Exception):
    """The recording client stops every command here."""


class Recorder:
    """A client that records the ``EVALSHA`` a wrapper sends, and fails it."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    async def execute_command(self, *command: Any, **options: Any) -> Any:
        self.sent.append(command)
        raise Sent

    async def run_script(self, script: Script, keys: Any, args: Any) -> Any:
        return await self.execute_command(*script.command(keys, args))


CALLS: dict[str, Callable[[Any], Awaitable[object]]] = {
    "list_take": lambda c: _list_scripts.list_take(
        c,
        KEYS,
        consumer="w",
        count=1,
        durable=True,
        lease_ms=1000,
        maintain=True,
        leftovers="0",
        ack=NO_ACK,
        lookup=(),
    ),
    "list_heartbeat": lambda c: _list_scripts.list_heartbeat(c, KEYS, consumer="w"),
    "list_close": lambda c: _list_scripts.list_close(c, KEYS, consumer="w", held=()),
    "list_retry": lambda c: _list_scripts.list_retry(
        c, KEYS, consumer="w", token="t", delay_ms=0, payload=b"p", held=True
    ),
    "list_fail": lambda c: _list_scripts.list_fail(c, KEYS, consumer="w", held=True, failures=()),
    "list_ack": lambda c: _list_scripts.list_ack(c, KEYS, consumer="w", ack=NO_ACK),
    "list_release": lambda c: _list_scripts.list_release(c, KEYS, consumer="w", payloads=()),
    "fail": lambda c: _scripts.fail(
        c, KEYS, kind="list", consumer="w", group="", maxlen=None, held=True, attempts=()
    ),
    "record_failure": lambda c: _scripts.record_failure(c, KEYS, field="f", attempt=1),
    "dead_letter": lambda c: _scripts.dead_letter(
        c, KEYS, kind="list", consumer="w", group="", maxlen=None, held=False, letters=()
    ),
    "stream_retry": lambda c: _stream_scripts.stream_retry(
        c, KEYS, group="g", delay_ms=0, entry_ids=()
    ),
    "stream_fail": lambda c: _stream_scripts.stream_fail(c, KEYS, group="g", failures=()),
    "stream_take": lambda c: _stream_scripts.stream_take(
        c,
        KEYS,
        group="g",
        consumer="w",
        count=1,
        history="",
        claim=False,
        lease_ms=1000,
        claim_cursor="0-0",
        read_new=True,
        claim_count=100,
    ),
    "stream_renew": lambda c: _stream_scripts.stream_renew(
        c, KEYS, group="g", consumer="w", entry_ids=()
    ),
    "replay": lambda c: _scripts.replay(c, KEYS, kind="list", maxlen=None, letter_ids=()),
    "stats": lambda c: _scripts.stats(c, KEYS, kind="list", group="g"),
    "announce": lambda c: _scripts.announce(
        c, node="n", value="", ttl_ms=1, instance="i", replacing=None
    ),
    "nodes": lambda c: _scripts.live_nodes(c),
    "lease_partitions": lambda c: _timing_scripts.lease_partitions(
        c, group="g", owner="o", partitions=1, ttl_ms=1, leave=False, keep=()
    ),
    "schedule": lambda c: _timing_scripts.schedule(c, KEYS, delay_ms=1, token="t", payloads=()),
    "schedule_index": lambda c: _timing_scripts.schedule_index(c, record="list - - jobs", due_ms=1),
    "scheduled_due": lambda c: _timing_scripts.scheduled_due(c, most=1),
    "promote": lambda c: _timing_scripts.promote(
        c, KEYS, kind="list", maxlen=None, expire_ms=None, most=1
    ),
    "advance_mark": lambda c: _timing_scripts.advance_mark(c, name="s", due_ms=1),
    "scheduled_settle": lambda c: _timing_scripts.scheduled_settle(
        c, record="list - - jobs", mark=b"", next_due_ms=-1
    ),
}


def lua(name: str) -> str:
    return resources.files("transports.redis").joinpath("lua", f"{name}.lua").read_text()


def lua_files() -> set[str]:
    folder = resources.files("transports.redis").joinpath("lua")
    return {entry.name.removesuffix(".lua") for entry in folder.iterdir()} - {"prelude"}


def most_read(source: str, array: str) -> int:
    """The highest literal index of ``array`` (``KEYS`` or ``ARGV``) that ``source`` reads."""
    return max((int(n) for n in re.findall(rf"\b{array}\[(\d+)\]", source)), default=0)


def arguments_needed(source: str) -> int:
    """How many ARGV ``source`` needs: its literal indexes, and those of ``ack_batch``
    (lua/prelude.lua), which reads 5 from the index it is given."""
    starts = [int(n) for n in re.findall(r"\back_batch\([^()]*,\s*(\d+)\)", source)]
    return max([most_read(source, "ARGV"), *(start + 4 for start in starts)])


def split(command: tuple[Any, ...]) -> tuple[str, int, int]:
    """The script's SHA1, and how many keys and arguments ``command`` (EVALSHA) passes."""
    verb, sha, count, *rest = command
    assert verb == b"EVALSHA"
    return sha, count, len(rest) - count


def test_every_lua_file_is_a_script_checked_here() -> None:
    assert set(SCRIPTS) == lua_files() == set(CALLS)


def test_the_prelude_reads_no_literal_key_or_argument() -> None:
    """Its functions take indexes from the script (``arguments_needed`` knows
    ``ack_batch``'s); one reading ``ARGV[3]`` itself would escape this check."""
    prelude = lua("prelude")
    assert most_read(prelude, "KEYS") == most_read(prelude, "ARGV") == 0


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_the_wrapper_passes_every_key_and_argument_its_script_reads(name: str) -> None:
    client = Recorder()
    with pytest.raises(Sent):
        await CALLS[name](client)
    [command] = client.sent
    sha, keys, args = split(command)
    assert sha == SCRIPTS[name].sha
    source = lua(name)
    assert keys >= most_read(source, "KEYS")
    assert args >= arguments_needed(source)


def test_the_pipelined_list_ack_passes_what_the_script_reads() -> None:
    command = _list_scripts.list_ack_command(KEYS, consumer="w", ack=NO_ACK)
    sha, keys, args = split(command)
    assert sha == _list_scripts.LIST_ACK.sha
    assert keys >= most_read(lua("list_ack"), "KEYS")
    assert args >= arguments_needed(lua("list_ack"))


def test_arguments_needed_counts_literal_indexes_and_ack_batch() -> None:
    assert arguments_needed("local a = ARGV[3] .. KEYS[9]") == 3
    assert arguments_needed("local acked = ack_batch(KEYS[1], KEYS[2], KEYS[3], ARGV[1], 2)") == 6
