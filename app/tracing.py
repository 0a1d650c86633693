"""Traces with OpenTelemetry, off unless OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: then the API, each worker process and the calls they
make to the provider export their spans over OTLP/HTTP, and one trace follows an order from
`POST /orders` through every saga task it causes.

A message goes through the outbox: committed with the request or task, sent after commit (by the
API's relay thread, or later by the sweep). So the outbox row keeps the trace context it was
written in, and the relay sends it within that context; Celery's instrumentation then hands it to
the task in the message headers. Everything here costs nothing while tracing is off: nothing of
OpenTelemetry is even imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

_started: dict[str, Any] = {}  # "provider": the TracerProvider, once tracing has started


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def start(
    service: str, flask_app: Flask | None = None, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Trace this process as `service` (OTEL_SERVICE_NAME wins), exporting over OTLP/HTTP, or
    to `exporter` (a test's). Does nothing when neither is configured, or when already started."""
    if "provider" in _started or (exporter is None and not configured()):
        return _started.get("provider")
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if flask_app is not None:
        FlaskInstrumentor().instrument_app(flask_app, tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    _started["provider"] = provider
    return provider


def stop() -> None:
    """Flush what is pending and undo the instrumentation (a test's, or a process's at exit)."""
    provider = _started.pop("provider", None)
    if provider is None:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    provider.shutdown()
    CeleryInstrumentor().uninstrument()
    RequestsInstrumentor().uninstrument()


def current_context() -> str | None:
    """The W3C traceparent of the span running now, for an outbox row to keep; None when off."""
    if "provider" not in _started:
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def resumed(traceparent: str | None) -> Iterator[None]:
    """Run the block within the trace a message was written in."""
    if not traceparent or "provider" not in _started:
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)
