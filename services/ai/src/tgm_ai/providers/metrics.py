"""The ai service's Prometheus metrics (`/metrics`, on the runtime's registry): one sample per provider
chat call, recorded where usage is recorded (`ProviderService.record`). Labels are closed vocabularies:
the provider name, the model the provider answered with, the token kind and our error code — never a
prompt, a user or an id."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from .base import ChatResult, ProviderError

#: Provider calls take from milliseconds (local) to a minute (a slow model): buckets to 60 s.
BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)


class AiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.request_seconds = Histogram(
            "tgm_ai_request_seconds",
            "Time of one provider chat call (completion, streamed or not), failures included",
            ["provider"],
            registry=r,
            buckets=BUCKETS,
        )
        self.tokens = Counter(
            "tgm_ai_tokens_total",
            "Tokens the providers reported, by provider, model and kind (prompt, completion)",
            ["provider", "model", "kind"],
            registry=r,
        )
        self.provider_errors = Counter(
            "tgm_ai_provider_errors_total",
            "Failed provider calls by provider and error code (TIMEOUT, UPSTREAM_AUTH, UNAVAILABLE, ...)",
            ["provider", "code"],
            registry=r,
        )

    def observe(
        self,
        provider: str,
        model: str,
        seconds: float,
        result: ChatResult | None,
        error: ProviderError | None,
    ) -> None:
        self.request_seconds.labels(provider).observe(seconds)
        if result is not None:
            self.tokens.labels(provider, model, "prompt").inc(result.prompt_tokens or 0)
            self.tokens.labels(provider, model, "completion").inc(result.completion_tokens or 0)
        if error is not None:
            self.provider_errors.labels(provider, error.code.value).inc()
