"""Remote providers through the service: settings (encrypted keys), models, connection tests, replies,
streaming and error envelopes with the fake OpenAI-compatible, MaiAgent and DmFlow servers; usage."""

from __future__ import annotations

import pytest
from tgm_contracts.commands import ai as C

from .conftest import STREAMS, err, events, ok

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


def gen(message, **kw):
    return {"accountId": "acc1", "userId": "peer7", "message": message, **kw}


async def configure(client, fake_openai=None, fake_maiagent=None, fake_dmflow=None, **top):
    body = dict(top)
    if fake_openai:
        body["openai"] = {
            "baseUrl": fake_openai.url,
            "apiKey": fake_openai.key,
            "model": "fake-gpt",
            "embeddingModel": "fake-embed",
            "timeoutSeconds": 2,
        }
    if fake_maiagent:
        body["maiagent"] = {
            "baseUrl": fake_maiagent.url,
            "apiKey": fake_maiagent.key,
            "chatbotId": fake_maiagent.extra["chatbot_id"],
            "timeoutSeconds": 2,
        }
    if fake_dmflow:
        body["dmflow"] = {
            "baseUrl": fake_dmflow.url,
            "apiKey": fake_dmflow.key,
            "faqId": fake_dmflow.extra["faq_id"],
            "tableqaId": fake_dmflow.extra["tableqa_id"],
            "timeoutSeconds": 2,
        }
    return await ok(client, C.SaveAiSettings, body)


async def test_settings_keys_encrypted_at_rest_and_masked(client, runtime, fake_openai, fake_maiagent):
    view = await configure(client, fake_openai, fake_maiagent, defaultProvider="openai")
    assert view["version"] == 1 and view["defaultProvider"] == "openai"
    assert view["openai"]["apiKeySet"] and view["openai"]["apiKeyMasked"].startswith("sk-t")
    assert fake_openai.key not in str(view) and fake_maiagent.key not in str(view)
    raw = await runtime.db["ai_settings"].find_one({"_id": "settings"})
    assert fake_openai.key not in str(raw) and raw["openai"]["api_key_enc"].startswith("enc:v1:")
    # omitted key keeps the stored one; an empty string removes it
    view = await ok(client, C.SaveAiSettings, {"openai": {"model": "fake-gpt-mini"}, "expectedVersion": 1})
    assert view["openai"]["apiKeySet"] and view["openai"]["model"] == "fake-gpt-mini" and view["version"] == 2
    await err(client, C.SaveAiSettings, {"openai": {"model": "x"}, "expectedVersion": 1}, "CONFLICT")
    view = await ok(client, C.SaveAiSettings, {"openai": {"apiKey": ""}})
    assert not view["openai"]["apiKeySet"]
    await err(
        client,
        C.SaveAiSettings,
        {"retrieval": {"bestThreshold": 0.3, "suggThreshold": 0.5}},
        "VALIDATION_ERROR",
    )
    got = await ok(client, C.GetAiSettings, {})
    assert got["version"] == 3 and got["maiagent"]["chatbotId"] == fake_maiagent.extra["chatbot_id"]
    assert [e["version"] for e in events("ai-settings-changed")] == [1, 2, 3]


async def test_models_and_connection_tests(client, fake_openai, fake_dmflow):
    await configure(client, fake_openai, fake_dmflow=fake_dmflow)
    models = await ok(client, C.GetAiModels, {"refresh": True})
    ids = {(m["provider"], m["id"]) for m in models["models"]}
    assert (
        ("local", "local-extractive") in ids
        and ("openai", "fake-embed") in ids
        and ("dmflow", "dmflow-bot") in ids
    )
    t = await ok(client, C.TestAiConnection, {"provider": "openai"})
    assert t["ok"] and t["model"] == "fake-gpt" and t["latencyMs"] > 0 and t["reply"] == "You said: ping"
    t = await ok(client, C.TestAiConnection, {"provider": "openai", "openai": {"apiKey": "sk-wrong"}})
    assert not t["ok"] and t["error"]["code"] == "UPSTREAM_AUTH" and "API key" in t["error"]["message"]
    t = await ok(
        client, C.TestAiConnection, {"provider": "dmflow", "dmflow": {"baseUrl": "http://127.0.0.1:9"}}
    )
    assert not t["ok"] and t["error"]["code"] == "UNAVAILABLE"
    t = await ok(client, C.TestAiConnection, {"provider": "maiagent"})
    assert not t["ok"] and "chatbot id" in t["error"]["message"]
    assert (await ok(client, C.TestAiConnection, {"provider": "local"}))["ok"]
    fake_openai.state.faults.set("401")
    bad = await ok(client, C.GetAiModels, {"provider": "openai", "refresh": True})
    assert bad["models"] == [] and bad["errors"]["openai"]["code"] == "UPSTREAM_AUTH"


