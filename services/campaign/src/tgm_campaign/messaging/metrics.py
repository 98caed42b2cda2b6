"""The queue's Prometheus metrics (`/metrics`; see the README for what each one means)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Gauge(
            "tgm_campaign_jobs", "Jobs by state (last queue snapshot)", ["state"], registry=registry
        )
        self.oldest = Gauge(
            "tgm_campaign_oldest_pending_seconds", "Age of the oldest due, unsent job", registry=registry
        )
        self.sends = Counter(
            "tgm_campaign_dispatch_total",
            "Dispatch outcomes (sent, failed, flood_wait, …)",
            ["outcome"],
            registry=registry,
        )
        self.waiting = Gauge(
            "tgm_campaign_waiting_by_limit",
            "Due jobs held back, by the limit holding them (last round)",
            ["limit"],
            registry=registry,
        )
        self.holds = Counter(
            "tgm_campaign_limit_waits_total",
            "Times a due job was held back by a limit",
            ["limit"],
            registry=registry,
        )
        self.latency = Histogram(
            "tgm_campaign_send_seconds",
            "Time of the send call to tg-session",
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.rounds = Counter("tgm_campaign_scheduler_rounds_total", "Scheduler rounds", registry=registry)
        self.round_seconds = Histogram(
            "tgm_campaign_scheduler_round_seconds",
            "Time of one scheduler round (reading due jobs and limits, planning)",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
