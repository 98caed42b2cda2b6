"""The login commands: code login (code, resend, 2FA, logout) and QR login.

Each is declared once, on the use case method that answers it: `@answers(Cmd)` (`tgm_runtime.routes`).
"""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .qr import QrLogins
from .service import CodeLogin


def register(runtime: Runtime) -> None:
    route_use_case(runtime, CodeLogin, lambda app: app.login)
    route_use_case(runtime, QrLogins, lambda app: app.qr)
