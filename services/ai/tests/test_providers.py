"""Provider adapters against the seed-faithful fakes on loopback: answers, streaming, citations, errors."""

from __future__ import annotations

import pytest
from tgm_ai.providers.base import ChatRequest, ChatResult, Passage, ProviderError
from tgm_ai.providers.dmflow import DmFlowProvider, reply_text
from tgm_ai.providers.local import LocalProvider
from tgm_ai.providers.maiagent import MaiAgentProvider
from tgm_ai.providers.openai import OpenAiProvider
from tgm_contracts import ErrorCode
from tgm_contracts.models.ai import Citation

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


def passages() -> list[Passage]:
    return [
        Passage(
            1,
            "Orders ship within 2 business days. Delivery takes 3 to 5 days.",
            Citation(knowledge_id="k1", chunk_id="c1", source="shipping.md"),
        ),
        Passage(2, "The Pro plan costs 30 USD a month.", Citation(knowledge_id="k2")),
    ]


async def collect(provider, req: ChatRequest) -> tuple[list[str], ChatResult]:
    deltas: list[str] = []
    final = None
    async for item in provider.stream(req):
        if isinstance(item, ChatResult):
            final = item
        else:
            deltas.append(item)
    assert final is not None
    return deltas, final


# --- openai -------------------------------------------------------------------------------------------


async def test_openai_chat_cites_passages_and_counts_usage(fake_openai):
    p = OpenAiProvider(fake_openai.url, fake_openai.key, "fake-gpt", "fake-embed", timeout=5)
    try:
        r = await p.chat(ChatRequest(message="when will my order ship?", passages=passages(), peer_key="a:u"))
        assert r.text.startswith("Orders ship within 2 business days.")
        assert r.used_passages == [1] and r.prompt_tokens > 0 and r.model == "fake-gpt"
        sent = fake_openai.state.last("chat/completions").body
        assert sent["user"] == "a:u" and "[1] Orders ship" in sent["messages"][0]["content"]
        assert fake_openai.state.last().headers["authorization"] == "Bearer sk-test"
    finally:
        await p.aclose()


async def test_openai_stream_deltas_join_to_final_text(fake_openai):
    p = OpenAiProvider(fake_openai.url, fake_openai.key, "fake-gpt", timeout=5)
    try:
        deltas, final = await collect(p, ChatRequest(message="hello there friend how are you"))
        assert len(deltas) > 1 and "".join(deltas) == final.text == "You said: hello there friend how are you"
        assert final.completion_tokens > 0
    finally:
        await p.aclose()


async def test_openai_handoff_mark_is_not_streamed_and_flags_fallback(fake_openai):
    p = OpenAiProvider(fake_openai.url, fake_openai.key, "fake-gpt", timeout=5)
    try:
        deltas, final = await collect(p, ChatRequest(message="handoff-please"))
        assert "".join(deltas) == "" and final.fallback and final.text == ""
    finally:
        await p.aclose()


async def test_openai_embeddings_and_models(fake_openai):
    p = OpenAiProvider(fake_openai.url, fake_openai.key, "fake-gpt", "fake-embed", timeout=5)
    try:
        vecs = await p.embed(["shipping time", "shipping time", "價格"])
        assert len(vecs) == 3 and vecs[0] == vecs[1] and vecs[0] != vecs[2]
        ids = {m.id for m in await p.models()}
        assert {"fake-gpt", "fake-embed"} <= ids
    finally:
        await p.aclose()


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("401", ErrorCode.UPSTREAM_AUTH),
        ("400", ErrorCode.VALIDATION_ERROR),
        ("429", ErrorCode.RATE_LIMITED),
        ("500", ErrorCode.UNAVAILABLE),
        ("malformed", ErrorCode.UNAVAILABLE),
        ("schema", ErrorCode.UNAVAILABLE),
    ],
)
async def test_openai_errors_are_mapped(fake_openai, mode, code):
    fake_openai.state.faults.set(mode)
    p = OpenAiProvider(fake_openai.url, fake_openai.key, "fake-gpt", timeout=5)
    try:
        with pytest.raises(ProviderError) as exc:
            await p.chat(ChatRequest(message="hi"))
        assert exc.value.code is code and exc.value.message.startswith("openai: ")
        if mode == "429":
            assert exc.value.retry_after == 7
        with pytest.raises(ProviderError) as exc:
            await collect(p, ChatRequest(message="hi"))
        assert exc.value.code is code
    finally:
        await p.aclose()


