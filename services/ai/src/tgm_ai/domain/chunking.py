"""Chunking with overlap: windows of about `size` characters that end at a paragraph, sentence or word
boundary when one is near, each starting `overlap` characters before the previous one ended, so an
answer that straddles a boundary is whole in at least one chunk. Positions refer to the extracted text.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

_BOUNDARIES = ("\n\n", "\n", "。", "！", "？", ". ", "! ", "? ", "；", "; ", "，", ", ", " ")


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    start: int
    end: int
    text: str
    page: int | None = None


def _cut_point(text: str, start: int, hard_end: int, size: int) -> int:
    if hard_end >= len(text):
        return len(text)
    window = text[start:hard_end]
    floor = int(size * 0.5)  # never cut so early that chunks become tiny
    for sep in _BOUNDARIES:
        i = window.rfind(sep)
        if i >= floor:
            return start + i + len(sep)
    return hard_end


def chunk_text(
    text: str, size: int = 800, overlap: int = 120, page_starts: list[int] | None = None
) -> list[Chunk]:
    """Split `text`. With `page_starts` (sorted offsets where each page begins) every chunk stays
    inside one page, so its citation names the page the text is on."""
    if page_starts:
        out: list[Chunk] = []
        bounds = [*page_starts, len(text)]
        for page, (a, b) in enumerate(itertools.pairwise(bounds), start=1):
            for c in chunk_text(text[a:b], size, overlap):
                out.append(Chunk(len(out), a + c.start, a + c.end, c.text, page))
        return out
    if size < 20:
        raise ValueError("chunk size must be at least 20 characters")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be >= 0 and smaller than the chunk size")
    chunks: list[Chunk] = []
    n = len(text)
    start = 0
    while start < n:
        # skip leading whitespace so chunks do not start blank
        while start < n and text[start].isspace():
            start += 1
        if start >= n:
            break
        end = _cut_point(text, start, min(n, start + size), size)
        piece = text[start:end].strip()
        if piece:
            chunks.append(Chunk(len(chunks), start, end, piece))
        if end >= n:
            break
        nxt = max(end - overlap, start + 1)
        # begin the overlap at a word boundary when possible
        if overlap:
            sp = text.find(" ", nxt, end)
            if sp != -1 and sp - nxt < overlap // 2:
                nxt = sp + 1
        start = nxt
    return chunks
