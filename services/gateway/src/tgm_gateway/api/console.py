"""The operator console (`console/`, a built single-page app) served at `/`.

Files come from the build's output folder (`TGM_GATEWAY_CONSOLE_DIR`, default `console/dist` of the
checkout this package runs from); any other path that is not one of the gateway's own routes gets
`index.html`, so the app's own links work on reload. Every console response carries a strict
Content-Security-Policy: scripts and styles only from the gateway itself (the build has no inline
script), API calls and the WebSocket only to the gateway, no framing. When the folder holds no
build, `/` says how to make one instead of failing. The routes are added last, after every API
route, so they never shadow one; paths under the gateway's own prefixes answer 404 here.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from .http import allowed_methods

#: services/gateway/src/tgm_gateway/api/console.py -> the checkout's root.
_ROOT = Path(__file__).resolve().parents[5]
DEFAULT_DIR = _ROOT / "console" / "dist"

#: Nothing inline, nothing from elsewhere; `ws:`/`wss:` of the page's own host via 'self' (CSP 3).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: Paths the console never answers (the gateway's own routes, and typos under them).
RESERVED = ("api/", "docs", "redoc", "openapi.json", "asyncapi", "metrics", "healthz", "readyz")

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>TG-Matrix console</title>
</head><body><h1>The console is not built</h1><p>Build it with <code>make install</code> (or
<code>cd console &amp;&amp; npm ci &amp;&amp; npm run build</code>), then reload. It is looked for in
<code>{where}</code> (<code>TGM_GATEWAY_CONSOLE_DIR</code> moves it). The API is at
<a href="/docs">/docs</a>.</p></body></html>"""


def console_dir() -> Path:
    return Path(os.environ.get("TGM_GATEWAY_CONSOLE_DIR") or DEFAULT_DIR).resolve()


def register(api: FastAPI, root: Path | None = None) -> None:
    base = (root or console_dir()).resolve()

    def file(path: Path) -> Response:
        # Hashed build assets never change; index.html must be asked for again every time.
        immutable = path.parent.name == "assets"
        cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
        return FileResponse(path, headers={**SECURITY_HEADERS, "Cache-Control": cache})

    @api.get("/{path:path}", include_in_schema=False)
    async def console(path: str) -> Response:
        if path.startswith(RESERVED):
            served = allowed_methods(api, f"/{path}")
            if served:  # a route of the API that takes other methods (a GET of a POST command)
                return JSONResponse(
                    {"ok": False, "error": {"code": "VALIDATION_ERROR", "message": "method not allowed"}},
                    status_code=405,
                    headers={"Allow": ", ".join(served)},
                )
            return JSONResponse(
                {"ok": False, "error": {"code": "NOT_FOUND", "message": f"no route /{path[:100]}"}},
                status_code=404,
            )
        index = base / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT.format(where=base), status_code=503, headers=SECURITY_HEADERS)
        if path:
            wanted = (base / path).resolve()
            if wanted.is_relative_to(base) and wanted.is_file():
                return file(wanted)
            if path.startswith("assets/"):  # a missing asset is a 404, not the app
                return Response(status_code=404, headers=SECURITY_HEADERS)
        return file(index)