async def test_openai_reply_grounded_streamed_and_counted(client, fake_openai):
    await configure(client, fake_openai, defaultProvider="openai")
    await ok(
        client,
        C.AddKnowledge,
        {"content": "Orders ship within 2 business days. Tracking links come by email."},
    )
    r = await ok(client, C.AiGenerateResponse, gen("when do orders ship?", streamId="oa-stream-1"))
    assert r["provider"] == "openai" and r["model"] == "fake-gpt"
    assert r["text"] == "Orders ship within 2 business days. [1]" and r["citations"][0]["source"] == "text"
    assert not r["handoff"] and r["usage"]["promptTokens"] > 0
    chunks = STREAMS["oa-stream-1"]
    assert "".join(c["delta"] for c in chunks) == r["text"] and chunks[-1]["data"]["text"] == r["text"]
    sent = fake_openai.state.last("chat/completions").body
    assert "[1] Orders ship" in sent["messages"][0]["content"] and sent["user"] == "acc1:peer7"
    h = await ok(client, C.AiGenerateResponse, gen("handoff-please"))
    assert h["handoff"] and h["text"] and "knowledge does not answer" in h["handoffReason"]
    msgs = await ok(client, C.AiGenerateMessage, {"topic": "VPN", "count": 1, "provider": "openai"})
    assert msgs["provider"] == "openai" and msgs["messages"][0].startswith("You said: Write 1 different")

    usage = await ok(client, C.GetAiUsage, {"provider": "openai"})
    row = usage["rows"][0]
    assert (
        row["provider"] == "openai"
        and row["model"] == "fake-gpt"
        and row["calls"] == 3
        and row["errors"] == 0
    )
    assert row["promptTokens"] > 0 and row["completionTokens"] > 0 and usage["totals"]["calls"] == 3


@pytest.mark.parametrize(
    ("mode", "code", "words"),
    [
        ("401", "UPSTREAM_AUTH", "API key"),
        ("400", "VALIDATION_ERROR", "rejected"),
        ("timeout", "TIMEOUT", "within"),
        ("malformed", "UNAVAILABLE", "malformed"),
        ("500", "UNAVAILABLE", "500"),
    ],
)
async def test_openai_errors_become_clear_envelopes_and_stream_errors(client, fake_openai, mode, code, words):
    await configure(client, fake_openai, defaultProvider="openai")
    fake_openai.state.faults.set(mode, delay=5)
    e = await err(client, C.AiGenerateResponse, gen("hello?"), code)
    assert e["message"].startswith("openai: ") and words in e["message"]
    e = await err(client, C.AiGenerateResponse, gen("hello?", streamId="oa-err-001"), code)
    final = STREAMS["oa-err-001"][-1]
    assert final["done"] and final["error"] == {"code": code, "message": e["message"]}
    usage = await ok(client, C.GetAiUsage, {})
    assert usage["byProvider"]["openai"]["errors"] == 2
    assert events("ai-provider-failed")[0]["code"] == code


async def test_maiagent_conversation_per_peer_citations_and_errors(client, fake_maiagent):
    await configure(client, fake_maiagent=fake_maiagent, defaultProvider="maiagent")
    r1 = await ok(client, C.AiGenerateResponse, gen("How much does the Pro plan cost per month?"))
    assert r1["provider"] == "maiagent" and "30 USD" in r1["text"] and r1["conversationId"]
    assert r1["citations"][0]["title"] == "pricing.pdf" and r1["citations"][0]["page"] == 1
    mem = await ok(client, C.AiMemoryGet, {"accountId": "acc1", "userId": "peer7"})
    assert mem["providerConversations"]["maiagent"] == r1["conversationId"]
    r2 = await ok(client, C.AiGenerateResponse, gen("訂單多久出貨？", streamId="mai-stream-1"))
    assert r2["conversationId"] == r1["conversationId"]
    assert fake_maiagent.state.last("completions").body["conversation"] == r1["conversationId"]
    assert fake_maiagent.state.last("completions").body["isStreaming"] is True
    assert "".join(c["delta"] for c in STREAMS["mai-stream-1"]) == r2["text"]
    other = await ok(client, C.AiGenerateResponse, {**gen("How much does Pro cost?"), "userId": "peer8"})
    assert other["conversationId"] != r1["conversationId"]

    # the chatbot forgot the conversation: MaiAgent's 400 field map becomes a clear validation error
    fake_maiagent.world.conversations.clear()
    e = await err(client, C.AiGenerateResponse, gen("again"), "VALIDATION_ERROR")
    assert "conversation" in e["message"] and e["details"]["upstreamStatus"] == 400
    await ok(client, C.AiMemoryClear, {"confirm": True, "accountId": "acc1", "userId": "peer7"})
    assert (await ok(client, C.AiGenerateResponse, gen("Pro plan price?")))["conversationId"]
    fake_maiagent.state.faults.set("401")
    e = await err(client, C.AiGenerateResponse, gen("x"), "UPSTREAM_AUTH")
    assert e["message"].startswith("maiagent: rejected the API key")
    fake_maiagent.state.faults.set("stream-cut")
    await err(
        client,
        C.AiGenerateResponse,
        gen("How much does the Pro plan cost?", streamId="mai-cut-01"),
        "UNAVAILABLE",
    )
    assert STREAMS["mai-cut-01"][-1]["error"]["code"] == "UNAVAILABLE"


