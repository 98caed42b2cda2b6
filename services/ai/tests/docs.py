"""Documents made on the fly for tests: PDF (fpdf2), DOCX (python-docx), HTML, Markdown."""

from __future__ import annotations

import base64
import io

PARAGRAPH = (
    "Section {n}. Our support desk answers within {h} hours on business days. Refunds for plan {n} are "
    "processed in {d} days after the request is approved. Keep your invoice number ready when you call. "
)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: int, paragraphs_per_page: int = 3, special: dict[int, str] | None = None) -> bytes:
    """A real, minimal PDF (Helvetica text lines, uncompressed) written by hand: fast at any size."""
    objects: list[bytes] = []
    font_id, pages_id = 3, 2
    page_ids = []
    contents = []
    for p in range(1, pages + 1):
        body = " ".join(
            PARAGRAPH.format(n=p * 10 + i, h=(p + i) % 48 + 1, d=(p * i) % 30 + 1)
            for i in range(paragraphs_per_page)
        )
        if special and p in special:
            body = special[p] + " " + body
        words, lines, cur = body.split(), [], ""
        for w in words:
            if len(cur) + len(w) > 95:
                lines.append(cur)
                cur = w
            else:
                cur = f"{cur} {w}".strip()
        lines.append(cur)
        ops = (
            ["BT", "/F1 9 Tf", "11 TL", "40 800 Td"] + [f"({_pdf_escape(ln)}) Tj T*" for ln in lines] + ["ET"]
        )
        contents.append("\n".join(ops).encode("latin-1"))
    n_fixed = 3
    for i in range(pages):
        page_ids.append(n_fixed + 1 + 2 * i)
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, content in enumerate(contents):
        pid = page_ids[i]
        objects.append(
            f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 595 842] "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {pid + 1} 0 R >>".encode()
        )
        objects.append(
            b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{num} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    d = docx.Document()
    d.core_properties.title = "Handbook"
    for p in paragraphs:
        d.add_paragraph(p)
    if table:
        t = d.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = cell
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
