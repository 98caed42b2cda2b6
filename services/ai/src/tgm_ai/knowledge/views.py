"""How stored knowledge looks elsewhere: the index entry of a stored item, and the item, citation and
document status views the commands answer with."""

from __future__ import annotations

from typing import Any

from tgm_contracts.models.ai import Citation, DocumentStatus, KnowledgeItem

from ..domain.index import Entry
from ..domain.text import shorten
from ..ids import now


def entry_text(doc: dict[str, Any]) -> str:
    """The text an item is indexed (and embedded) by."""
    if doc["type"] == "faq":
        return f"{doc.get('question') or ''}\n{doc.get('answer') or ''}"
    return "\n".join(x for x in (doc.get("title"), doc.get("content")) if x and doc["type"] == "text") or (
        doc.get("content") or ""
    )


def entry_of(doc: dict[str, Any]) -> Entry:
    return Entry(
        id=doc["_id"],
        scope=doc["scope"],
        type=doc["type"],
        text=entry_text(doc),
        question=doc.get("question"),
        document_id=doc.get("document_id"),
        meta={
            k: doc.get(k)
            for k in ("title", "source", "chunk_index", "start", "end", "page", "answer", "content")
        },
    )


def passage_text(e: Entry) -> str:
    """What a hit shows and what generation quotes: the FAQ pair, or the passage itself."""
    if e.type == "faq":
        return f"{e.question}\n{e.meta.get('answer') or ''}".strip()
    return e.meta.get("content") or e.text


def item_view(doc: dict[str, Any]) -> KnowledgeItem:
    """A stored item as callers see it (its stored extras, such as the vector, are not part of it)."""
    return KnowledgeItem.model_validate({**doc, "id": doc["_id"], "tags": doc.get("tags") or []})


def item_of_entry(e: Entry) -> KnowledgeItem:
    """The item as the index knows it (when its stored document is not at hand)."""
    m = e.meta
    return KnowledgeItem(
        id=e.id,
        scope=e.scope,
        type=e.type,
        title=m.get("title"),
        question=e.question,
        answer=m.get("answer"),
        content=m.get("content"),
        source=m.get("source"),
        document_id=e.document_id,
        chunk_index=m.get("chunk_index"),
        created_at=now(),
    )


def citation_of(e: Entry, score: float | None = None) -> Citation:
    m = e.meta
    snippet = m.get("answer") if e.type == "faq" else (m.get("content") or e.text)
    return Citation(
        knowledge_id=e.id,
        document_id=e.document_id,
        chunk_id=e.id if e.type == "document" else None,
        chunk_index=m.get("chunk_index"),
        start=m.get("start"),
        end=m.get("end"),
        page=m.get("page"),
        title=m.get("title") or (e.question if e.type == "faq" else None),
        source=m.get("source") or e.type,
        score=round(score, 6) if score is not None else None,
        snippet=shorten(snippet or "", 300) or None,
    )


def doc_status(d: dict[str, Any]) -> DocumentStatus:
    return DocumentStatus.model_validate({**d, "document_id": d["_id"]})
