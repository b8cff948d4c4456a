"""Prometheus metrics for a system: a middleware that counts and times messages, a
sampler of mailbox depths and restarts, and a ``/metrics`` endpoint served by trio.

Needs ``prometheus_client`` (``pip install 'actors[metrics]'``)::

    metrics = Metrics()  # on prometheus_client's default registry
    system.use(metrics)
    async with system, trio.open_nursery() as nursery:
        nursery.start_soon(metrics.sample, system)        # depths, pending, restarts
        await nursery.start(serve_metrics, 9100)           # GET /metrics

``python -m actors run --metrics-port 9100`` does all three.

The endpoint is a small HTTP/1.0 responder on trio's sockets rather than
prometheus_client's ``start_http_server``: that one runs a thread server beside the
event loop; this one is a task of the system's nursery, stopped with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import trio

from transports import ActorsError, ClosedError, ConfigurationError

from ._middleware import Fate, Fetch, Handling, Middleware, Sending
from ._tree import ChildInfo

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
except ImportError:  # pragma: no cover - the extra is missing
    raise ConfigurationError(
        "actors.metrics needs prometheus_client: pip install 'actors[metrics]'"
    ) from None

if TYPE_CHECKING:
    from ._system import ActorSystem

__all__ = ["Metrics", "export", "serve_metrics"]

logger = logging.getLogger("actors.metrics")

_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
#: The most a request to the endpoint may send before its blank line.
_MAX_REQUEST = 8192


class Metrics(Middleware):
    """Counters and histograms of a system's messages, on ``registry`` (default:
    prometheus_client's), each name prefixed with ``namespace``:

    - ``actors_messages_received_total``, ``..._handled_total``, ``..._failed_total``
      (the handler raised), ``..._retried_total``, ``..._dead_lettered_total``,
      ``..._dropped_total``: by ``actor`` and ``mailbox``;
    - ``actors_handling_seconds`` (histogram): handler time, by ``actor`` and ``mailbox``;
    - ``actors_fetch_batch_size`` (histogram): messages per fetch, by ``actor`` and ``mailbox``;
    - ``actors_messages_sent_total`` by ``target`` and ``kind`` (tell, ask);
    - ``actors_ask_seconds`` (histogram): an ask until its reply, by ``target``;
    - sampled by :meth:`sample`: ``actors_mailbox_depth``, ``actors_mailbox_pending``,
      ``actors_mailbox_dead_letters`` by ``mailbox``, and ``actors_restarts`` by the
      tree's ``path`` (restarts since its supervisor started).
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, namespace: str = "actors"
    ) -> None:
        self.registry = prometheus_client.REGISTRY if registry is None else registry
        reg, ns = self.registry, namespace
        by_actor = ("actor", "mailbox")

        def counter(name: str, what: str) -> Counter:
            return Counter(f"messages_{name}", what, by_actor, namespace=ns, registry=reg)

        def gauge(name: str, what: str, label: str) -> Gauge:
            return Gauge(name, what, (label,), namespace=ns, registry=reg)

        self.received = counter("received", "Messages given to a handler.")
        self.handled = counter("handled", "Messages handled (acked).")
        self.failed = counter("failed", "Handler calls that raised.")
        self.retried = counter("retried", "Failed messages scheduled for another attempt.")
        self.dead_lettered = counter("dead_lettered", "Messages dead-lettered.")
        self.dropped = counter("dropped", "Messages dropped by their handler (Drop).")
        self.handling = Histogram(
            "handling_seconds", "Handler time.", by_actor, namespace=ns, registry=reg
        )
        self.batch = Histogram(
            "fetch_batch_size",
            "Messages per fetch.",
            by_actor,
            namespace=ns,
            registry=reg,
            buckets=_SIZES,
        )
        self.sent = Counter(
            "messages_sent", "Messages sent.", ("target", "kind"), namespace=ns, registry=reg
        )
        self.ask = Histogram(
            "ask_seconds", "Asks, until the reply.", ("target",), namespace=ns, registry=reg
        )
        self.depth = gauge("mailbox_depth", "Messages waiting.", "mailbox")
        self.pending = gauge("mailbox_pending", "Fetched, not acked.", "mailbox")
        self.dead = gauge("mailbox_dead_letters", "Dead letters.", "mailbox")
        self.restarts = gauge("restarts", "Restarts of a tree node.", "path")
        # Children by label values: .labels() costs more than the increment itself.
        self._children: dict[tuple[Any, str, str], Any] = {}
        self._outcomes = {
            "handled": self.handled,
            "retried": self.retried,
            "dead_lettered": self.dead_lettered,
            "dropped": self.dropped,
        }

    def _child(self, metric: Any, first: str, second: str) -> Any:
        key = (metric, first, second)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(first, second)
        return child

    async def handle(self, handling: Handling, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Count the message received, time the handler, count a failure."""
        mailbox = str(handling.mailbox)
        self._child(self.received, handling.actor, mailbox).inc()
        started = time.perf_counter()
        try:
            return await call_next()
        except Exception:
            self._child(self.failed, handling.actor, mailbox).inc()
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._child(self.handling, handling.actor, mailbox).observe(elapsed)

    async def send(self, sending: Sending, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Count the messages sent; time an ask until its reply (or its failure)."""
        target = str(sending.target)
        self._child(self.sent, target, sending.kind).inc(len(sending.messages))
        if sending.kind != "ask":
            return await call_next()
        started = time.perf_counter()
        try:
            return await call_next()
        finally:
            self.ask.labels(target).observe(time.perf_counter() - started)

    def on_fate(self, fate: Fate) -> None:
        """Count the message's fate."""
        self._child(self._outcomes[fate.outcome], fate.actor, str(fate.mailbox)).inc()

    def on_fetch(self, fetch: Fetch) -> None:
        """Record the batch's size."""
        self._child(self.batch, fetch.actor, str(fetch.mailbox)).observe(fetch.size)

    async def sample(self, system: ActorSystem, interval: float = 5.0) -> None:
        """Every ``interval`` seconds while ``system`` runs, set the mailbox gauges
        (depth, pending, dead letters, by the store's ``mailbox_stats``) and the
        restarts of each node of the tree; until cancelled. A store that fails is
        skipped until the next round (logged at DEBUG)."""
        while True:
            wait = interval
            try:
                await self.sample_once(system)
            except ClosedError:
                wait = min(interval, 0.1)  # not running yet: the first sample comes soon
            except ActorsError as exc:  # the store failed
                logger.debug("metrics sample skipped: %s", exc)
            await trio.sleep(wait)

    async def sample_once(self, system: ActorSystem) -> None:
        """One round of :meth:`sample`.

        Raises:
            ClosedError: the system is not running. TransportError: the store failed.
        """
        transport = system.transport
        for path, restarts in _restarts(system.tree()):
            self.restarts.labels(path).set(restarts)
        boxes = {cls.mailbox for cls in system.actors.values() if cls.mailbox is not None}
        for box in sorted(boxes, key=str):
            stats = await transport.mailbox_stats(box)
            self.depth.labels(str(box)).set(stats.depth)
            self.pending.labels(str(box)).set(stats.pending)
            self.dead.labels(str(box)).set(stats.dead)


def _restarts(node: ChildInfo) -> Iterator[tuple[str, int]]:
    yield node.path, node.restarts
    for child in node.children:
        yield from _restarts(child)


async def serve_metrics(
    port: int,
    host: str = "0.0.0.0",
    registry: CollectorRegistry | None = None,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``registry`` (default: prometheus_client's) in Prometheus's text format at
    ``GET /metrics`` on ``host``:``port`` until cancelled; ``task_status`` gets the
    port listened on (useful with port 0).

    Raises:
        ConfigurationError: the port could not be bound.
    """
    chosen = prometheus_client.REGISTRY if registry is None else registry
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
    task_status.started(listeners[0].socket.getsockname()[1])

    async def answer(stream: trio.SocketStream) -> None:
        async with stream:
            with trio.move_on_after(10):  # a client that never finishes its request
                await _answer(stream, chosen)

    await trio.serve_listeners(answer, listeners)


async def _answer(stream: trio.SocketStream, registry: CollectorRegistry) -> None:
    request = b""
    try:
        while b"\r\n\r\n" not in request and b"\n\n" not in request:
            chunk = await stream.receive_some(4096)
            if not chunk or len(request) > _MAX_REQUEST:
                return
            request += chunk
        line = request.split(b"\n", 1)[0].decode("latin-1").split()
        method, path, *_ = [*line, "", ""]
        if method not in ("GET", "HEAD"):
            status, body, kind = "405 Method Not Allowed", b"GET only\n", "text/plain"
        elif path.split("?", 1)[0] in ("/metrics", "/"):
            kind = prometheus_client.CONTENT_TYPE_LATEST
            status, body = "200 OK", prometheus_client.generate_latest(registry)
        else:
            status, body, kind = "404 Not Found", b"see /metrics\n", "text/plain"
        head = (
            f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        await stream.send_all(head.encode("latin-1") + (b"" if method == "HEAD" else body))
    except trio.BrokenResourceError:
        pass  # the scraper went away


async def export(
    system: ActorSystem, metrics: Metrics, port: int, host: str = "0.0.0.0", interval: float = 5.0
) -> None:
    """Serve ``metrics`` on ``host``:``port`` and sample ``system`` every ``interval``
    seconds, until cancelled (what ``run --metrics-port`` does).

    Raises:
        ConfigurationError: the port could not be bound.
    """
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve_metrics, port, host)
        logger.info("serving metrics at http://%s:%d/metrics", host, bound)
        nursery.start_soon(metrics.sample, system, interval)
