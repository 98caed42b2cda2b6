"""The campaign service's process options: one `BaseSettings` read from `TGM_CAMPAIGN_*`.

These say how this replica runs (whether it dispatches, how many sends at once, how long a send may
take). The sending limits themselves are not here: they are the `pacing` and `compliance` settings
sections (`save-settings`), shared by every replica and changed without a restart.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tgm_runtime import RuntimeSettings


class CampaignSettings(BaseSettings):
    """Process options (`TGM_CAMPAIGN_*`); `runtime` is the runtime's own (NATS, database, replica)."""

    model_config = SettingsConfigDict(env_prefix="TGM_CAMPAIGN_", extra="ignore")

    scheduler: bool = Field(True, description="Run the dispatch loop in this replica.")
    max_in_flight: int = Field(64, ge=1, le=1000, description="Concurrent sends of this replica.")
    send_timeout_seconds: float = Field(30.0, gt=0, le=300, description="Deadline of one send call.")
    claim_ttl_seconds: float = Field(
        90.0, gt=0, le=3600, description="A claim not settled by then returns to the queue (> send timeout)."
    )
    runtime: RuntimeSettings = Field(
        default_factory=RuntimeSettings, exclude=True, description="NATS, database, replica id."
    )

    @property
    def claim_ttl(self) -> float:
        """The claim lease, never shorter than a send may take (or a slow send would be sent twice)."""
        return max(self.claim_ttl_seconds, self.send_timeout_seconds + 5)
