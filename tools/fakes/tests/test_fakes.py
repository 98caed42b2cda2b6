"""The fakes over real HTTP on loopback: seed shapes, auth, pagination, fault control."""

from __future__ import annotations

import json

import httpx
import pytest
from tgm_fakes import dmflow, maiagent, openai
from tgm_fakes.common import LoopbackServer

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


def test_openai_fake_auth_models_stream_and_fault_control():
    with LoopbackServer(openai.build()) as srv:
        c = httpx.Client(base_url=srv.url, timeout=5)
        assert c.get("/v1/models").status_code == 401
        h = {"Authorization": "Bearer sk-test"}
        ids = {m["id"] for m in c.get("/v1/models", headers=h).json()["data"]}
        assert {"fake-gpt", "fake-embed"} <= ids
        body = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi there"}], "stream": True}
        with c.stream("POST", "/v1/chat/completions", json=body, headers=h) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = [ln[6:] for ln in r.iter_lines() if ln.startswith("data: ")]
        assert lines[-1] == "[DONE]"
        text = "".join(
            (json.loads(x)["choices"] or [{}])[0].get("delta", {}).get("content") or "" for x in lines[:-1]
        )
        assert text == "You said: hi there"
        assert c.post("/_fake/faults", json={"mode": "429", "count": 1}).json() == {"mode": "429", "count": 1}
        r = c.post("/v1/chat/completions", json=body, headers=h)
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert c.post("/v1/chat/completions", json={**body, "stream": False}, headers=h).status_code == 200
        assert c.post("/_fake/faults", json={"mode": "nope"}).status_code == 400
        recorded = c.get("/_fake/requests").json()
        assert recorded[-1]["path"] == "/v1/chat/completions" and recorded[-1]["body"]["stream"] is False


def test_maiagent_fake_conversations_messages_and_cursor_pages():
    with LoopbackServer(maiagent.build()) as srv:
        c = httpx.Client(
            base_url=srv.url + "/api/v1", timeout=5, headers={"Authorization": "Api-Key mai-test"}
        )
        url = f"/chatbots/{maiagent.DEFAULT_CHATBOT}/completions/"
        r = c.post(url, json={"message": {"content": "Pro plan price per month?"}}).json()
        assert r["done"] is True and "30 USD" in r["content"]
        conv = r["conversationId"]
        for i in range(3):
            c.post(url, json={"conversation": conv, "message": {"content": f"question {i}"}})
        page = c.get("/messages/", params={"conversation": conv, "pageSize": 3}).json()
        assert len(page["results"]) == 3 and page["next"] and page["previous"] is None and "count" not in page
        nxt = httpx.get(page["next"], headers={"Authorization": "Api-Key mai-test"}).json()
        assert len(nxt["results"]) == 3 and nxt["previous"]
        outgoing = [m for m in page["results"] + nxt["results"] if m["type"] == "outgoing"]
        assert any(m["citationNodes"] for m in outgoing)
        assert c.post(url, json={"message": {}}).json() == {
            "message": {"content": ["This field is required."]}
        }
        assert c.post(url, json={"message": {"content": "x", "sender": "nobody"}}).status_code == 400
        assert (
            httpx.post(
                srv.url + "/api" + url,
                json={"message": {"content": "x"}},
                headers={"Authorization": "Bearer mai-test"},
            ).status_code
            == 401
        )
        assert c.post("/conversations/", json={"webChat": "w1"}).status_code == 201
        assert c.get("/conversations/", params={"inbox": "w1"}).json()["results"][0]["inbox"]["id"] == "w1"


def test_dmflow_fake_envelopes_events_users_and_tableqa_pages():
    with LoopbackServer(dmflow.build()) as srv:
        c = httpx.Client(
            base_url=srv.url + "/_api/v1/bot", timeout=5, headers={"Authorization": "Bearer dm-test"}
        )
        assert c.get("/info").json()["data"]["locale"] == "zh_TW"
        r = c.post(
            "/chat",
            json={
                "platform": "messenger",
                "userId": "u1",
                "type": "text",
                "payload": {"query": "天氣", "type": "text"},
            },
        ).json()
        assert r["data"]["replies"] == ['{"text": "今天天氣舒服"}'] and r["data"]["msg_type"] == "JSON"
        end = c.post(
            "/chat", json={"platform": "api", "userId": "u2", "type": "event", "payload": {"type": "end"}}
        )
        assert end.json()["data"]["status"] == "LISTEN"
        r = c.post(
            "/chat",
            json={
                "platform": "api",
                "userId": "u2",
                "type": "text",
                "payload": {"query": "天氣", "type": "text"},
            },
        ).json()
        assert r["data"]["replies"] == [] and r["data"]["status"] == "LISTEN"
        assert c.post("/chat", json={"platform": "api"}).json()["rc"] != 0
        faq = c.post(f"/faqs/{dmflow.FAQ_ID}", json={"text": "面試JAVA工程師", "userId": "u1"}).json()["data"]
        assert faq["type"] == "REDIRECT" and faq["answer"] == '["job_interview"]' and faq["suggQuestions"]
        tq = c.post(
            f"/tableqas/{dmflow.TABLEQA_ID}",
            json={"text": "價格在5000元到10000元的手機", "userId": "u1", "sessionId": "s1", "subjectSize": 2},
        ).json()["data"]
        assert tq["page"] == {"total": 4, "size": 2, "index": 0} and len(tq["subjects"]) == 2
        nxt = c.post(
            f"/tableqas/{dmflow.TABLEQA_ID}",
            json={"userId": "u1", "sessionId": "s1", "event": "next", "page": {"index": 1, "size": 2}},
        ).json()["data"]
        assert len(nxt["subjects"]) == 2 and nxt["subjects"][0]["name"] != tq["subjects"][0]["name"]
        users = c.post("/users", json={"platform": "api", "index": 0, "size": 10}).json()["data"]
        assert users["page"]["total"] == 1 and users["users"][0]["platform"] == "@api"
        assert c.get("/memories").json()["data"]["userFields"][0]["key"] == "username"
        assert httpx.get(srv.url + "/_api/v1/bot/info").status_code == 401
