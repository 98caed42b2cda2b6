"""Every process option of the tailchat service, read from the environment (`TGM_TAILCHAT_*`).

The limits here are the server's (the fork blooworet/tailchat, /work/shared/reference/outside-platforms.md
section 1): it has no global HTTP rate limit, but answers at most `callback_answer_limit` callback
answers per bot before it wants 60 quiet seconds, and forgets a press's traceId 30 s after it.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tgm_runtime import RuntimeSettings


class TailchatSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGM_TAILCHAT_", extra="ignore")

    #: The runtime's own options (`TGM_*`: bus, database, replica id); tests pass their own.
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings, exclude=True)

    #: The gateway's public base URL as Tailchat reaches it (e.g. https://tgm.example.com); with it,
    #: rotate-tailchat-callback-token sets the bot's callbackUrl itself. Empty: the operator sets it.
    public_url: str = ""
    #: Per HTTP call to a Tailchat server.
    timeout_seconds: float = Field(15.0, gt=0)
    #: Calls one app makes at most per second (the server has no HTTP limit; this keeps us polite and
    #: one app's burst from starving the others).
    calls_per_second: float = Field(20.0, gt=0)
    #: Attempts of a call that is safe to repeat (reads, ensureDMWithUser, edits, bot settings) on a
    #: transport failure or a 502/503/504; sends, deletes and callback answers are tried once (a
    #: refused connection, where nothing reached the server, is retried for every call).
    attempts: int = Field(3, ge=1, le=10)
    retry_backoff_seconds: float = Field(0.25, ge=0)
    #: `app.bot.callbackAnswerRateLimit` of the server (its default 60; no API changes it).
    callback_answer_limit: int = Field(60, ge=1)
    #: The quiet time after which the server's answer counter starts again (its TTL, re-set per answer).
    callback_answer_window_seconds: float = Field(60.0, gt=0)
    #: Days a sent message's meta is remembered, so an edit can send its inline actions again.
    message_memory_days: int = Field(30, ge=1, le=3650)
