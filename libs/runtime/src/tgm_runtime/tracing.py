"""OpenTelemetry: a tracer provider per service, only when spans have somewhere to go.

*Decision (issue 16):* without an OTLP endpoint (`TGM_OTLP_ENDPOINT`, or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT`) no SDK provider is installed, and the hot paths ask `active()` before
they open a span or inject `traceparent`: tracing that goes nowhere costs nothing (it was half of the
gateway's CPU per command). With an endpoint, `TGM_TRACE_SAMPLE_RATIO` (default 1.0) samples root
spans by trace id; a sampled-out trace still propagates its context, and a service follows the
caller's decision (parent-based). A test or a host that installs its own SDK provider turns tracing on
the same way.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased


def active() -> bool:
    """Whether an SDK tracer provider is installed (spans are recorded and propagated)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def setup_tracing(service: str, otlp_endpoint: str | None, sample_ratio: float = 1.0) -> None:
    if not otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": f"tgm-{service}"}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces"))
    )
    trace.set_tracer_provider(provider)
