"""Every process option of the analytics service, read from the environment (`TGM_ANALYTICS_*`).

Tests and tools/stack shorten the loops through these names, so they stay as they are. What an operator
changes at run time (retention days, alert thresholds) is not here: it is the `analytics` settings
section, read from the database each round.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tgm_runtime import RuntimeSettings


class AnalyticsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGM_ANALYTICS_", extra="ignore")

    #: The runtime's own options (`TGM_*`: bus, database, replica id); tests pass their own.
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings, exclude=True)

    #: How often every other service's `sys.info` is asked; 0 turns the probe off.
    probe_seconds: float = Field(30.0, ge=0)
    probe_timeout_seconds: float = Field(3.0, gt=0)
    #: Misses in a row that make a service `down`.
    probe_misses: int = Field(2, ge=1)

    #: How often the report scheduler looks for due schedules; 0 turns it off (tests run ticks by hand).
    scheduler_seconds: float = Field(15.0, ge=0)
    #: Stored reports kept per schedule.
    reports_keep: int = Field(20, ge=1, le=1000)
    webhook_timeout_seconds: float = Field(15.0, gt=0)
    telegram_timeout_seconds: float = Field(30.0, gt=0)
