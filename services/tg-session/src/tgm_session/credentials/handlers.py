"""The API credential commands: the credential pool and the developer-site scrape.

Each is declared once, on the use case method that answers it: `@answers(Cmd)` (`tgm_runtime.routes`).
"""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .scrape import Scrapes
from .service import CredentialPool


def register(runtime: Runtime) -> None:
    route_use_case(runtime, CredentialPool, lambda app: app.credentials)
    route_use_case(runtime, Scrapes, lambda app: app.scrapes)
