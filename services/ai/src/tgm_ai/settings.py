"""Process settings of the ai service (environment, prefix `TGM_AI_`). Provider configuration is data,
saved with `save-ai-settings`; these only tune the process."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tgm_runtime import RuntimeSettings


class AiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGM_AI_", extra="ignore")

    #: Seconds a URL download for `rag-add-document` may take.
    fetch_timeout_seconds: float = 30.0
    #: Re-embed existing knowledge in the background when the embedding provider changes.
    reembed_on_change: bool = True
    #: The runtime's own settings (NATS_URL, MONGODB_URI, TGM_* of the runtime); tests give their own.
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