async def test_dmflow_faq_flow_and_rc_errors(client, fake_dmflow):
    await configure(client, fake_dmflow=fake_dmflow, defaultProvider="dmflow")
    r = await ok(client, C.AiGenerateResponse, gen("運費怎麼算？", streamId="dm-stream-01"))
    assert r["provider"] == "dmflow" and "免運" in r["text"] and r["citations"][0]["source"] == "faq"
    assert r["confidence"] >= 0.8 and not r["handoff"]
    assert "".join(c["delta"] for c in STREAMS["dm-stream-01"]) == r["text"]
    r = await ok(client, C.AiGenerateResponse, gen("今天天氣好嗎"))
    assert r["text"] == "今天天氣舒服"
    r = await ok(client, C.AiGenerateResponse, gen("xyzzy plugh"))
    assert r["handoff"] and r["confidence"] < 0.35
    fake_dmflow.state.faults.set("schema")
    e = await err(client, C.AiGenerateResponse, gen("今天天氣"), "UNAVAILABLE")
    assert "malformed" in e["message"]
    fake_dmflow.state.faults.set("401")
    await err(client, C.AiGenerateResponse, gen("今天天氣"), "UPSTREAM_AUTH")
    fake_dmflow.state.faults.set("ok")
    await ok(client, C.SaveAiSettings, {"dmflow": {"faqId": "999"}})
    e = await err(client, C.AiGenerateResponse, gen("今天天氣"), "NOT_FOUND")
    assert "rc=10001" in e["message"]


async def test_openai_embeddings_make_retrieval_hybrid(client, runtime, fake_openai):
    await ok(
        client,
        C.AddKnowledge,
        {
            "items": [
                {"type": "text", "content": "Refunds are processed within 14 days."},
                {"type": "text", "content": "Our office is in Taipei."},
            ]
        },
    )
    await configure(client, fake_openai, embeddingProvider="openai")
    await runtime.app.index.reembed()  # what save-ai-settings starts in the background
    status = await ok(client, C.RagGetStatus, {})
    assert status["denseReady"] and status["embeddingModel"] == "openai:fake-embed"
    res = await ok(client, C.RagSearch, {"query": "refunds processed"})
    assert res["mode"] == "hybrid" and res["hits"][0]["denseScore"] is not None
    assert "Refunds" in res["hits"][0]["text"]
    dense = await ok(client, C.RagSearch, {"query": "refunds processed", "mode": "dense"})
    assert dense["mode"] == "dense" and dense["hits"]
    added = await ok(client, C.AddKnowledge, {"content": "Refunds for annual plans are prorated."})
    stats = await ok(client, C.GetKnowledgeStats, {})
    assert stats["denseVectors"] == 3 and added["added"]
    assert any(r.path.endswith("/embeddings") for r in fake_openai.state.requests)


async def test_memory_syncs_with_dmflow_users_when_dmflow_is_default(client, fake_dmflow):
    await configure(client, fake_dmflow=fake_dmflow, defaultProvider="dmflow")
    key = {"accountId": "acc1", "userId": "peer7"}
    await ok(
        client, C.AiMemorySave, {**key, "fields": {"name": "Ann", "city": "Taipei"}, "tags": ["tag1", "nope"]}
    )
    user = fake_dmflow.world.users[("api", "acc1_peer7")]
    assert user["username"] == "Ann" and [f["value"] for f in user["fields"]] == ["Taipei"]
    assert [t["name"] for t in user["tags"]] == ["tag1"]
    # a field DmFlow learned on its side shows up on read
    user["fields"].append(
        {
            "constraintType": "datetimeEnum",
            "id": "283615327961481304",
            "value": "1641312000",
            "key": "birthday",
            "desc": "生日",
        }
    )
    m = await ok(client, C.AiMemoryGet, key)
    assert m["fields"]["birthday"] == "1641312000" and m["fields"]["city"] == "Taipei" and "tag1" in m["tags"]
    fake_dmflow.state.faults.set("500")
    m = await ok(client, C.AiMemoryGet, key)  # DmFlow down: the local memory still answers
    assert m["fields"] == {"name": "Ann", "city": "Taipei"}


async def test_large_documents_are_searchable_at_once_and_embedded_in_the_background(client, fake_openai):
    import asyncio

    await configure(client, fake_openai, embeddingProvider="openai")
    text = " ".join(f"Clause {i} of the contract covers item {i}." for i in range(3000))
    st = await ok(client, C.RagAddDocument, {"text": text, "chunkSize": 200, "chunkOverlap": 20})
    assert st["state"] == "ready" and st["chunks"] > 256
    assert (await ok(client, C.RagSearch, {"query": "clause 2999", "mode": "bm25"}))["hits"]
    for _ in range(400):
        stats = await ok(client, C.GetKnowledgeStats, {})
        if stats["denseVectors"] == st["chunks"]:
            break
        await asyncio.sleep(0.05)
    assert stats["denseVectors"] == st["chunks"]
    assert (await ok(client, C.RagSearch, {"query": "clause 17 contract"}))["mode"] == "hybrid"
