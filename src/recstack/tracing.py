"""Optional OpenTelemetry tracing: spans for HTTP requests, retrieval, reranking and the store.

Off unless the standard OpenTelemetry environment asks for it (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_TRACES_EXPORTER=otlp``; ``OTEL_SDK_DISABLED=true``
wins) and the ``otel`` extra is installed; the exporter then reads every other ``OTEL_*``
variable itself (headers, timeout, ``OTEL_SERVICE_NAME``). While off, ``span()`` hands back one
shared do-nothing context manager: the hot path pays a global read and a call, and never imports
OpenTelemetry.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from recstack.errors import MissingExtraError

_NOOP = contextlib.nullcontext()
_tracer: Any = None
_provider: Any = None
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def requested(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment asks for traces to be exported.

    >>> requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    True
    >>> requested({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"})
    False
    >>> requested({})
    False
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "otlp":
        return True
    return any(env.get(name) for name in ENDPOINT_VARS)


def enabled() -> bool:
    """Whether spans are being recorded."""
    return _tracer is not None


def span(name: str, **attributes: Any) -> Any:
    """A context manager timing ``name`` as a span (a shared no-op when tracing is off)."""
    tracer = _tracer
    if tracer is None:
        return _NOOP
    return tracer.start_as_current_span(name, attributes=attributes or None)


def configure(service_name: str = "recstack", exporter: Any = None) -> bool:
    """Start recording spans: to ``exporter`` (tests pass an ``InMemorySpanExporter``) or, when
    the environment asks for it (``requested``), to the OTLP/HTTP exporter. Returns whether
    tracing is on. Raises ``MissingExtraError`` naming the ``otel`` extra if it is missing."""
    global _tracer, _provider
    if exporter is None and not requested():
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise MissingExtraError("opentelemetry-sdk", "otel") from exc
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise MissingExtraError("opentelemetry-exporter-otlp-proto-http", "otel") from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _provider = provider
    _tracer = provider.get_tracer("recstack")
    return True


def shutdown() -> None:
    """Flush and stop exporting (spans become no-ops again)."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def extract_context(headers: list[tuple[bytes, bytes]]) -> Any:
    """The caller's trace context from W3C ``traceparent``/``tracestate`` headers (or None)."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in headers
        if k in (b"traceparent", b"tracestate")
    }
    return TraceContextTextMapPropagator().extract(carrier) if carrier else None


def request_span(name: str, context: Any, **attributes: Any) -> Any:
    """A server span for one HTTP request, child of the caller's ``context`` when given."""
    tracer = _tracer
    if tracer is None:
        return _NOOP
    from opentelemetry.trace import SpanKind

    return tracer.start_as_current_span(
        name, context=context, kind=SpanKind.SERVER, attributes=attributes or None
    )
