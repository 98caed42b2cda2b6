"""Latency histograms over the fixed bounds of `tgm_contracts.telemetry.LATENCY_BOUNDS_MS`: merging
(adding counts) and percentiles (interpolated inside the bucket the rank falls in)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tgm_contracts.commands.analytics import LatencySummary
from tgm_contracts.telemetry import HISTOGRAM_SIZE, LATENCY_BOUNDS_MS


def percentile(hist: Sequence[int], q: float, max_ms: float) -> float | None:
    """The `q` quantile (0 < q <= 1) of the values counted in `hist`, in ms; None when it is empty.

    The rank's bucket is found by cumulative count and the value interpolated linearly between the
    bucket's lower and upper bounds; the overflow bucket (and any bucket above the largest value seen)
    ends at `max_ms`, so no percentile exceeds the real maximum.
    """
    if not 0 < q <= 1:
        raise ValueError("q is in (0, 1]")
    total = sum(hist)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(hist):
        if count and seen + count >= rank:
            lower = LATENCY_BOUNDS_MS[i - 1] if i > 0 else 0.0
            upper = LATENCY_BOUNDS_MS[i] if i < len(LATENCY_BOUNDS_MS) else max_ms
            upper = min(upper, max_ms) if max_ms > 0 else upper
            lower = min(lower, upper)
            return round(lower + (upper - lower) * (rank - seen) / count, 3)
        seen += count
    return round(max_ms, 3)  # unreachable with consistent counts


@dataclass
class Merged:
    """Counts of one operation (or one service) summed over samples and replicas."""

    count: int = 0
    errors: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0
    hist: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_SIZE)

    def add(self, count: int, errors: int, sum_ms: float, max_ms: float, hist: Sequence[int]) -> None:
        if len(hist) != HISTOGRAM_SIZE:
            raise ValueError(f"a histogram has {HISTOGRAM_SIZE} buckets, not {len(hist)}")
        self.count += count
        self.errors += errors
        self.sum_ms += sum_ms
        self.max_ms = max(self.max_ms, max_ms)
        for i, c in enumerate(hist):
            self.hist[i] += c

    def merge(self, other: Merged) -> None:
        self.add(other.count, other.errors, other.sum_ms, other.max_ms, other.hist)

    @property
    def error_rate(self) -> float:
        return round(self.errors / self.count, 4) if self.count else 0.0

    def latency(self) -> LatencySummary:
        if not self.count:
            return LatencySummary()
        return LatencySummary(
            avg_ms=round(self.sum_ms / self.count, 3),
            p50_ms=percentile(self.hist, 0.50, self.max_ms),
            p95_ms=percentile(self.hist, 0.95, self.max_ms),
            p99_ms=percentile(self.hist, 0.99, self.max_ms),
            max_ms=round(self.max_ms, 3),
        )


def merge_all(parts: Iterable[Merged]) -> Merged:
    out = Merged()
    for p in parts:
        out.merge(p)
    return out
