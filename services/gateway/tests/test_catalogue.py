"""`GET /api/v1/commands`: built once per process and served as the same bytes, with an ETag."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tgm_contracts import REGISTRY
from tgm_gateway.api.http import Catalogue

from .conftest import System

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]


async def test_catalogue_is_built_once_and_served_with_an_etag(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    document = Catalogue.document

    def counted() -> dict[str, Any]:
        built.append(1)
        return document()

    monkeypatch.setattr(Catalogue, "document", staticmethod(counted))
    async with system.client() as c:
        first = await c.get("/api/v1/commands")
        again = await c.get("/api/v1/commands")
        assert first.status_code == again.status_code == 200
        assert first.headers["content-type"] == "application/json"
        assert first.content == again.content
        assert len(built) <= 1  # the first request of the process builds it, nothing after

        body = first.json()
        served = {k: body.pop(k) for k in ("servedBy", "unserved")}  # who serves it now: presence.py
        assert body == json.loads(json.dumps(document()))  # what the registry says now
        assert served["unserved"] == [] or served["servedBy"] is None
        assert body["count"] == len(REGISTRY) == len(body["commands"])

        etag = first.headers["etag"]
        assert etag.startswith('"') and etag == again.headers["etag"]
        unchanged = await c.get("/api/v1/commands", headers={"if-none-match": etag})
        assert unchanged.status_code == 304 and unchanged.content == b""
        weak = await c.get("/api/v1/commands", headers={"if-none-match": f'"other", W/{etag}'})
        assert weak.status_code == 304
        stale = await c.get("/api/v1/commands", headers={"if-none-match": '"not-this-one"'})
        assert stale.status_code == 200 and stale.content == first.content
        assert len(built) <= 1
