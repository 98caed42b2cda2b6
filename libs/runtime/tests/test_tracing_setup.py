"""Tracing is installed only when spans have somewhere to go (tracing.py), and the standard
`OTEL_EXPORTER_OTLP_ENDPOINT` names that place as `TGM_OTLP_ENDPOINT` does (issue 17, finding 5)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from tgm_runtime import RuntimeSettings
from tgm_runtime.tracing import setup_tracing

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The providers `setup_tracing` installs, kept from the process-wide (set-once) global."""
    seen: list[Any] = []
    monkeypatch.setattr(trace, "set_tracer_provider", seen.append)
    return seen


def test_the_standard_otlp_variable_is_read_and_ours_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TGM_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert RuntimeSettings().otlp_endpoint is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert RuntimeSettings().otlp_endpoint == "http://collector:4318"
    monkeypatch.setenv("TGM_OTLP_ENDPOINT", "http://ours:4318")
    assert RuntimeSettings().otlp_endpoint == "http://ours:4318"


def test_no_provider_without_an_endpoint(installed: list[Any]) -> None:
    setup_tracing("gateway", None)
    setup_tracing("gateway", "")
    assert installed == []  # no SDK provider: spans cost nothing


def test_an_endpoint_installs_a_sampled_provider_for_the_service(installed: list[Any]) -> None:
    setup_tracing("campaign", "http://collector:4318/", 0.25)
    [provider] = installed
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "tgm-campaign"
    assert "0.25" in provider.sampler.get_description()
    provider.shutdown()
