"""The in-memory transport: mailboxes with Redis semantics, in one process.

``MemoryTransport()`` is what ``memory://`` URLs open; tests of anything above
the transport use it too. Share a :class:`MemoryStore` between transports to
give them the same mailboxes::

    store = MemoryStore()
    async with MemoryTransport(store) as producer, MemoryTransport(store) as worker:
        spec = MailboxSpec("list", "jobs")
        await producer.send(spec, [b"job-1"])
        async with worker.consumer(spec, "worker-1") as consumer:
            [delivery] = await consumer.fetch(10)
            await consumer.ack([delivery])

How each mailbox kind behaves is documented on the consumer classes in
``transports._memory`` (``ListConsumer``, ``StreamConsumer``, ``PubSubConsumer``);
the conformance suite (``tests/transports/conformance``) holds every transport to the same
promises. Where memory is stricter than Redis can be, on purpose:

- ``maxlen`` trims exactly (Redis ``MAXLEN ~`` keeps somewhat more);
- a consumer is alive exactly while it is open, so there is no heartbeat task:
  its lease starts running when it closes, and a waiting ``fetch`` wakes up at
  the very moment a lease runs out or a retry falls due;
- opening a second live consumer of one mailbox under the same name raises
  ``ConfigurationError`` (Redis cannot tell it from a restarted one);
- publishing to a pattern raises ``ConfigurationError``.
"""

from ._memory._consumer import ConsumerState as ConsumerState, MemoryConsumer as MemoryConsumer
from ._memory._store import MemoryStore as MemoryStore
from ._memory._transport import MemoryTransport as MemoryTransport, TransportState as TransportState

__all__ = ["ConsumerState", "MemoryConsumer", "MemoryStore", "MemoryTransport", "TransportState"]
