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

import bisect
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import trio

from transports import ActorsError, ClosedError, ConfigurationError, MailboxSpec

from ._middleware import Fate, Fetch, Handling, Middleware, Sending
from ._tree import ChildInfo

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError:  # pragma: no cover - the extra is missing
    raise ConfigurationError(
        "actors.metrics needs prometheus_client: pip install 'actors[metrics]'"
    ) from None

if TYPE_CHECKING:
    from ._system import ActorSystem

__all__ = ["Metrics", "export", "serve_metrics"]

logger = logging.getLogger("actors.metrics")

_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
#: prometheus_client's default buckets (seconds), without +Inf.
_TIMES = tuple(b for b in Histogram.DEFAULT_BUCKETS if b != float("inf"))
_COUNTS = (
    ("received", "Messages given to a handler."),
    ("handled", "Messages handled (acked)."),
    ("failed", "Handler calls that raised."),
    ("retried", "Failed messages scheduled for another attempt."),
    ("dead_lettered", "Messages dead-lettered."),
    ("dropped", "Messages dropped by their handler (Drop)."),
)
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

        def gauge(name: str, what: str, label: str) -> Gauge:
            return Gauge(name, what, (label,), namespace=ns, registry=reg)

        # Per message, plain counts (collected when scraped): prometheus_client's own
        # metrics take a lock and a label lookup per update, several per message.
        self._messages = _MessageCounts(namespace)
        reg.register(self._messages)
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

    async def handle(self, handling: Handling, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Count the message received, time the handler, count a failure."""
        counts = self._messages.of(handling.actor, handling.mailbox)
        counts.received += 1
        started = time.perf_counter()
        try:
            return await call_next()
        except Exception:
            counts.failed += 1
            raise
        finally:
            elapsed = time.perf_counter() - started
            counts.time[bisect.bisect_left(_TIMES, elapsed)] += 1
            counts.time_sum += elapsed

    async def send(self, sending: Sending, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Count the messages sent; time an ask until its reply (or its failure)."""
        target = str(sending.target)
        self.sent.labels(target, sending.kind).inc(len(sending.messages))
        if sending.kind != "ask":
            return await call_next()
        started = time.perf_counter()
        try:
            return await call_next()
        finally:
            self.ask.labels(target).observe(time.perf_counter() - started)

    def on_fate(self, fate: Fate) -> None:
        """Count the message's fate."""
        self._messages.of(fate.actor, fate.mailbox).fates[fate.outcome] += 1

    def on_fetch(self, fetch: Fetch) -> None:
        """Record the batch's size."""
        counts = self._messages.of(fetch.actor, fetch.mailbox)
        counts.batch[bisect.bisect_left(_SIZES, fetch.size)] += 1
        counts.batch_sum += fetch.size

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


class _Counts:
    """The counts of one actor's messages (histograms: per bucket, +Inf last)."""

    def __init__(self) -> None:
        self.received = self.failed = 0
        #: By outcome (handled, retried, dead_lettered, dropped).
        self.fates = dict.fromkeys(("handled", "retried", "dead_lettered", "dropped"), 0)
        self.time = [0] * (len(_TIMES) + 1)
        self.time_sum = 0.0
        self.batch = [0] * (len(_SIZES) + 1)
        self.batch_sum = 0


class _MessageCounts(Collector):
    """The per-actor message counts, as Prometheus metrics when collected."""

    def __init__(self, namespace: str) -> None:
        self.prefix = f"{namespace}_" if namespace else ""
        self.counts: dict[tuple[str, MailboxSpec], _Counts] = {}
        # By actor name first: a str's hash is cached, a MailboxSpec's is computed.
        self._by_actor: dict[str, tuple[MailboxSpec, _Counts]] = {}

    def of(self, actor: str, mailbox: MailboxSpec) -> _Counts:
        """The counts of ``actor`` on ``mailbox`` (made at first use)."""
        known = self._by_actor.get(actor)
        if known is not None and known[0] is mailbox:
            return known[1]
        counts = self.counts.get((actor, mailbox))
        if counts is None:
            counts = self.counts[(actor, mailbox)] = _Counts()
        self._by_actor[actor] = (mailbox, counts)
        return counts

    def collect(self) -> Iterator[Metric]:
        """The counters and histograms, labelled by actor and mailbox."""
        labels = ["actor", "mailbox"]
        rows = [((actor, str(box)), counts) for (actor, box), counts in list(self.counts.items())]
        for name, what in _COUNTS:
            family = CounterMetricFamily(f"{self.prefix}messages_{name}", what, labels=labels)
            for values, counts in rows:
                fates = counts.fates
                family.add_metric(values, fates[name] if name in fates else getattr(counts, name))
            yield family
        for name, what, bounds, attribute in (
            ("handling_seconds", "Handler time.", _TIMES, "time"),
            ("fetch_batch_size", "Messages per fetch.", _SIZES, "batch"),
        ):
            histogram = HistogramMetricFamily(f"{self.prefix}{name}", what, labels=labels)
            for values, counts in rows:
                per_bucket = getattr(counts, attribute)
                cumulative = list(itertools.accumulate(per_bucket))
                buckets = [(str(float(b)), c) for b, c in zip(bounds, cumulative, strict=False)]
                buckets.append(("+Inf", cumulative[-1]))
                histogram.add_metric(values, buckets, getattr(counts, f"{attribute}_sum"))
            yield histogram


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
