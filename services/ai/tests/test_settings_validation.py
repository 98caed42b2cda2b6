"""Settings are validated whole before anything is written (issue 13, finding 2)."""

from __future__ import annotations

import pytest
from tgm_contracts.commands import ai as C

from .conftest import err, ok

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


async def test_invalid_settings_are_refused_before_anything_is_written(client, runtime):
    """Finding 2 of issue 13: `openai.enabled: null` answered 422 yet was stored, and every later read
    failed with 500."""
    await ok(client, C.SaveAiSettings, {"openai": {"model": "m1", "enabled": True}})
    before = await runtime.db["ai_settings"].find_one({"_id": "settings"})
    for bad in ({"openai": {"enabled": None}}, {"maiagent": {"timeoutSeconds": None}}):
        error = await err(client, C.SaveAiSettings, bad, "VALIDATION_ERROR")
        assert error["details"][0]["loc"][0] in ("openai", "maiagent"), error
    assert await runtime.db["ai_settings"].find_one({"_id": "settings"}) == before
    got = await ok(client, C.GetAiSettings, {})
    assert got["version"] == 1 and got["openai"]["enabled"] is True and got["openai"]["model"] == "m1"
