"""The ai service on a real nats-server and database server: request/reply, streamed chunks on core
NATS, events in JetStream, the sys protocol."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import nats
import pytest
from tgm_ai.bootstrap import build
from tgm_ai.settings import AiSettings
from tgm_contracts import subjects
from tgm_contracts import sys as sysops
from tgm_contracts.commands import ai as C
from tgm_runtime import RuntimeSettings
from tgm_runtime.testing import signed_headers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def request(
    rt: Any, nc: Any, subject: str, payload: dict[str, Any], timeout: float = 20
) -> dict[str, Any]:
    data = json.dumps(payload).encode()
    headers = signed_headers(rt, subject, data)  # as the gateway signs a command
    msg = await nc.request(subject, data, timeout=timeout, headers=headers)
    return json.loads(msg.data)


async def test_real_nats_request_reply_streaming_and_events(nats_server, mongo_server, tmp_path):
    rt = build(
        AiSettings(
            runtime=RuntimeSettings(
                nats_url=nats_server.url,
                mongodb_uri=mongo_server.uri,
                database_prefix=f"i{uuid.uuid4().hex[:8]}_",
                data_dir=tmp_path,
                replica_id="ai-it",
            )
        )
    )
    await rt.start()
    nc = await nats.connect(nats_server.url)
    try:
        added = await request(
            rt,
            nc,
            C.AddKnowledge.SUBJECT,
            {
                "items": [
                    {
                        "type": "faq",
                        "question": "How much is the Pro plan?",
                        "answer": "The Pro plan costs 30 USD a month.",
                    }
                ]
            },
        )
        assert added["ok"] and added["data"]["added"][0]["question"] == "How much is the Pro plan?"
        bad = await request(rt, nc, C.AddKnowledge.SUBJECT, {"question": 5})
        assert not bad["ok"] and bad["error"]["code"] == "VALIDATION_ERROR" and bad["error"]["details"]
        junk = b"{not json"
        signed = signed_headers(rt, C.RagSearch.SUBJECT, junk)
        garbage = json.loads((await nc.request(C.RagSearch.SUBJECT, junk, timeout=10, headers=signed)).data)
        assert garbage["error"]["code"] == "VALIDATION_ERROR"

        stream_id = uuid.uuid4().hex
        chunks: list[dict[str, Any]] = []
        done = asyncio.Event()

        async def on_chunk(msg: Any) -> None:
            chunks.append(json.loads(msg.data))
            if chunks[-1]["done"]:
                done.set()

        sub = await nc.subscribe(subjects.stream_chunk(stream_id), cb=on_chunk)
        reply = await request(
            rt,
            nc,
            C.AiGenerateResponse.SUBJECT,
            {
                "accountId": "a1",
                "userId": "u1",
                "message": "What does the Pro plan cost?",
                "streamId": stream_id,
            },
        )
        await asyncio.wait_for(done.wait(), 10)
        await sub.unsubscribe()
        assert reply["ok"] and "30 USD" in reply["data"]["text"]
        assert "".join(c["delta"] for c in chunks) == reply["data"]["text"]
        assert chunks[-1]["data"] == reply["data"] and [c["seq"] for c in chunks] == list(range(len(chunks)))

        js = nc.jetstream()
        info = await js.stream_info("TGM_EVENTS")
        assert info.state.messages >= 2  # knowledge-changed and ai-response-generated
        psub = await js.pull_subscribe(subjects.event(rt.service, "ai-response-generated", 1), durable=None)
        msgs = await psub.fetch(1, timeout=5)
        assert json.loads(msgs[0].data)["accountId"] == "a1"

        info_reply = await request(rt, nc, sysops.Info.subject(rt.service), {})
        assert info_reply["ok"] and info_reply["data"]["counts"]["knowledgeItems"] == 1
        assert info_reply["data"]["health"] == "ok"
    finally:
        await nc.close()
        if rt.mongo is not None:
            await rt.mongo.drop_database(rt.database_name())
        await rt.stop()
