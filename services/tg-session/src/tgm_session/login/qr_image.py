"""QR code images of `tg://login?token=…` URLs (PyPI segno: PNG and SVG without Pillow)."""

from __future__ import annotations

import base64
import io

import segno


def render(url: str, fmt: str = "png", size: int = 256) -> tuple[str, str]:
    """(base64 image, mime type). `size` is the PNG's pixels per side (at least, whole modules)."""
    qr = segno.make(url, error="m")
    width, _ = qr.symbol_size(scale=1, border=4)
    scale = max(1, size // width)
    buf = io.BytesIO()
    if fmt == "svg":
        qr.save(buf, kind="svg", scale=scale, border=4, xmldecl=False)
        return base64.b64encode(buf.getvalue()).decode(), "image/svg+xml"
    qr.save(buf, kind="png", scale=scale, border=4)
    return base64.b64encode(buf.getvalue()).decode(), "image/png"
