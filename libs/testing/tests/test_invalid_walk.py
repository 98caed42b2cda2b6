"""The validate-before-write walk finds what it is for: a refused payload that wrote (by snapshot and
by change stream), an INTERNAL, no answer in time, and a payload taken that its contract refuses."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field
from pymongo import AsyncMongoClient
from tgm_testing.invalid import Writes, schema_cases, snapshot, walk

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class Req(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=5)
    note: str | None = None


class Save:
    NAME = "save-thing"
    Request = Req


def envelope(code: str | None) -> dict[str, Any]:
    return (
        {"ok": True, "data": {}} if code is None else {"ok": False, "error": {"code": code, "message": "m"}}
    )


async def test_the_walk_reports_each_kind_of_fault(mongo_server: Any, fresh_db_name: str) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri)
    db = client[fresh_db_name]
    await db.things.insert_one({"_id": "a", "name": "a"})

    async def call(cmd: Any, payload: dict[str, Any]) -> dict[str, Any]:
        name, note = payload.get("name"), payload.get("note", "")
        if name == "x" * 6:  # too long: written before it is refused
            await db.things.update_one({"_id": "a"}, {"$set": {"name": name}})
            return envelope("VALIDATION_ERROR")
        if note is None:  # valid, but the service fails on it after a partial write
            await db.things.insert_one({"_id": "half"})
            return envelope("INTERNAL")
        if not isinstance(name, str):
            await asyncio.sleep(1)  # hangs
        if payload.get("noSuchField"):
            return envelope(None)  # taken though the contract refuses it
        return envelope("VALIDATION_ERROR")

    try:
        for state in (lambda: snapshot(db), None):
            await db.things.delete_many({"_id": {"$ne": "a"}})
            await db.things.update_one({"_id": "a"}, {"$set": {"name": "a"}})
            async with Writes(client, [db.name]) as writes:
                walked = await walk(
                    [(Save, schema_cases(Save, {"name": "a"}))], call, state or writes.state, timeout=0.2
                )
            text = "\n".join(walked.failures)
            assert "save-thing an unknown field: accepted though its contract refuses it" in text
            assert "save-thing note: null: INTERNAL" in text
            assert f"save-thing note: null: INTERNAL but the stored state ({db.name}.things) changed" in text
            assert "save-thing name: an object: no answer within 0.2 s" in text
            assert f"({db.name}.things) changed during ['name: over maxLength']" in text
            assert len(walked.failures) == 6, text
    finally:
        await client.close()
