"""Pipelines: many commands, one write, one read of all the replies.

Command methods (redis-py's sync ``CoreCommands``) queue and return the pipeline,
so they chain: ``pipe.set("a", 1).get("a")``. ``await pipe.execute()`` sends the
queue in one write on one pooled connection and reads every reply before
returning or raising, so the connection is left clean even when commands fail.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from hiredis import ReplyError
from redis.commands.core import CoreCommands

from transports._exceptions import AuthenticationError, CommandError

from ._connection import pack
from ._errors import command_error, translate_argument_errors
from ._replies import MISSING, Callbacks, split_options

__all__ = ["Pipeline", "PipelineTarget"]

_MULTI = pack(("MULTI",))
_EXEC = pack(("EXEC",))

Queued = tuple[tuple[Any, ...], dict[str, Any]]


def _upper_name(name: object) -> str:
    return (name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)).upper()


def _pipeline_error(
    reply: ReplyError, index: int, args: tuple[Any, ...]
) -> CommandError | AuthenticationError:
    error = command_error(reply)
    name = _upper_name(args[0])
    error.args = (f"command #{index + 1} ({name}) of the pipeline failed: {reply}",)
    return error


class PipelineTarget(Protocol):
    """What a pipeline runs on (a :class:`Redis`): its URL, its response callbacks, and
    packed commands sent in one write."""

    _callbacks: Callbacks

    @property
    def url(self) -> str: ...

    async def execute_many(
        self, data: bytes, count: int, decode: list[bool] | None = None
    ) -> list[Any]: ...


class Pipeline(CoreCommands):
    """Commands queued for one round trip; made by :meth:`Redis.pipeline`.

    ``async with client.pipeline(transaction=False) as pipe:`` then
    ``pipe.set(k, v).get(k)`` and ``results = await pipe.execute()``. With
    ``transaction=True`` the commands run inside MULTI/EXEC (atomically); WATCH is
    not supported. Leaving the ``async with`` block drops unexecuted commands.
    A pipeline that breaks mid-flight is not retried: some commands may have run.
    """

    _is_async_client: Literal[False] = False
    _event_dispatcher: Any = None

    def __init__(self, client: PipelineTarget, transaction: bool = True) -> None:
        self._client = client
        self.transaction = transaction
        self._queue: list[Queued] = []

    def __repr__(self) -> str:
        kind = "transaction" if self.transaction else "pipeline"
        return f"<Pipeline {kind} of {len(self._queue)} commands on {self._client.url}>"

    def __len__(self) -> int:
        return len(self._queue)

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.reset()

    def execute_command(self, *args: Any, **options: Any) -> Pipeline:
        """Queue one command (the command methods call this) and return the pipeline.

        Raises:
            ConfigurationError: an argument cannot be encoded (checked at execute).
        """
        self._queue.append((args, options))
        return self

    def reset(self) -> None:  # type: ignore[override]  # not the RESET command
        """Drop every queued command."""
        self._queue = []

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send every queued command in one write and return their results, in order.

        Results are what redis-py returns for each command. With
        ``raise_on_error=True`` the first failed command raises (after all replies
        were read); with False its :class:`CommandError` takes its place in the list.
        The queue is emptied either way.

        Raises:
            CommandError: a command failed (``raise_on_error``), or a transaction was
                aborted (``.code == "EXECABORT"``) because a command was invalid.
            ConfigurationError: an argument cannot be encoded.
            And the connection errors listed on :class:`Redis`.
        """
        queue, self._queue = self._queue, []
        if not queue:
            return []
        prepared = [
            (args, *split_options(options), options) if options else (args, True, MISSING, {})
            for args, options in queue  # the queue is ours now: options may be changed
        ]
        data = b"".join([pack(args) for args, _ in queue])
        decode = None
        if not all(flag for _, flag, _, _ in prepared):
            decode = [flag for _, flag, _, _ in prepared]
        if self.transaction:
            return await self._execute_transaction(data, prepared, raise_on_error)
        replies = await self._client.execute_many(data, len(queue), decode)
        results = []
        callbacks = self._client._callbacks
        for index, ((args, _, empty, options), reply) in enumerate(
            zip(prepared, replies, strict=True)
        ):
            if reply.__class__ is ReplyError:
                if empty is not MISSING:
                    results.append(empty)
                    continue
                results.append(_pipeline_error(reply, index, args))
                continue
            name = args[0]
            callback = callbacks.get(name) or callbacks.get(_upper_name(name))
            results.append(reply if callback is None else callback(reply, **options))
        if raise_on_error:
            _raise_first(results)
        return results

    async def _execute_transaction(
        self,
        data: bytes,
        prepared: list[tuple[tuple[Any, ...], bool, Any, dict[str, Any]]],
        raise_on_error: bool,
    ) -> list[Any]:
        # The replies of a transaction arrive in one EXEC array: NEVER_DECODE is ignored.
        replies = await self._client.execute_many(_MULTI + data + _EXEC, len(prepared) + 2)
        multi, queued, executed = replies[0], replies[1:-1], replies[-1]
        if multi.__class__ is ReplyError:
            raise command_error(multi, "MULTI")
        for index, reply in enumerate(queued):
            if reply.__class__ is ReplyError:
                # The server refused to queue it, so EXEC aborted: report the culprit.
                error = _pipeline_error(reply, index, prepared[index][0])
                error.args = (f"transaction aborted: {error}",)
                raise error
        if executed.__class__ is ReplyError:
            raise command_error(executed, "EXEC")
        if executed is None:
            raise CommandError("transaction aborted by the server (nil EXEC)", code="EXECABORT")
        callbacks = self._client._callbacks
        results = []
        for index, ((args, _, _, options), reply) in enumerate(
            zip(prepared, executed, strict=True)
        ):
            if reply.__class__ is ReplyError:
                results.append(_pipeline_error(reply, index, args))
                continue
            callback = callbacks.get(_upper_name(args[0]))
            results.append(reply if callback is None else callback(reply, **options))
        if raise_on_error:
            _raise_first(results)
        return results


def _raise_first(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, CommandError | AuthenticationError):
            raise result


translate_argument_errors(Pipeline, CoreCommands)
