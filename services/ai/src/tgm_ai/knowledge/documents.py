"""Reading documents: decode a base64 upload (a URL is downloaded by `adapters.fetch`), recognise the
kind (text, Markdown, HTML, PDF, DOCX) from the bytes and name, and extract text with page offsets.

Anything that cannot be read raises `DocumentError` with a message an operator understands; nothing
is stored before extraction succeeded, so a corrupt file leaves the knowledge base unchanged.
Extraction is CPU work and runs in a worker thread; `progress` is called from that thread.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_BYTES = 30 * 1024 * 1024
KINDS = ("text", "markdown", "html", "pdf", "docx")


class DocumentError(Exception):
    """The document cannot be used; the message says why."""


@dataclass
class RawDocument:
    data: bytes
    filename: str | None
    mime_type: str | None
    source: str  # the URL, "upload" or "text"


@dataclass
class Extracted:
    kind: str
    text: str
    page_starts: list[int] = field(default_factory=list)  # offset where each page begins (PDF)
    pages: int | None = None
    title: str | None = None


def decode_upload(content_base64: str, filename: str | None, mime_type: str | None) -> RawDocument:
    text = content_base64.strip()
    if text.startswith("data:") and "," in text:  # a data URL from a browser upload
        head, text = text.split(",", 1)
        mime_type = mime_type or head[5:].split(";")[0] or None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DocumentError("contentBase64 is not valid base64") from None
    if len(data) > MAX_BYTES:
        raise DocumentError(f"the document is larger than {MAX_BYTES // (1024 * 1024)} MB")
    if not data:
        raise DocumentError("the uploaded file is empty")
    return RawDocument(data, filename, mime_type, "upload")


def detect_kind(raw: RawDocument) -> str:
    name = (raw.filename or "").lower()
    mime = (raw.mime_type or "").lower()
    head = raw.data[:1024]
    if head.startswith(b"%PDF") or name.endswith(".pdf") or mime == "application/pdf":
        return "pdf"
    if head.startswith(b"PK") or name.endswith(".docx") or "wordprocessingml" in mime:
        return "docx"
    if (
        name.endswith((".html", ".htm"))
        or "html" in mime
        or re.search(rb"<(!doctype html|html|body)[\s>]", head, re.I)
    ):
        return "html"
    if name.endswith((".md", ".markdown")) or "markdown" in mime:
        return "markdown"
    if name.endswith((".doc", ".xls", ".xlsx", ".ppt", ".pptx", ".png", ".jpg", ".jpeg", ".gif", ".zip")):
        raise DocumentError(
            f"unsupported file type {name.rsplit('.', 1)[-1]!r}: use text, Markdown, HTML, PDF or DOCX"
        )
    return "text"


def _decode_text(data: bytes) -> str:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DocumentError("the file is binary, not text: use text, Markdown, HTML, PDF or DOCX")
    for enc in ("utf-8-sig", "utf-16", "big5", "gb18030"):
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        if enc == "utf-16" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue
        return text
    raise DocumentError("the text is in an unknown encoding (use UTF-8)")


def _markdown(text: str) -> str:
    text = re.sub(r"```[^\n]*\n(.*?)```", r"\1", text, flags=re.S)
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"^\s{0,3}#{1,6}\s*", "", text, flags=re.M)
    text = re.sub(r"^\s{0,3}>\s?", "", text, flags=re.M)
    text = re.sub(r"^\s*[-*+]\s+", "• ", text, flags=re.M)
    text = re.sub(r"(\*\*|__|\*|_|`)(\S.*?\S|\S)\1", r"\2", text)
    text = re.sub(r"^\s*\|?(\s*:?-{3,}:?\s*\|)+\s*$", "", text, flags=re.M)  # table rules
    return text


def _html(data: bytes) -> tuple[str, str | None]:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    try:
        tree = HTMLParser(_decode_text(data))
    except DocumentError:
        raise
    except Exception as exc:
        raise DocumentError(f"the HTML cannot be parsed ({type(exc).__name__})") from None
    title = tree.css_first("title")
    for node in tree.css("script, style, noscript, svg, nav, footer, header, form, iframe"):
        node.decompose()
    root = tree.body or tree.root
    if root is None:
        return "", None
    for node in root.css("p, div, li, h1, h2, h3, h4, h5, h6, br, tr, section, article"):
        node.insert_after("\n")
    text = root.text(separator=" ")
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r"\s*\n\s*", "\n", text)
    return text.strip(), (title.text(strip=True) if title else None)


def _pdf(data: bytes, progress: Callable[[float], None]) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PdfStreamError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise DocumentError("the PDF is password-protected")
            except DocumentError:
                raise
            except Exception:
                raise DocumentError("the PDF is encrypted and cannot be read") from None
        pages = reader.pages
        n = len(pages)
    except DocumentError:
        raise
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, OSError, AssertionError) as exc:
        raise DocumentError(
            f"the PDF is corrupt or not a PDF ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    if n == 0:
        raise DocumentError("the PDF has no pages")
    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    bad = 0
    for i in range(n):
        try:
            page_text = pages[i].extract_text() or ""
        except Exception:
            bad += 1
            page_text = ""
        starts.append(offset)
        parts.append(page_text)
        offset += len(page_text) + 2
        progress((i + 1) / n)
    if bad == n:
        raise DocumentError("the PDF is corrupt: no page could be read")
    title = None
    try:
        meta = reader.metadata
        title = meta.get("/Title") if meta else None
    except Exception:
        title = None
    return Extracted("pdf", "\n\n".join(parts), starts, n, str(title) if title else None)


def _docx(data: bytes) -> Extracted:
    try:
        import docx

        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentError(f"the DOCX is corrupt or not a Word document ({type(exc).__name__})") from None
    except Exception as exc:
        raise DocumentError(f"the DOCX cannot be read ({type(exc).__name__})") from None
    lines = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                lines.append(" | ".join(cells))
    title = document.core_properties.title or None
    return Extracted("docx", "\n".join(lines), title=title)


def extract(raw: RawDocument, progress: Callable[[float], None] | None = None) -> Extracted:
    """Text of the document; raises DocumentError when it cannot be read or holds no text."""
    progress = progress or (lambda _f: None)
    kind = detect_kind(raw)
    if kind == "pdf":
        out = _pdf(raw.data, progress)
    elif kind == "docx":
        out = _docx(raw.data)
    elif kind == "html":
        text, title = _html(raw.data)
        out = Extracted("html", text, title=title)
    elif kind == "markdown":
        out = Extracted("markdown", _markdown(_decode_text(raw.data)))
    else:
        out = Extracted("text", _decode_text(raw.data))
    out.text = out.text.replace("\r\n", "\n").replace("\x00", "")
    if len(out.text.strip()) < 2:
        what = "scanned PDF without a text layer?" if kind == "pdf" else "empty document"
        raise DocumentError(f"no text could be extracted ({what})")
    progress(1.0)
    return out
