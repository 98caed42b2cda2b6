"""The 9 ads commands, each declared once on the `AdService` method that answers it (`@answers(Cmd)`,
`tgm_runtime.routes`; those that change a campaign take who asks); and the replies to the posts, from
campaign's one `message-received` consumer."""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import AdService


def register(runtime: Runtime) -> None:
    route_use_case(runtime, AdService, lambda app: app.ads)
