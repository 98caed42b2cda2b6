"""The settings sections a service owns: stored, validated and versioned in its own database."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from tgm_contracts import Service, validation_details
from tgm_contracts.settings import SettingsSection, sections_of

from .errors import Conflict, Invalid, NotFound

COLLECTION = "_settings"

#: Other replicas of a service see a saved section within this many seconds.
CACHE_SECONDS = 5.0


class SettingsStore:
    def __init__(self, db: AsyncDatabase[Any], service: Service) -> None:
        self.db = db
        self.service = service
        self.models = sections_of(service)
        self._cache: dict[str, tuple[float, BaseModel]] = {}

    def _model(self, section: str) -> type[BaseModel]:
        try:
            return self.models[section]
        except KeyError:
            raise NotFound(f"settings section {section!r} is not owned by {self.service.value}") from None

    async def get(self, section: str) -> SettingsSection:
        model = self._model(section)
        doc = await self.db[COLLECTION].find_one({"_id": section})
        values = model.model_validate(doc["values"] if doc else {})
        self._cache[section] = (time.monotonic(), values)
        return SettingsSection(
            section=section,
            owner=self.service,
            version=doc["version"] if doc else 0,
            values=values.model_dump(mode="json", by_alias=True),
            updated_at=doc.get("updated_at") if doc else None,
        )

    async def values(self, section: str) -> BaseModel:
        """Current values, read through a short cache (hot paths such as pacing call this often)."""
        cached = self._cache.get(section)
        if cached is None or time.monotonic() - cached[0] > CACHE_SECONDS:
            await self.get(section)
        return self._cache[section][1]

    async def all(self, sections: list[str] | None = None) -> list[SettingsSection]:
        names = [s for s in self.models if sections is None or s in sections]
        return [await self.get(s) for s in names]

    async def save(
        self, section: str, changes: dict[str, Any], expected_version: int | None
    ) -> SettingsSection:
        model = self._model(section)
        current = await self.get(section)
        if expected_version is not None and expected_version != current.version:
            raise Conflict(
                f"settings section {section!r} changed since version {expected_version}",
                {"currentVersion": current.version},
            )
        try:
            merged = model.model_validate({**current.values, **changes})
        except ValidationError as exc:
            raise Invalid(f"invalid settings for section {section!r}", validation_details(exc)) from None
        return await self._write(section, merged, current.version)

    async def reset(self, section: str) -> SettingsSection:
        current = await self.get(section)
        return await self._write(section, self._model(section)(), current.version)

    async def _write(self, section: str, values: BaseModel, version: int) -> SettingsSection:
        doc = values.model_dump(mode="json", by_alias=True)
        result = await self.db[COLLECTION].update_one(
            {"_id": section, "version": version} if version else {"_id": section},
            {"$set": {"values": doc, "updated_at": datetime.now(UTC)}, "$inc": {"version": 1}},
            upsert=version == 0,
        )
        if result.matched_count == 0 and result.upserted_id is None:
            raise Conflict(f"settings section {section!r} changed concurrently; read it again")
        return await self.get(section)