async def test_openai_wrong_key_timeout_and_cut_stream(fake_openai):
    bad = OpenAiProvider(fake_openai.url, "sk-wrong", "fake-gpt", timeout=5)
    slow = OpenAiProvider(fake_openai.url, fake_openai.key, "fake-gpt", timeout=0.3)
    try:
        with pytest.raises(ProviderError) as exc:
            await bad.chat(ChatRequest(message="hi"))
        assert exc.value.code is ErrorCode.UPSTREAM_AUTH and "Incorrect API key" in exc.value.message
        fake_openai.state.faults.set("timeout", count=1, delay=2)
        with pytest.raises(ProviderError) as exc:
            await slow.chat(ChatRequest(message="hi"))
        assert exc.value.code is ErrorCode.TIMEOUT
        fake_openai.state.faults.set("stream-cut", count=1)
        with pytest.raises(ProviderError) as exc:
            await collect(slow, ChatRequest(message="one two three four five six seven eight nine ten"))
        assert exc.value.code is ErrorCode.UNAVAILABLE and "malformed" in exc.value.message
    finally:
        await bad.aclose()
        await slow.aclose()


async def test_unreachable_endpoint_is_unavailable():
    p = OpenAiProvider("http://127.0.0.1:9/v1", "k", "m", timeout=2)
    try:
        with pytest.raises(ProviderError) as exc:
            await p.chat(ChatRequest(message="hi"))
        assert exc.value.code is ErrorCode.UNAVAILABLE
    finally:
        await p.aclose()


# --- maiagent -----------------------------------------------------------------------------------------


async def test_maiagent_keeps_conversation_and_maps_citations(fake_maiagent):
    p = MaiAgentProvider(fake_maiagent.url, fake_maiagent.key, fake_maiagent.extra["chatbot_id"], timeout=5)
    try:
        r1 = await p.chat(ChatRequest(message="How much does the Pro plan cost per month?"))
        assert "30 USD" in r1.text and r1.conversation_id
        assert r1.citations and r1.citations[0].title == "pricing.pdf" and r1.citations[0].page == 1
        assert r1.citations[0].chunk_id and r1.citations[0].score and r1.citations[0].score > 0
        body = fake_maiagent.state.last("completions").body
        assert body["isStreaming"] is False and "conversation" not in body
        r2 = await p.chat(ChatRequest(message="and shipping?", conversation_id=r1.conversation_id))
        assert fake_maiagent.state.last("completions").body["conversation"] == r1.conversation_id
        assert r2.conversation_id == r1.conversation_id
        assert fake_maiagent.state.last("completions").headers["authorization"] == "Api-Key mai-test"
    finally:
        await p.aclose()


async def test_maiagent_streams_and_cites(fake_maiagent):
    p = MaiAgentProvider(fake_maiagent.url, fake_maiagent.key, fake_maiagent.extra["chatbot_id"], timeout=5)
    try:
        deltas, final = await collect(p, ChatRequest(message="訂單多久出貨？"))
        assert len(deltas) > 1 and "".join(deltas) == final.text and "出貨" in final.text
        assert final.conversation_id and final.citations[0].title == "shipping.md"
    finally:
        await p.aclose()


async def test_maiagent_400_field_errors_and_401(fake_maiagent):
    p = MaiAgentProvider(fake_maiagent.url, fake_maiagent.key, fake_maiagent.extra["chatbot_id"], timeout=5)
    bad = MaiAgentProvider(fake_maiagent.url, "nope", fake_maiagent.extra["chatbot_id"], timeout=5)
    try:
        with pytest.raises(ProviderError) as exc:
            await p.chat(ChatRequest(message="x", conversation_id="6a1f0e7e-0000-4000-8000-000000000000"))
        assert exc.value.code is ErrorCode.VALIDATION_ERROR
        assert "conversation" in exc.value.details["fields"] and "does not exist" in exc.value.message
        with pytest.raises(ProviderError) as exc:
            await bad.chat(ChatRequest(message="x"))
        assert exc.value.code is ErrorCode.UPSTREAM_AUTH and exc.value.status == 401
        fake_maiagent.state.faults.set("stream-cut", count=1)
        with pytest.raises(ProviderError) as exc:
            await collect(p, ChatRequest(message="How much does the Pro plan cost per month?"))
        assert "without `done: true`" in exc.value.message
    finally:
        await p.aclose()
        await bad.aclose()


