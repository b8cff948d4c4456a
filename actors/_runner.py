"""Running one actor instance: fetch in batches, handle one message at a time, ack.

This is where the delivery guarantees meet user code:

- a message is acked only after its handler returned (or its fate was decided);
- a handler that raises does what the actor's ``on_error`` says of that exception:
  by default the message is retried after ``retry_backoff`` (durably, in the store)
  and the instance goes on; ``restart`` crashes the instance (its supervisor restarts
  it at once) and the message stays unacked, so it is delivered again with its
  attempt count; ``stop`` and ``escalate`` hand the message back and crash with a
  mark the supervisor obeys. At ``max_deliveries`` the message is dead-lettered with
  the traceback and the actor goes on;
- a payload that cannot be decoded is dead-lettered with the reason at once;
- a store outage makes the loop wait and retry with backoff; it is not a crash (a
  refusal, which retrying cannot cure, is: see ``_retry``);
- so does a key of the mailbox with the wrong type, reported as a fault (``_faults``)
  until it is fixed: the message whose fate it blocks stays held.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from transports import (
    Consumer,
    Delivery,
    Failure,
    MailboxSpec,
    TransportError,
)

from ._codec import Envelope
from ._context import ActorContext, message_id
from ._errors import CodecError
from ._fate_store import Failed, FateStore
from ._fates import Drop, Reject, Retry
from ._instance_io import InstanceIO
from ._observe import ActorMessaging, InstanceObserver
from ._retry import RECHECK, Outage, store_answers
from ._runtime import SystemRun
from ._settling import Unsettled
from ._tree import direct

if TYPE_CHECKING:
    from ._actor import Actor, Build

__all__ = ["InstanceRunner"]

logger = logging.getLogger("actors.actor")

#: At a stop, the store writes (acks, hand-backs, closing) get until the stop began plus
#: the instance's ``shutdown``, and at least this long after the handler is done.
_LAST_WRITES = 0.5
#: An instance fetches at most what it handles in about this long (and at most the
#: actor's ``batch_size``): slow work then spreads over instances and worker processes
#: instead of waiting in one instance's batch, while fast work keeps full batches.
_BATCH_SPAN = 0.05
#: How much a fetch may grow over the last batch: the first fetch takes one message,
#: so that a backlog of slow ones is not grabbed before their speed is known, and a
#: trickle of fast messages does not open the way to a full batch of slow ones.
_BATCH_GROWTH = 8


async def _set_when(source: trio.Event, target: trio.Event) -> None:
    """Set ``target`` once ``source`` is set."""
    await source.wait()
    target.set()


class InstanceRunner:
    """Runs one incarnation of the instance ``name`` of ``cls`` (``path`` in the tree)
    in ``run``: see :meth:`run`."""

    def __init__(
        self,
        run: SystemRun,
        cls: type[Actor],
        name: str,
        path: str,
        shutdown: float = 5.0,
        build: Build | None = None,
        *,
        spec: MailboxSpec | None = None,
        consumer_name: str | None = None,
    ) -> None:
        assert cls.mailbox is not None
        self.build = build or (lambda _context: cls())
        self.runtime = run
        self.messenger = run.messenger
        self.cls = cls
        #: The mailbox consumed: the actor's, unless given (a keyed actor's partition).
        self.spec = spec or cls.mailbox
        self.table = cls.handlers()
        self.codec = run.messenger.codecs.route(self.spec)[1]  # how its payloads read
        self.path = path
        self.consumer_name = consumer_name or f"{run.node}/{name}"
        self._fetch_scope: trio.CancelScope | None = None
        self._observe = InstanceObserver(
            (*self.messenger.middleware, *cls.middleware), cls.name, path, self.spec
        )
        self._io = InstanceIO(run, cls.name, path, self._observe)
        # What the batch in hand still owes the store: results, acks, releases; and
        # the fates of its failed messages.
        self._unsettled = Unsettled(self._io)
        self._fates = FateStore(self._io, cls, self.spec)
        self._fetch_count = 1
        self._started = False  # task_status.started() was called
        self._shutdown = shutdown
        self._stopped_at: float | None = None  # when this instance was told to stop
        self._cut_short = 0  # a message whose handler a stop cancelled

    def _tell_self(self, context: ActorContext) -> Callable[[Any], Awaitable[None]]:
        async def send(msg: Any) -> None:
            await context.tell(self.spec, msg)

        return send

    def _pace(self, handled: int, elapsed: float) -> None:
        """Size the next fetch from how long the last batch's ``handled`` messages took."""
        if handled:
            fits = int(_BATCH_SPAN * handled / elapsed) if elapsed > 0 else self.cls.batch_size
            grown = handled * _BATCH_GROWTH
            self._fetch_count = max(1, min(fits, grown, self.cls.batch_size))

    async def run(self, stop: trio.Event, task_status: trio.TaskStatus[None]) -> None:
        """Run a fresh instance until ``stop`` (or the system's stop) or a crash.

        Raises:
            Exception: whatever a handler, ``on_start`` or ``on_stop`` raised (a crash).
        """
        context = ActorContext(
            ActorMessaging(self.messenger, self.cls.middleware, self.path),
            self.path,
            self.consumer_name,
            self.runtime.resources,
            watch=self.runtime.watch,
            mailbox=self.spec,
        )
        actor = self._new_actor(context)
        actor.context = context
        # Stopping begins when the supervisor says so (``stop``), or at once when the
        # whole system stops: then every instance of every actor finishes its message
        # and its store writes at the same time, under one deadline, rather than one
        # actor after another as the supervisors stop their children (with the store
        # frozen, that made a stop last a shutdown timeout per actor).
        halt = trio.Event()
        crash: Exception | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_set_when, stop, halt)
                nursery.start_soon(_set_when, self.runtime.stop, halt)
                # The instance's timers live in its nursery: they end with it.
                context.timers.attach(nursery, self._tell_self(context), self.path)
                try:
                    await self._run(actor, halt, task_status)
                    # Done: it exits when its supervisor asks (at once if it did), so
                    # that no supervisor takes the exit for a reason to restart it.
                    await stop.wait()
                except Exception as exc:
                    crash = exc  # raised as itself, not in a group (see _run)
                nursery.cancel_scope.cancel()
        finally:
            self._count_unacked()
            self.runtime.faults.leave(self.cls.name, self.path)
        if crash is not None:
            raise crash

    async def _run(
        self, actor: Actor, stop: trio.Event, task_status: trio.TaskStatus[None]
    ) -> None:
        async with self._open_consumer(stop, task_status) as consumer:
            if consumer is None:
                return  # stopped while its mailbox was unusable
            await actor.on_start()
            if not self._started:
                self._started = True
                task_status.started()
            crash: Exception | None = None
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._interrupt_fetch_on, stop)
                try:
                    await self._loop(actor, consumer, stop)
                except Exception as exc:
                    # Raised outside the nursery, so the supervisor sees the handler's
                    # own exception rather than an ExceptionGroup around it.
                    crash = exc
                nursery.cancel_scope.cancel()
            try:
                await actor.on_stop()
            except Exception as exc:
                if crash is not None:
                    raise exc from crash
                raise
            if crash is not None:
                raise crash

    @asynccontextmanager
    async def _open_consumer(
        self, stop: trio.Event, task_status: trio.TaskStatus[None]
    ) -> AsyncIterator[Consumer | None]:
        """Open the consumer, waiting out a store outage (a restart during one must not
        fail for it); a refusal (credentials, permissions) fails at once.

        A key of the mailbox with the wrong type is waited out too, as a reported
        fault: the instance counts as started meanwhile, so that the rest of the
        tree starts, and yields None if ``stop`` comes first. Closing writes to the
        store (hands back what the consumer holds) until the deadline of a stop, at
        most.
        """
        async with AsyncExitStack() as stack:
            outage = Outage(logger, self.path)
            consumer: Consumer | None = None
            while True:
                try:
                    opening = self.runtime.transport.consumer(self.spec, self.consumer_name)
                    consumer = await stack.enter_async_context(opening)
                    self._io.mailbox_usable()
                    break
                except TransportError as exc:
                    wrong_type = self._io.report_wrong_type(exc)
                    if not wrong_type and stop.is_set():
                        raise  # an outage at a stop: nothing to wait for
                    if wrong_type and not self._started:
                        self._started = True
                        task_status.started()
                    await outage.wait(exc, stop, quiet=wrong_type)  # raises a refusal
                    if wrong_type and stop.is_set():
                        break  # with no consumer
            outage.over()
            if consumer is None:
                yield None  # stopped while its mailbox was unusable
                return
            try:
                yield consumer
            finally:
                if self.runtime.name_lost():
                    # Another process consumes under this name now: hand nothing back.
                    consumer.abandon()
                else:
                    consumer.close_by(self._write_deadline())

    async def _interrupt_fetch_on(self, stop: trio.Event) -> None:
        await stop.wait()
        self._stopped_at = trio.current_time()
        if self._fetch_scope is not None:
            self._fetch_scope.cancel()

    async def _fetch(self, consumer: Consumer, stop: trio.Event) -> Sequence[Delivery]:
        """Ack what the last batch handled and fetch the next, in one round trip where
        the store can, riding out store outages; empty when ``stop`` interrupts.

        The acks are done when this returns: the next batch is handled only then.
        """
        work = self._unsettled
        outage = Outage(logger, self.path)
        while not stop.is_set():
            with trio.CancelScope() as scope:
                self._fetch_scope = scope
                if outage.ongoing or self.runtime.faults.holds(self.cls.name, self.path):
                    # Bounded, to see the end of the trouble when it comes (below).
                    scope.deadline = trio.current_time() + RECHECK
                try:
                    batch = await consumer.fetch(self._fetch_count, ack=work.handled)
                except TransportError as exc:
                    # The acks may or may not be made: they go again with the next
                    # try (acking twice is harmless), and still come first.
                    await self._io.wait_out(outage, exc, stop)
                    continue
                finally:
                    self._fetch_scope = None
                work.handled = []
                self._io.mailbox_usable()
                outage.over()
                return batch
            # Cut off while waiting for a message, without an error: the mailbox
            # works, if the store answers (a frozen one blocks the read as well).
            if not stop.is_set() and await store_answers(self.runtime.transport):
                self._io.mailbox_usable()
                outage.over()
        return ()

    async def _loop(self, actor: Actor, consumer: Consumer, stop: trio.Event) -> None:
        while not stop.is_set():
            # A batch with results settles first, from this task, in one round trip
            # (on one Redis server): an ask's reply is what someone is waiting for.
            # A batch with only acks acks them with the next fetch.
            if self._unsettled.outbox and not await self._unsettled.settle_patiently(
                consumer, stop
            ):
                break
            batch = await self._fetch(consumer, stop)
            self._observe.fetched(len(batch))
            started = 0
            begun = trio.current_time()
            try:
                for delivery in batch:
                    if stop.is_set():
                        break
                    started += 1
                    if await self._handle(actor, consumer, delivery):
                        self._unsettled.handled.append(delivery)
            except BaseException as exc:
                # A crash mid-batch: settle now, the supervisor takes over from here.
                self._unsettled.unstarted.extend(batch[started:])
                if isinstance(exc, trio.Cancelled):
                    self._cut_short = 1  # a stop gave up waiting for the handler
                with trio.CancelScope(shield=True, deadline=self._write_deadline()):
                    await self._fates.store_fates(consumer)
                    await self._unsettled.settle(consumer)
                raise
            self._unsettled.unstarted.extend(batch[started:])
            with trio.CancelScope(deadline=self._write_deadline()):
                await self._fates.store_fates(consumer)
            self._pace(started, trio.current_time() - begun)
            self.runtime.handled[self.cls.name] += started
        if not (
            self._unsettled.done and not self._fates.failed
        ):  # a graceful stop: finish what the last batch owes
            await self._unsettled.settle_at_stop(consumer, self._write_deadline())

    def _write_deadline(self) -> float:
        """When the store writes of a stop must be done (trio time).

        One deadline for the whole system: its stop's start (or, for an instance
        stopped on its own, this one's) plus ``shutdown``, so that the store's
        timeouts do not add up instance after instance; but never less than
        ``_LAST_WRITES`` from now, so that a store that answers gets the acks. No
        deadline (``inf``) for a crash: the store's own timeouts bound its writes.
        """
        began = self.runtime.stopping_since
        if began is None:
            began = self._stopped_at
        if began is None:
            return math.inf
        return max(began + self._shutdown, trio.current_time() + _LAST_WRITES)

    def _count_unacked(self) -> None:
        """At the system's stop, count (and log) the messages this instance leaves
        unacked: handled but not acked, not handed back, or cut short. They are
        redelivered: to the next consumer of this name, or to another after the lease."""
        work = self._unsettled
        left = len(work.handled) + len(work.unstarted) + len(self._fates.failed) + self._cut_short
        if work.outbox:
            logger.error(
                "%s: dropped %d result(s) the store could not take before the stop",
                self.path,
                sum(len(payloads) for payloads in work.outbox.values()),
            )
        if left and self.runtime.stopping_since is not None:
            self.runtime.unacked_at_stop += left
            logger.warning(
                "%s: %d message(s) could not be acked or handed back; they will be redelivered",
                self.path,
                left,
            )

    def _new_actor(self, context: ActorContext) -> Actor:
        """The actor instance an incarnation runs (a subclass may make another)."""
        return self.build(context)

    async def _invoke(
        self, actor: Actor, method: str, body: Any, envelope: Envelope, delivery: Delivery
    ) -> Any:
        """Run the handler ``method`` of ``actor`` on ``body`` in the middleware (a keyed
        actor's partition runs it on the key's activation instead)."""
        return await self._observe.handle(getattr(actor, method), body, actor.context)

    async def _handle(self, actor: Actor, consumer: Consumer, delivery: Delivery) -> bool:
        """Handle one delivery; True when it should be acked with the batch."""
        try:
            envelope = self.codec.decode(delivery.payload, max_size=self.messenger.max_payload)
            method, body = self.table.resolve(envelope)
        except CodecError as exc:
            await self._fates.dead_letter(
                consumer, delivery, Failure(f"undecodable: {exc}", self.path), cause=exc
            )
            return False
        context = actor.context
        context._current = (envelope, delivery)  # what context.message describes
        try:
            result = await self._invoke(actor, method, body, envelope, delivery)
        except Drop:
            self._observe.fate("dropped", message_id(envelope, delivery), delivery.attempt)
            return True
        except Reject as fate:
            await self._fates.dead_letter(
                consumer,
                delivery,
                Failure(f"rejected: {fate.reason}", self.path),
                cause=fate,
                message_id=message_id(envelope, delivery),
            )
            await self.messenger.reply_error(
                envelope, "Rejected", fate.reason, self.path, message_id(envelope, delivery)
            )
            return False
        except Retry as fate:
            self._fates.failed.append(
                Failed(delivery, envelope, message_id(envelope, delivery), fate, fate.delay)
            )
            return False
        except Exception as exc:
            directive = self.cls.directive_for(exc)
            if directive == "retry":
                # Akka's resume: this instance, state and all, goes on with the next
                # message; the failure and the message's fate are stored at the end of
                # the batch, with those of the batch's other failures.
                self._fates.failed.append(
                    Failed(delivery, envelope, message_id(envelope, delivery), exc, None)
                )
                return False
            # One store call counts the failure, or at the last attempt dead-letters
            # the message: whatever the directive, a message's attempts end there.
            if await self._fates.count_failure(consumer, delivery, envelope, exc):
                return False
            if directive != "restart":
                # This instance will not take the message again (stop), or not soon
                # (escalate): hand it back to the mailbox, failure counted, with the
                # rest of the batch.
                self._unsettled.unstarted.append(delivery)
            # The restart directive: the message stays unacked and comes back to the
            # fresh instance, which the supervisor starts at once (no backoff).
            direct(exc, directive)
            raise
        finally:
            context._current = None
            context._message = None
        if envelope.reply_to or (result is not None and self.cls.publish_to):
            try:
                outgoing = self.messenger.outgoing(
                    self.cls, envelope, result, self.path, message_id(envelope, delivery)
                )
            except CodecError as exc:
                # A result that cannot be encoded never will be: dead-letter the
                # message now rather than crash on it at every redelivery.
                await self._fates.give_up(
                    consumer, delivery, envelope, exc, delivery.attempt, "result not encodable"
                )
                return False
            for box, payload in outgoing:
                self._unsettled.outbox.setdefault(box, []).append(payload)
        self._observe.fate("handled", message_id(envelope, delivery), delivery.attempt)
        return True
