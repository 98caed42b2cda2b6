"""A fake Tailchat server for bots, built from seed 002 and the fork it documents (blooworet/tailchat;
upstream msgbyte/tailchat has none of these endpoints; facts in `shared/reference/outside-platforms.md` §1).

What it models:

- the OpenAPI bot endpoints with `X-App-Secret: <appId>:<secret>` (`openapi.py`): whoami,
  sendMessage (group with `groupId`, DM without), editMessage (the whole `meta` replaced),
  deleteMessage, ensureDMWithUser, answerCallbackQuery (the 30 s traceId, its owner bot and user, 200
  characters, 60 answers per bot with the window running from the last one), setAppBotInfo
  (callbackUrl, username once, allowGroup, receiveAllGroupMessages, commands with scopes), and the
  command reads getBotCommands / getBotCommandsByScope / getBotCommandMeta / getBotCommandsByUserIds
  with version, sha1 ETag and notModified; getForIntegration;
- the server's wire: `{"code":200,"data":…}`, errors `{name,message,code,…}` with most of them HTTP
  500 (a wrong secret is 500 "Open app secret not match"), 422 parameter validation, 401 without
  credentials; replyKeyboard sanitising on send (8x8, 32-char labels, 8 KB); inlineActions stored
  as they come;
- the server's quirks a client must live with: command reads are cached (1 h, cleared when the
  commands change) by appId (and scope) only, so `ifVersion`/`ifEtag` are answered from the first
  read's cache — a client must compare `version` itself (a test can switch the cache off with
  `POST /_fake/tailchat/features {"commandReadCache": false}`, a fake-only switch); a failed answerCallbackQuery does not
  consume the traceId;
- callbacks to the app's `callbackUrl` (`callbacks.py`, `inbox.py`): `inbox` (mention in a group,
  DM, all group messages — the bot's own included, as the server checks no author), `dm.start`,
  `buttonCallback`, with `X-TC-Payload-Type`, unsigned, unretried, without a timeout.

What it leaves out: the WebSocket (TailProto) API and `X-Token` logins (an `X-Token` is 401
INVALID_TOKEN), i18n of messages (Chinese defaults as in the code), reactions/recall, the owner's
app management (setAppInfo & co. answer "Not found openapp" with the bot's header, as the code
implies), inline-action click signatures (off by default on the server), the 1 h auth cache.

How a test drives it: `build()` (or the `fake_tailchat` pytest fixture, `tgm_fakes.testing`) serves
a seeded world (`world.py`: the default app `DEFAULT_APP_SECRET`, bot `BOT_USER_ID`, people
`ALICE_ID`/`BOB_ID`, group `GROUP_ID` with channel `GROUP_CONVERSE_ID`). Point the bot's callback
URL at the webhook with setAppBotInfo, then act as people through `/_fake/tailchat/*` (`users.py`):
post in the group with `[at=<bot id>]…[/at]`, DM the bot, start a DM by deep link, press a button of
a message the bot sent; read the bot's messages, the callbacks sent and the callback answers shown;
`POST /_fake/tailchat/clock {"advance": 31}` moves the fake's time past the 30 s trace window.
`/_fake/faults` injects HTTP faults into the bot API as in the other fakes.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from ..common import FakeState, FaultMiddleware, control_routes
from . import openapi, users
from .callbacks import CallbackSender, Delivery
from .inbox import Inbox
from .world import (
    ALICE_ID,
    BOB_ID,
    BOT_USER_ID,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    GROUP_CONVERSE_ID,
    GROUP_ID,
    OWNER_USER_ID,
    FakeClock,
    TailchatWorld,
    TcError,
)

__all__ = [
    "ALICE_ID",
    "BOB_ID",
    "BOT_USER_ID",
    "DEFAULT_APP_ID",
    "DEFAULT_APP_SECRET",
    "GROUP_CONVERSE_ID",
    "GROUP_ID",
    "OWNER_USER_ID",
    "CallbackSender",
    "Delivery",
    "FakeClock",
    "TailchatWorld",
    "TcError",
    "build",
]


def error_body(status: int) -> tuple[int, Any]:
    """Injected faults in the server's error shape."""
    if status == 401:
        return status, {
            "name": "UnAuthorizedError",
            "message": "Unauthorized",
            "code": 401,
            "type": "INVALID_TOKEN",
            "data": {"error": "Invalid Token"},
        }
    messages = {400: "Bad request", 404: "Not found", 429: "Too Many Requests", 500: "Internal error"}
    return status, {"name": "Error", "message": messages.get(status, "error"), "code": status}


def build(
    world: TailchatWorld | None = None, state: FakeState | None = None, sender: CallbackSender | None = None
) -> Starlette:
    world = world or TailchatWorld()
    state = state or FakeState()
    sender = sender or CallbackSender()
    routes: list[Route] = [
        *openapi.routes(world, Inbox(world, sender)),
        *users.routes(world, sender),
        *control_routes(state),
    ]
    app = Starlette(
        routes=routes, middleware=[Middleware(FaultMiddleware, state=state, error_body=error_body)]
    )
    app.state.fake = state
    app.state.world = world
    app.state.callbacks = sender
    return app
