"""The `roles`, `scripts` and `scenarios` collections of collaboration (the library).

Document shapes (fields are the contracts' specs dumped by field name, snake_case, nested as in
the contract; plus what is listed here):

- `roles`: `_id` (`role_…`), `RoleSpec` fields (`name`, `type`, `bound_account_id`, `personality`,
  `ai_config`, `responsibilities`, `is_active`), `name_key` (case-folded name, unique), `deleting`
  (when a delete began checking what uses it; null otherwise), `created_at`, `updated_at`.
- `scripts`: `_id` (`scr_…`), `ScriptSpec` fields (`name`, `description`, `roles` (the slots),
  `stages`, `is_active`), `name_key` (unique), `runs` / `completed` (counters the runs bump through
  `RoleLibrary.count_run`), `deleting`, `created_at`, `updated_at`.
- `scenarios`: `_id` (`scn_…`), `ScenarioSpec` fields (`name`, `description`, `script_id`,
  `role_bindings` {slot: role id}, `where`, `chat`, `new_group`, `start_on`, `lead_stages`,
  `max_concurrent_runs`, `is_active`), `role_ids` (the bindings' values, indexed: "which scenarios
  bind this role"), `name_key` (unique), `runs_total` (counter), `created_at`, `updated_at`.

One active role per account is the partial unique index `active_account` (active roles with an
account); `RoleLibrary` also checks first, so the answer names the other role, and the index settles
two saves racing each other.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

#: collection -> [(keys, options)], created by migration 4.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "roles": [
        ([("name_key", ASCENDING)], {"unique": True, "name": "name_unique"}),
        (
            [("bound_account_id", ASCENDING)],
            {
                "unique": True,
                "name": "active_account",
                "partialFilterExpression": {"is_active": True, "bound_account_id": {"$type": "string"}},
            },
        ),
        ([("type", ASCENDING)], {"name": "type"}),
    ],
    "scripts": [([("name_key", ASCENDING)], {"unique": True, "name": "name_unique"})],
    "scenarios": [
        ([("name_key", ASCENDING)], {"unique": True, "name": "name_unique"}),
        ([("script_id", ASCENDING)], {"name": "script"}),
        ([("role_ids", ASCENDING)], {"name": "roles"}),
    ],
}

KINDS = ("roles", "scripts", "scenarios")
PREFIX = {"roles": "role_", "scripts": "scr_", "scenarios": "scn_"}


class NameTaken(Exception):
    """Another document of the kind has this (case-folded) name."""


class AccountTaken(Exception):
    """Another active role is bound to the account (the partial unique index said so)."""


def name_key(name: str) -> str:
    return name.strip().casefold()


def _duplicate(exc: DuplicateKeyError) -> Exception:
    details = exc.details or {}
    text = f"{details.get('keyPattern', '')} {details.get('errmsg', '')} {exc}"
    return AccountTaken() if "bound_account_id" in text or "active_account" in text else NameTaken()


class LibraryStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.roles = db["roles"]
        self.scripts = db["scripts"]
        self.scenarios = db["scenarios"]

    def _c(self, kind: str) -> AsyncCollection[Any]:
        if kind not in KINDS:
            raise ValueError(kind)
        return {"roles": self.roles, "scripts": self.scripts, "scenarios": self.scenarios}[kind]

    # --- any kind ---------------------------------------------------------------------------------

    async def create(self, kind: str, fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """Insert a new document; raises NameTaken / AccountTaken."""
        doc: dict[str, Any] = {
            "_id": PREFIX[kind] + uuid.uuid4().hex[:16],
            **fields,
            "name_key": name_key(fields["name"]),
            "created_at": now,
            "updated_at": now,
        }
        if kind == "scripts":
            doc.update(runs=0, completed=0)
        if kind == "scenarios":
            doc["runs_total"] = 0
        try:
            await self._c(kind).insert_one(doc)
        except DuplicateKeyError as exc:
            raise _duplicate(exc) from None
        return doc

    async def replace(
        self, kind: str, doc_id: str, fields: Mapping[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        """Set the spec fields (counters and created_at kept); None when it does not exist."""
        update = {**fields, "name_key": name_key(fields["name"]), "updated_at": now}
        try:
            return await self._c(kind).find_one_and_update(
                {"_id": doc_id}, {"$set": update}, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError as exc:
            raise _duplicate(exc) from None

    async def restore(self, kind: str, doc: Mapping[str, Any]) -> None:
        """Put back `doc` as it was (a save undone because what it referred to went away)."""
        await self._c(kind).replace_one({"_id": doc["_id"]}, dict(doc), upsert=True)

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        return await self._c(kind).find_one({"_id": doc_id})

    async def get_many(self, kind: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        docs = await self._c(kind).find({"_id": {"$in": list(dict.fromkeys(ids))}}).to_list()
        return {d["_id"]: d for d in docs}

    async def delete(self, kind: str, doc_id: str) -> bool:
        return (await self._c(kind).delete_one({"_id": doc_id})).deleted_count == 1

    async def mark_deleting(self, kind: str, doc_id: str, at: datetime | None) -> bool:
        """Flag a document a delete is checking (since `at`), or unflag it (None); False when it
        does not exist."""
        found = await self._c(kind).update_one({"_id": doc_id}, {"$set": {"deleting": at}})
        return found.matched_count == 1

    # --- roles ------------------------------------------------------------------------------------

    async def find_roles(
        self, *, type: str | None = None, account_id: str | None = None, active_only: bool = False
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if type is not None:
            query["type"] = type
        if account_id is not None:
            query["bound_account_id"] = account_id
        if active_only:
            query["is_active"] = True
        return await self.roles.find(query).sort([("name_key", ASCENDING)]).to_list()

    async def active_role_of(self, account_id: str, other_than: str | None) -> dict[str, Any] | None:
        query: dict[str, Any] = {"bound_account_id": account_id, "is_active": True}
        if other_than is not None:
            query["_id"] = {"$ne": other_than}
        return await self.roles.find_one(query)

    async def roles_of_accounts(self, account_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Roles bound to these accounts (active ones first, then by name)."""
        if not account_ids:
            return []
        docs = await self.roles.find(
            {"bound_account_id": {"$in": list(dict.fromkeys(account_ids))}}
        ).to_list()
        return sorted(docs, key=lambda d: (not d.get("is_active", True), d.get("name_key", "")))

    # --- scripts ----------------------------------------------------------------------------------

    async def find_scripts(
        self, *, active_only: bool = False, search: str | None = None
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if active_only:
            query["is_active"] = True
        if search:
            rx = {"$regex": re.escape(search), "$options": "i"}
            query["$or"] = [{"name": rx}, {"description": rx}]
        return await self.scripts.find(query).sort([("name_key", ASCENDING)]).to_list()

    async def count_run(self, script_id: str, scenario_id: str | None, *, completed: bool) -> None:
        """A run of the script started (`completed` False) or completed (True)."""
        await self.scripts.update_one({"_id": script_id}, {"$inc": {"completed" if completed else "runs": 1}})
        if scenario_id is not None and not completed:
            await self.scenarios.update_one({"_id": scenario_id}, {"$inc": {"runs_total": 1}})

    # --- scenarios --------------------------------------------------------------------------------

    async def find_scenarios(
        self, *, active_only: bool = False, script_id: str | None = None
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if active_only:
            query["is_active"] = True
        if script_id is not None:
            query["script_id"] = script_id
        return await self.scenarios.find(query).sort([("name_key", ASCENDING)]).to_list()

    async def scenarios_binding(self, role_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """role id -> the scenarios (id and name) that bind it."""
        out: dict[str, list[dict[str, Any]]] = {r: [] for r in role_ids}
        if not role_ids:
            return out
        cursor = self.scenarios.find({"role_ids": {"$in": list(role_ids)}}, {"name": 1, "role_ids": 1})
        for doc in await cursor.sort([("name_key", ASCENDING)]).to_list():
            for rid in doc.get("role_ids") or []:
                if rid in out:
                    out[rid].append({"_id": doc["_id"], "name": doc.get("name")})
        return out

    async def active_on_stages(self, stages: Sequence[str], other_than: str | None) -> list[dict[str, Any]]:
        """Active scenarios started on any of these lead stages (id and name), but `other_than`."""
        query: dict[str, Any] = {
            "is_active": True,
            "start_on": "lead_stage",
            "lead_stages": {"$in": list(stages)},
        }
        if other_than is not None:
            query["_id"] = {"$ne": other_than}
        return await self.scenarios.find(query, {"name": 1, "lead_stages": 1}).to_list(20)

    async def scenarios_using_script(self, script_id: str) -> list[dict[str, Any]]:
        return await self.scenarios.find({"script_id": script_id}, {"name": 1}).to_list()
