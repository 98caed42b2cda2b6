"""The ai catalogue: 26 commands owned by the ai service, with validating requests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from tgm_contracts import REGISTRY, Domain, Role, Service
from tgm_contracts.commands import ai as C
from tgm_contracts.events import EVENTS
from tgm_contracts.events_ai import KnowledgeChanged, RagDocumentProgress
from tgm_contracts.models.ai import StreamChunk

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

COMMANDS_MD = Path(__file__).resolve().parents[3] / "docs" / "COMMANDS.md"  # copy of the design catalogue


def _ai_names_from_commands_md() -> set[str]:
    if not COMMANDS_MD.exists():
        pytest.skip("COMMANDS.md not beside the repo")
    rows = re.findall(r"^\| ai \| ai \| `([a-z0-9-]+)` \|", COMMANDS_MD.read_text(), flags=re.M)
    return set(rows)


def test_all_26_ai_commands_registered_with_owner_and_domain():
    ai = REGISTRY.owned_by(Service.AI)
    names = {c.NAME for c in ai}
    assert len(names) == 26
    assert names == _ai_names_from_commands_md()
    for cmd in ai:
        assert cmd.DOMAIN is Domain.AI
        assert f"tgm.ai.cmd.{cmd.NAME}.v1" == cmd.SUBJECT
        assert cmd.__doc__, cmd.NAME


def test_roles_reads_are_viewer_destructive_admin():
    viewer = {
        "search-knowledge",
        "rag-search",
        "rag-get-status",
        "get-knowledge-stats",
        "ai-memory-get",
        "ai-get-strategies",
        "get-ai-settings",
        "get-ai-models",
        "get-ai-usage",
    }
    admin = {"clear-knowledge", "ai-memory-clear", "save-ai-settings"}
    for cmd in REGISTRY.owned_by(Service.AI):
        if cmd.NAME in viewer:
            assert cmd.ROLE is Role.VIEWER, cmd.NAME
        elif cmd.NAME in admin:
            assert cmd.ROLE is Role.ADMIN, cmd.NAME
        else:
            assert cmd.ROLE is Role.OPERATOR, cmd.NAME


def test_add_knowledge_accepts_flat_item_items_or_candidates_but_only_one():
    req = C.AddKnowledge.parse({"question": "價格多少?", "answer": "每月 99 元"})
    assert [i.type for i in req.inputs()] == ["faq"]
    req = C.AddKnowledge.parse({"content": "We ship worldwide."})
    assert req.inputs()[0].type == "text"
    req = C.AddKnowledge.parse({"items": [{"type": "text", "content": "x"}], "scope": "group:vip"})
    assert req.scope == "group:vip" and len(req.inputs()) == 1
    assert C.AddKnowledge.parse({"candidateIds": ["c1"]}).inputs() == []
    with pytest.raises(ValidationError):
        C.AddKnowledge.parse({})
    with pytest.raises(ValidationError):
        C.AddKnowledge.parse({"question": "q"})  # faq without answer
    with pytest.raises(ValidationError):
        C.AddKnowledge.parse({"question": "q", "answer": "a", "items": [{"content": "c", "type": "text"}]})
    with pytest.raises(ValidationError):
        C.AddKnowledge.parse({"question": "q", "answer": "a", "scope": "bad scope"})
    with pytest.raises(ValidationError):
        C.AddKnowledge.parse({"question": "q", "answer": "a", "unknownField": 1})


def test_rag_add_document_needs_exactly_one_source_and_sane_chunking():
    assert C.RagAddDocument.parse({"url": "https://example.org/a.pdf"}).wait is True
    assert C.RagAddDocument.parse({"contentBase64": "aGVsbG8=", "filename": "a.txt"})
    with pytest.raises(ValidationError):
        C.RagAddDocument.parse({"url": "https://x/a", "text": "hi"})
    with pytest.raises(ValidationError):
        C.RagAddDocument.parse({"url": "ftp://x/a"})
    with pytest.raises(ValidationError):
        C.RagAddDocument.parse({"text": "hi", "chunkSize": 200, "chunkOverlap": 200})


def test_remove_knowledge_ids_or_document():
    assert C.RemoveKnowledge.parse({"ids": ["a", "b"]}).ids == ["a", "b"]
    assert C.RemoveKnowledge.parse({"documentId": "d"}).document_id == "d"
    with pytest.raises(ValidationError):
        C.RemoveKnowledge.parse({})
    with pytest.raises(ValidationError):
        C.RemoveKnowledge.parse({"ids": ["a"], "documentId": "d"})


def test_generate_response_wire_is_camel_case_and_stream_id_checked():
    req = C.AiGenerateResponse.parse(
        {
            "accountId": "acc1",
            "userId": "42",
            "message": "hi",
            "streamId": "abcdef0123",
            "history": [{"role": "user", "content": "earlier"}],
        }
    )
    assert req.stream_id == "abcdef0123" and req.history[0].role == "user"
    with pytest.raises(ValidationError):
        C.AiGenerateResponse.parse({"accountId": "a", "userId": "u", "message": "m", "streamId": "bad id!"})
    with pytest.raises(ValidationError):
        C.AiGenerateResponse.parse({"accountId": "a", "userId": "u", "message": ""})
    reply = C.GeneratedReply(
        text="t",
        confidence=0.5,
        handoff=False,
        language="en",
        provider="local",
        model="local-extractive",
        latency_ms=1.0,
    )
    wire = reply.wire()
    assert "handoffReason" in wire and "latencyMs" in wire


def test_stream_chunk_final_carries_outcome():
    assert StreamChunk(seq=0, delta="he").wire()["done"] is False
    assert StreamChunk(seq=3, done=True, data={"text": "hello"}).data == {"text": "hello"}
    with pytest.raises(ValidationError):
        StreamChunk(seq=1, done=True)
    with pytest.raises(ValidationError):
        StreamChunk(seq=1, delta="x", data={"a": 1})


def test_settings_input_validates_url_and_thresholds():
    C.SaveAiSettings.parse({"openai": {"baseUrl": "http://127.0.0.1:9/v1", "apiKey": "sk-x"}})
    with pytest.raises(ValidationError):
        C.SaveAiSettings.parse({"openai": {"baseUrl": "file:///etc/passwd"}})
    with pytest.raises(ValidationError):
        C.SaveAiSettings.parse({"retrieval": {"bestThreshold": 0.05}})
    with pytest.raises(ValidationError):
        C.SaveAiSettings.parse({"defaultProvider": "claude"})


def test_ai_events_registered_with_subjects():
    assert EVENTS[RagDocumentProgress.SUBJECT] is RagDocumentProgress
    assert RagDocumentProgress.SUBJECT == "tgm.ai.evt.rag-document-progress.v1"
    assert KnowledgeChanged(scope=None, action="cleared", count=3).wire()["action"] == "cleared"
