"""The composition root of the tailchat service: `build()` makes the runtime, the factory of its
`TailchatApp` and the two domains' handlers. Nothing is built at import: tests build as many runtimes
as they like (and hand `build` an httpx transport to stand in for a Tailchat server).

- `apps`: registered Tailchat bot apps (secret encrypted at rest), the bot's settings and commands,
  the callback token.
- `messages`: send / edit / delete as the bot, answer button presses.
- `inbound`: the callbacks Tailchat POSTs to the gateway, handed over by it
  (`receive-tailchat-callback`), checked against the app's token and published as channel-neutral
  events.

Both reach Tailchat through one `TailchatClient` (adapters/tailchat.py), paced per app.
"""

from __future__ import annotations

from tgm_contracts import Service
from tgm_contracts.rpc_bots import AnswerTelegramCallback

from . import __version__
from .adapters.tailchat import TailchatClient, Transport
from .app import Runtime, TailchatApp
from .apps import handlers as apps_handlers
from .apps.service import AppService
from .apps.store import AppStore
from .inbound import handlers as inbound_handlers
from .inbound.service import Callbacks
from .inbound.store import DeliveryStore
from .messages import handlers as messages_handlers
from .messages.service import MessageService
from .messages.store import MessageStore, SendStore
from .metrics import TailchatMetrics
from .migrations import MIGRATIONS
from .pacing import AnswerBudget, CallPacer
from .settings import TailchatSettings


def build(settings: TailchatSettings | None = None, *, transport: Transport | None = None) -> Runtime:
    """A runtime serving the 11 `channels` commands and 2 rpcs (tests pass settings and a transport)."""
    settings = settings or TailchatSettings()
    runtime = Runtime(Service.TAILCHAT, __version__, migrations=MIGRATIONS, settings=settings.runtime)
    metrics = TailchatMetrics(runtime.registry)

    async def make_app() -> TailchatApp:
        client = TailchatClient(
            CallPacer(settings.calls_per_second),
            metrics,
            timeout=settings.timeout_seconds,
            attempts=settings.attempts,
            backoff=settings.retry_backoff_seconds,
            transport=transport,
        )

        # A removed app's remembered messages and deliveries go with it, through their domains.
        async def forget_messages(app_id: str) -> int:
            await runtime.app.inbound.forget_app(app_id)
            return await runtime.app.messages.forget_app(app_id)

        apps = AppService(
            AppStore(runtime.db),
            client,
            runtime.secrets,
            public_url=settings.public_url,
            forget_messages=forget_messages,
        )
        messages = MessageService(
            MessageStore(runtime.db),
            client,
            apps.credentials,
            apps.bot_user_id,
            AnswerBudget(settings.callback_answer_limit, settings.callback_answer_window_seconds),
            memory_days=settings.message_memory_days,
            press_arrived=lambda app_id, trace_id: runtime.app.inbound.press_arrived(app_id, trace_id),
            sends=SendStore(runtime.db),
            telegram=lambda req: runtime.call(AnswerTelegramCallback, req, timeout=30.0),
        )
        return TailchatApp(
            apps=apps, messages=messages, inbound=Callbacks(DeliveryStore(runtime.db), apps, runtime.publish)
        )

    @runtime.on_stop
    async def _close_client(rt: object) -> None:
        await runtime.app.apps.client.aclose()

    runtime.provide(make_app)
    for domain in (apps_handlers, messages_handlers, inbound_handlers):
        domain.register(runtime)
    return runtime
