"""The tailchat service's Prometheus metrics (`/metrics`, on the runtime's registry): one sample per
call to a Tailchat server, by operation (`sendMessage`, `answerCallbackQuery`, …) and outcome (`ok` or
our error code: UPSTREAM_AUTH, CONFLICT, UNAVAILABLE, …). Labels are closed vocabularies — never an app
id, a user or a text."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

#: Tailchat answers in milliseconds; a slow server is cut at the call timeout (15 s by default).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)


class TailchatMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.calls = Counter(
            "tgm_tailchat_calls",
            "Calls to Tailchat servers by operation and outcome (ok, or the error code answered)",
            ["operation", "outcome"],
            registry=r,
        )
        self.call_seconds = Histogram(
            "tgm_tailchat_call_seconds",
            "Time of one call to a Tailchat server, retries and pacing waits included",
            ["operation"],
            registry=r,
            buckets=BUCKETS,
        )
        self.retries = Counter(
            "tgm_tailchat_retries",
            "Calls to Tailchat tried again (a transport failure or 502/503/504 of a call safe to repeat)",
            ["operation"],
            registry=r,
        )

    def observe(self, operation: str, seconds: float, outcome: str) -> None:
        self.call_seconds.labels(operation).observe(seconds)
        self.calls.labels(operation, outcome).inc()
