"""An answer larger than the bus carries (NATS max_payload) is an error envelope naming the limit,
at once, instead of no answer and the caller's timeout (issue 13); an answer that fits goes as is."""

from __future__ import annotations

import json
import uuid
from typing import Any

import nats
import pytest
from pydantic import BaseModel
from tgm_runtime.testing import bare_runtime

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class Ask(BaseModel):
    size: int


class Text(BaseModel):
    text: str


async def test_an_oversized_answer_is_an_error_envelope_naming_the_limit(
    nats_server: Any, mongo_server: Any
) -> None:
    rt = bare_runtime(nats_url=nats_server.url, mongo_uri=mongo_server.uri, tag="big")
    subject = f"tgm.test.big.{uuid.uuid4().hex[:6]}"

    @rt.handler(subject, "big-answer", Ask, Text)
    async def answer(req: Ask, ctx: Any) -> Text:
        return Text(text="x" * req.size)

    await rt.start()
    nc = await nats.connect(nats_server.url)
    try:
        limit = nc.max_payload
        fits = json.loads((await nc.request(subject, b'{"size": 1000}', timeout=5)).data)
        assert fits["ok"] and len(fits["data"]["text"]) == 1000
        msg = await nc.request(subject, json.dumps({"size": limit + 1}).encode(), timeout=5)
        reply = json.loads(msg.data)
        assert not reply["ok"] and reply["error"]["code"] == "VALIDATION_ERROR", reply
        assert f"over the bus limit of {limit} bytes" in reply["error"]["message"]
        assert reply["error"]["details"]["limit"] == limit and reply["error"]["details"]["size"] > limit
    finally:
        await nc.close()
        await rt.stop()
