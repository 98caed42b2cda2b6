"""The first admin key for deployments (issue 17 finding 1): from TGM_ADMIN_KEY_FILE, created once and
stored as one record however many replicas start at once; the fixed-id bootstrap without a file; and
`tgm-admin` creating, rotating and revoking keys against the database when locked out."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from tgm_gateway.keys.cache import KeyCache
from tgm_gateway.keys.limiter import FailedAuthLimiter
from tgm_gateway.keys.service import BOOTSTRAP_KEY_ID, ApiKeys, parse_key
from tgm_gateway.keys.store import KeyStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
async def db(mongo_server: Any) -> Any:
    prefix = f"k{uuid.uuid4().hex[:8]}_"
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    try:
        yield prefix, client[prefix + "tgm_gateway"]
    finally:
        await client.close()


def replica(database: Any) -> ApiKeys:
    """One gateway replica's key service (its own cache) on the shared database."""
    return ApiKeys(KeyStore(database), KeyCache(0.01, 0.01, 100), FailedAuthLimiter(100.0, 100))


async def test_replicas_starting_at_once_store_one_admin_key_from_the_file(db: Any, tmp_path: Path) -> None:
    _, database = db
    path = tmp_path / "secret" / "admin.key"
    replicas = [replica(database) for _ in range(4)]
    ids = await asyncio.gather(*(r.from_file(path) for r in replicas))
    assert len(set(ids)) == 1
    key = path.read_text().strip()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert await database["api_keys"].count_documents({}) == 1
    for r in replicas:
        who = await r.authenticate(key)
        assert who is not None and who.role.label == "admin" and who.key_id == ids[0]
    doc = await database["api_keys"].find_one({})
    assert key not in json.dumps(doc, default=str)  # stored hashed
    # A restart with the same file changes nothing.
    assert await replica(database).from_file(path) == ids[0]
    assert await database["api_keys"].count_documents({}) == 1


async def test_a_file_never_replaces_or_revives_a_stored_key(db: Any, tmp_path: Path) -> None:
    _, database = db
    path = tmp_path / "admin.key"
    keys = replica(database)
    key_id = await keys.from_file(path)
    original = path.read_text().strip()
    path.write_text(f"tgm_{key_id}_another-secret\n")
    await keys.from_file(path)
    assert await keys.authenticate(path.read_text().strip()) is None
    assert await keys.authenticate(original) is not None
    path.write_text(original)
    await keys.revoke(key_id)
    await keys.from_file(path)
    assert await keys.authenticate(original) is None
    path.write_text("not a key\n")
    with pytest.raises(ValueError, match="does not hold an API key"):
        await keys.from_file(path)


async def test_first_start_without_a_file_mints_one_key_across_replicas(db: Any, tmp_path: Path) -> None:
    _, database = db
    dirs = [tmp_path / f"r{i}" for i in range(4)]
    made = await asyncio.gather(*(replica(database).bootstrap(d) for d in dirs))
    winners = [k for k in made if k]
    assert len(winners) == 1 and await database["api_keys"].count_documents({}) == 1
    parsed = parse_key(winners[0])
    assert parsed is not None and parsed[0] == BOOTSTRAP_KEY_ID
    assert [(d / "admin.key").exists() for d in dirs].count(True) == 1


def admin(prefix: str, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MONGODB_URI": uri, "TGM_DATABASE_PREFIX": prefix}
    return subprocess.run(
        [sys.executable, "-m", "tgm_gateway.admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_tgm_admin_creates_rotates_and_revokes_keys_when_locked_out(
    db: Any, mongo_server: Any, tmp_path: Path
) -> None:
    prefix, database = db
    keys = replica(database)
    made = await asyncio.to_thread(admin, prefix, mongo_server.uri, "create-key", "--name", "ops")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    who = await keys.authenticate(key)
    assert who is not None and who.role.label == "admin" and who.name == "ops"

    out = tmp_path / "rotated.key"
    rotated = await asyncio.to_thread(
        admin, prefix, mongo_server.uri, "rotate-key", who.key_id, "--out", str(out)
    )
    assert rotated.returncode == 0, rotated.stderr
    assert out.read_text().strip() not in rotated.stdout  # written to the file, not printed
    new = await keys.authenticate(out.read_text().strip())
    assert new is not None and new.name == "ops" and new.key_id != who.key_id
    assert await keys.authenticate(key) is None  # the old key is revoked

    again = await asyncio.to_thread(
        admin, prefix, mongo_server.uri, "rotate-key", who.key_id, "--out", str(out)
    )
    assert again.returncode == 1 and "exists" in again.stderr
    listed = await asyncio.to_thread(admin, prefix, mongo_server.uri, "list-keys")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["name"] for r in rows} == {"ops"} and "digest" not in listed.stdout
    missing = await asyncio.to_thread(admin, prefix, mongo_server.uri, "revoke-key", "nope")
    assert missing.returncode == 1 and "no API key" in missing.stderr
