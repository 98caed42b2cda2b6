"""ai's own metrics on the runtime's registry: provider latency, tokens and provider errors, recorded once
per provider call (deploy/METRICS.md, the dashboard's AI row and the TgmAiLatencyHigh alert use them)."""

from __future__ import annotations

import pytest
from tgm_contracts.commands import ai as C

from .conftest import err, ok
from .test_remote import configure, gen

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


def sample(runtime, name: str, **labels: str) -> float:
    value = runtime.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_provider_calls_are_timed_and_their_tokens_counted(client, runtime):
    r = await ok(client, C.AiGenerateResponse, gen("hello, what do you sell?"))
    assert r["provider"] == "local"
    assert sample(runtime, "tgm_ai_request_seconds_count", provider="local") == 1
    assert sample(runtime, "tgm_ai_request_seconds_sum", provider="local") > 0
    tokens = r["usage"]
    assert (
        sample(runtime, "tgm_ai_tokens_total", provider="local", model=r["model"], kind="prompt")
        == (tokens["promptTokens"])
    )
    assert (
        sample(runtime, "tgm_ai_tokens_total", provider="local", model=r["model"], kind="completion")
        == (tokens["completionTokens"])
    )
    assert tokens["completionTokens"] > 0


async def test_provider_errors_are_counted_by_code(client, runtime, fake_openai):
    await configure(client, fake_openai, defaultProvider="openai")
    fake_openai.state.faults.set("401")
    await err(client, C.AiGenerateResponse, gen("hello?"), "UPSTREAM_AUTH")
    await err(client, C.AiGenerateResponse, gen("hello?", streamId="metrics-err-1"), "UPSTREAM_AUTH")
    assert sample(runtime, "tgm_ai_provider_errors_total", provider="openai", code="UPSTREAM_AUTH") == 2
    assert sample(runtime, "tgm_ai_request_seconds_count", provider="openai") == 2
