"""Where a command goes in a Redis Cluster: the slot of its first key, any node, or all.

:func:`route` answers from a table for the commands the runtime and most programs
use (first key position, ``numkeys`` forms such as EVAL and LMPOP, ``STREAMS`` for
XREAD/XREADGROUP, subcommands such as ``XGROUP CREATE key``). Anything else is
looked up once in the server's own ``COMMAND`` table (:class:`CommandTable`), and
commands whose keys move (``movablekeys``) ask the server (``COMMAND GETKEYS``),
as redis-py's cluster client does.

Only the first key decides the node: when a command's keys span slots, the server
answers ``CROSSSLOT`` and the caller gets that error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.crc import key_slot

from transports._exceptions import ConfigurationError

__all__ = ["ALL_PRIMARIES", "ANY_NODE", "CommandTable", "route", "slot_of"]

ANY_NODE = -1
"""A keyless command any node may answer (PING, PUBLISH, INFO...)."""
ALL_PRIMARIES = -2
"""A command every primary must run (SCRIPT LOAD, FLUSHALL...); the first reply is returned."""
_UNKNOWN = -3  # ask the command table


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Commands whose first key is argument 1 (the common case, listed for speed).
_KEY_AT_1 = _words(
    """
    APPEND BITCOUNT BITFIELD BITPOS BLMOVE BLPOP BRPOP BRPOPLPUSH BZPOPMAX BZPOPMIN COPY
    DECR DECRBY DEL DUMP EXISTS EXPIRE EXPIREAT EXPIRETIME GEOADD GEODIST GEOHASH GEOPOS
    GEOSEARCH GEOSEARCHSTORE GET GETBIT GETDEL GETEX GETRANGE GETSET HDEL HEXISTS HGET
    HGETALL HINCRBY HINCRBYFLOAT HKEYS HLEN HMGET HMSET HRANDFIELD HSCAN HSET HSETNX
    HSTRLEN HVALS INCR INCRBY INCRBYFLOAT LINDEX LINSERT LLEN LMOVE LPOP LPOS LPUSH
    LPUSHX LRANGE LREM LSET LTRIM MGET MSET MSETNX PERSIST PEXPIRE PEXPIREAT PEXPIRETIME
    PFADD PFCOUNT PFMERGE PSETEX PTTL RENAME RENAMENX RESTORE RPOP RPOPLPUSH RPUSH RPUSHX
    SADD SCARD SDIFF SDIFFSTORE SET SETBIT SETEX SETNX SETRANGE SINTER SINTERSTORE
    SISMEMBER SMEMBERS SMISMEMBER SMOVE SORT SORT_RO SPOP SPUBLISH SRANDMEMBER SREM SSCAN
    STRLEN SUBSTR SUNION SUNIONSTORE TOUCH TTL TYPE UNLINK WATCH XACK XADD XAUTOCLAIM
    XCLAIM XDEL XLEN XPENDING XRANGE XREVRANGE XSETID XTRIM ZADD ZCARD ZCOUNT ZDIFFSTORE
    ZINCRBY ZINTERSTORE ZLEXCOUNT ZMSCORE ZPOPMAX ZPOPMIN ZRANDMEMBER ZRANGE ZRANGEBYLEX
    ZRANGEBYSCORE ZRANGESTORE ZRANK ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE
    ZREVRANGE ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE ZUNIONSTORE
    """
)
# Commands with a subcommand, whose first key is argument 2 (XGROUP CREATE key ...).
_KEY_AT_2 = frozenset({"XGROUP", "XINFO", "OBJECT", "MEMORY"})
# ``numkeys`` at this position, the first key right after it.
_NUMKEYS_AT = {
    "EVAL": 2,
    "EVALSHA": 2,
    "EVAL_RO": 2,
    "EVALSHA_RO": 2,
    "FCALL": 2,
    "FCALL_RO": 2,
    "LMPOP": 1,
    "ZMPOP": 1,
    "SINTERCARD": 1,
    "ZINTERCARD": 1,
    "ZUNION": 1,
    "ZINTER": 1,
    "ZDIFF": 1,
    "BLMPOP": 2,
    "BZMPOP": 2,
}
_STREAMS = frozenset({"XREAD", "XREADGROUP"})
_ALL = frozenset({"SCRIPT", "FLUSHALL", "FLUSHDB", "FUNCTION"})
_ANY = _words(
    """
    PING ECHO TIME INFO PUBLISH PUBSUB CLUSTER COMMAND CLIENT CONFIG ROLE LASTSAVE DBSIZE
    HELLO AUTH READONLY READWRITE LOLWUT RANDOMKEY MULTI EXEC DISCARD UNWATCH
    """
)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").upper()
    return str(value).upper()


def _encode(key: object) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, memoryview | bytearray):
        return bytes(key)
    return str(key).encode()


def slot_of(key: object) -> int:
    """The cluster slot of ``key`` (``str``, ``bytes`` or a number), hash tags honoured."""
    return key_slot(_encode(key))


def route(args: Sequence[Any]) -> int:
    """The slot of the command ``args``, or :data:`ANY_NODE` / :data:`ALL_PRIMARIES`.

    Returns ``-3`` for a command the table does not know (ask :class:`CommandTable`).

    Raises:
        ConfigurationError: a keyed command without its key (``EVAL`` with
            ``numkeys`` 0 goes to any node).
    """
    name = _text(args[0])
    if " " in name:  # redis-py's "XGROUP CREATE", "SCRIPT LOAD"...
        args = (*name.split(), *args[1:])
        name = args[0]
    if name in _KEY_AT_1:
        if len(args) < 2:
            raise ConfigurationError(f"{name} needs a key")
        return slot_of(args[1])
    numkeys_at = _NUMKEYS_AT.get(name)
    if numkeys_at is not None:
        try:
            numkeys = int(args[numkeys_at])
        except (IndexError, ValueError):
            raise ConfigurationError(f"{name} needs numkeys at argument {numkeys_at}") from None
        if numkeys <= 0:
            return ANY_NODE
        if len(args) <= numkeys_at + 1:
            raise ConfigurationError(f"{name} says {numkeys} keys but has none")
        return slot_of(args[numkeys_at + 1])
    if name in _STREAMS:
        for index, arg in enumerate(args):
            if _text(arg) == "STREAMS" and index + 1 < len(args):
                return slot_of(args[index + 1])
        raise ConfigurationError(f"{name} needs STREAMS key")
    if name in _KEY_AT_2:
        return slot_of(args[2]) if len(args) > 2 else ANY_NODE
    if name in _ANY:
        return ANY_NODE
    if name in _ALL:
        return ALL_PRIMARIES
    return _UNKNOWN


class CommandTable:
    """Key positions from the server's ``COMMAND`` reply, for commands :func:`route` lacks.

    ``load`` is called once with a function that runs a command on some node.
    """

    def __init__(self) -> None:
        self._first_key: dict[str, int] | None = None
        self._movable: set[str] = set()

    async def route(self, args: Sequence[Any], run: Callable[..., Awaitable[Any]]) -> int:
        """The slot of ``args`` (or :data:`ANY_NODE`), asking the server as needed.

        Raises:
            ConfigurationError: the server does not know the command.
            TransportError: asking the server failed.
        """
        if self._first_key is None:
            self._load(await run(b"COMMAND"))
        assert self._first_key is not None
        name = _text(args[0])
        if " " in name:
            args = (*name.split(), *args[1:])
            name = args[0]
        first = self._first_key.get(name)
        if first is None:
            raise ConfigurationError(f"unknown command {name} for Redis Cluster routing")
        if name in self._movable or first < 0:
            keys = await run(b"COMMAND", b"GETKEYS", *args)
            return slot_of(keys[0]) if keys else ANY_NODE
        if first == 0 or len(args) <= first:
            return ANY_NODE
        return slot_of(args[first])

    def _load(self, reply: Sequence[Any]) -> None:
        table: dict[str, int] = {}
        for entry in reply:
            name = _text(entry[0])
            flags = {_text(flag) for flag in entry[2]}
            first = int(entry[3])
            if "MOVABLEKEYS" in flags:
                self._movable.add(name)
            if first == 0 and len(entry) > 9 and entry[9]:
                first = -1  # a container (XGROUP...): let the server find the key
            table[name] = first
        self._first_key = table
