"""The sending rules in force: the `pacing` and `compliance` settings sections, read when needed
(every replica sees a `save-settings` at once), as `Limits` and `StopWords`."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tgm_contracts.settings import ComplianceSettings, PacingSettings

from .compliance import StopWords
from .pacing import Limits

log = logging.getLogger("tgm.campaign")


class Rules:
    """`limits()` and `stop_words()` from the stored settings sections (their defaults when unreadable)."""

    def __init__(self, settings_section: Callable[[str], Awaitable[Any]]) -> None:
        self._settings_section = settings_section
        self._warned: dict[str, float] = {}
        self._stop_words: tuple[tuple[str, ...], StopWords] | None = None

    async def _section(self, name: str, model: type[Any]) -> Any:
        """A settings section; its defaults (conservative by design) if the stored one is unreadable."""
        try:
            return await self._settings_section(name)
        except Exception as exc:
            now = time.monotonic()
            if now - self._warned.get(name, -1e9) > 60:
                self._warned[name] = now
                log.error("settings section %r unreadable (%s); using its defaults", name, exc)
            return model()

    async def limits(self) -> Limits:
        pacing: PacingSettings = await self._section("pacing", PacingSettings)
        compliance: ComplianceSettings = await self._section("compliance", ComplianceSettings)
        return Limits.from_settings(pacing, compliance)

    async def compliance(self) -> ComplianceSettings:
        """The `compliance` section (triggerCooldownSeconds), for automation's rule engine."""
        section: ComplianceSettings = await self._section("compliance", ComplianceSettings)
        return section

    async def stop_words(self) -> StopWords:
        compliance: ComplianceSettings = await self._section("compliance", ComplianceSettings)
        key = tuple(compliance.stop_words)
        if self._stop_words is None or self._stop_words[0] != key:
            self._stop_words = (key, StopWords(key))
        return self._stop_words[1]
