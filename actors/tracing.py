"""OpenTelemetry tracing for a system: a middleware that makes spans for sends, asks and
handler calls, and carries the W3C trace context (``traceparent``) in message headers, so
that one trace follows a message across actors and processes.

Needs the OpenTelemetry API, and an SDK to export (``pip install 'actors[otel]'``)::

    system = ActorSystem(middleware=[Tracing()])  # the global tracer provider

Spans: ``tell <address>`` (kind PRODUCER) and ``ask <address>`` (CLIENT, until the
reply) around each send, the headers of whose messages get the span's ``traceparent``;
``handle <actor>`` (CONSUMER) around each handler call, the child of the sender's span
when the message carries a ``traceparent``. A handler's ``context.tell``/``ask`` happen
inside its span, so they continue the trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from transports import ConfigurationError

from ._fates import MessageFate
from ._middleware import Handling, Middleware, Sending

try:
    from opentelemetry import context as otel_context, trace
    from opentelemetry.context import Context
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - the extra is missing
    raise ConfigurationError(
        "actors.tracing needs opentelemetry-api: pip install 'actors[otel]'"
    ) from None

__all__ = ["Tracing"]


class Tracing(Middleware):
    """Spans for sends, asks and handler calls on ``tracer_provider`` (default: the
    global one), the trace context carried in message headers by ``propagator``
    (default: W3C Trace Context, the ``traceparent`` and ``tracestate`` headers).

    A message of a trace its sender did not sample gets no span (``follow_unsampled``,
    the default): its handler runs in the sender's context, which its own sends carry
    on, unsampled. This is what a parent-based sampler (the SDK's default) decides, at
    a fraction of the cost of a non-recording span; ``follow_unsampled=False`` asks the
    provider's sampler about each message instead.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        propagator: TextMapPropagator | None = None,
        follow_unsampled: bool = True,
    ) -> None:
        from . import __version__

        self.follow_unsampled = follow_unsampled
        self.tracer = trace.get_tracer("actors", __version__, tracer_provider=tracer_provider)
        self.propagator = propagator or TraceContextTextMapPropagator()
        self._last: tuple[tuple[str | None, str | None], tuple[Context, bool | None]] = (
            (None, None),
            (Context(), None),
        )

    def _extract(self, headers: Mapping[str, str]) -> tuple[Context, bool | None]:
        """The sender's context in ``headers``, and whether it was sampled (None: no
        valid sender). The messages of one ``tell_many`` share their headers: the last
        extraction is kept (a Context never changes)."""
        key = (headers.get("traceparent"), headers.get("tracestate"))
        if key == self._last[0]:
            return self._last[1]
        parent = self.propagator.extract(headers)
        sender = trace.get_current_span(parent).get_span_context()
        extracted = (parent, sender.trace_flags.sampled if sender.is_valid else None)
        self._last = (key, extracted)
        return extracted

    async def handle(self, handling: Handling, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Run the handler in a ``handle <actor>`` span, the child of the sender's."""
        info = handling.context.message
        parent, sampled = self._extract(info.headers)
        if self.follow_unsampled and sampled is False:
            # An unsampled trace: no span, the sender's context passed on as it came
            # (a parent-based sampler would make a non-recording span, at a cost).
            token = otel_context.attach(parent)
            try:
                return await call_next()
            finally:
                otel_context.detach(token)
        # Few attributes: each costs about a microsecond, on every message.
        attributes: dict[str, Any] = {
            "messaging.system": "actors",
            "messaging.destination.name": str(handling.mailbox),
            "messaging.message.id": info.id,
            "actors.path": handling.path,
            "actors.attempt": info.attempt,
        }
        with self.tracer.start_as_current_span(
            f"handle {handling.actor}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                return await call_next()
            except MessageFate as fate:  # Drop, Reject, Retry: a decision, not an error
                span.set_attribute("actors.fate", type(fate).__name__)
                raise
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                raise

    async def send(self, sending: Sending, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Run the send (an ask: until its reply) in a ``tell``/``ask`` span, whose
        context goes into the messages' headers."""
        attributes: dict[str, Any] = {
            "messaging.system": "actors",
            "messaging.operation.type": "send",
            "messaging.destination.name": str(sending.target),
        }
        if len(sending.messages) > 1:
            attributes["messaging.batch.message_count"] = len(sending.messages)
        if sending.sender is not None:
            attributes["actors.sender"] = sending.sender
        with self.tracer.start_as_current_span(
            f"{sending.kind} {sending.target}",
            kind=SpanKind.CLIENT if sending.kind == "ask" else SpanKind.PRODUCER,
            attributes=attributes,
        ):
            self.propagator.inject(sending.headers)
            return await call_next()