# --- dmflow -------------------------------------------------------------------------------------------


async def test_dmflow_faq_then_flow_then_tableqa(fake_dmflow):
    p = DmFlowProvider(
        fake_dmflow.url,
        fake_dmflow.key,
        faq_id=fake_dmflow.extra["faq_id"],
        tableqa_id=fake_dmflow.extra["tableqa_id"],
        timeout=5,
    )
    try:
        r = await p.chat(ChatRequest(message="運費怎麼算?", peer_key="acc:u1", language="zh-TW"))
        assert "免運" in r.text and r.citations[0].source == "faq" and not r.fallback
        r = await p.chat(ChatRequest(message="今天天氣如何", peer_key="acc:u1"))
        assert r.text == "今天天氣舒服" and r.extra["status"] == "WAIT"
        sent = fake_dmflow.state.last("/bot/chat").body
        assert (
            sent["platform"] == "api"
            and sent["type"] == "text"
            and sent["payload"]["query"] == "今天天氣如何"
        )
        assert sent["userId"] == "acc_u1"
        r = await p.chat(ChatRequest(message="價位在6000元到七千元且品牌為蘋果的手機", peer_key="acc:u1"))
        assert "iphone12" in r.text and "iphone13" not in r.text
        assert fake_dmflow.state.last("tableqas").body["sessionId"] == "acc_u1"
    finally:
        await p.aclose()


async def test_dmflow_json_replies_rc_errors_and_users(fake_dmflow):
    p = DmFlowProvider(fake_dmflow.url, fake_dmflow.key, platform="telegram", timeout=5)
    bad = DmFlowProvider(fake_dmflow.url, "wrong", timeout=5)
    missing = DmFlowProvider(fake_dmflow.url, fake_dmflow.key, faq_id="1", timeout=5)
    try:
        r = await p.chat(ChatRequest(message="hello", peer_key="a:tg1"))
        assert r.text == "Hello! How can I help you?"  # JSON reply string of the platform decoded
        r = await p.chat(ChatRequest(message="qwerty", peer_key="a:tg1"))
        assert r.fallback
        with pytest.raises(ProviderError) as exc:
            await bad.chat(ChatRequest(message="hello"))
        assert exc.value.code is ErrorCode.UPSTREAM_AUTH
        with pytest.raises(ProviderError) as exc:
            await missing.chat(ChatRequest(message="hello"))
        assert exc.value.code is ErrorCode.NOT_FOUND and exc.value.details["rc"] == 10001
        assert await p.update_user(
            "a_tg1", username="Ann", fields={"city": "Taipei"}, tag_ids=["254870170810449954"]
        )
        user = await p.get_user("a_tg1")
        assert user["username"] == "Ann" and user["fields"][0]["value"] == "Taipei"
        assert user["tags"][0]["name"] == "tag1"
        ids = {m.id for m in await p.models()}
        assert "dmflow-bot" in ids and any(i.startswith("faqEnum:") for i in ids)
        fake_dmflow.state.faults.set("schema", count=1)
        with pytest.raises(ProviderError) as exc:
            await p.chat(ChatRequest(message="hello"))
        assert "rc" in exc.value.message
    finally:
        await p.aclose()
        await bad.aclose()
        await missing.aclose()


def test_dmflow_reply_text_decodes_platform_objects():
    assert reply_text('{"text":"今天天氣舒服"}') == "今天天氣舒服"
    assert reply_text("plain") == "plain"
    assert reply_text('{"attachment": {"payload": {"text": "t"}}}') == "t"


# --- local --------------------------------------------------------------------------------------------


@pytest.mark.unit
async def test_local_answers_from_passages_deterministically():
    p = LocalProvider()
    req = ChatRequest(message="How long does delivery take?", passages=passages(), seed=7)
    a, b = await p.chat(req), await p.chat(req)
    assert a.text == b.text and "3 to 5 days" in a.text and a.used_passages == [1]
    assert a.confidence and a.confidence > 0.4
    none = await p.chat(ChatRequest(message="Do you sell quantum bananas?", passages=[], seed=1))
    assert none.fallback and none.confidence < 0.3
    deltas, final = await collect(p, req)
    assert "".join(deltas) == final.text == a.text
