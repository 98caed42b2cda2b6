"""The test API, `/_fake/tailchat/*`: a test acts as Tailchat people and reads what the bot did.

Acting as a user (each answers `{…, "callbacks": [...]}`: the callbacks it caused, after waiting up
to `wait` seconds, default 10, for our webhook to answer; delivery itself has no timeout):

- `POST /_fake/tailchat/group-message {userId, content, groupId?, converseId?, plain?, mentions?, e2ee?}`:
  a group message; `mentions` default to the `[at=<id>]name[/at]` markup in `content` (what the web
  client puts in `meta.mentions`). A mentioned bot gets an `inbox` callback with the whole inbox
  document; a member bot with `receiveAllGroupMessages` (and `allowGroup` not false) gets the
  inbox-like body without `_id`, `readed` and timestamps.
- `POST /_fake/tailchat/dm {userId, content, botUserId?, plain?, e2ee?, dmStartFromButton?}`: a DM
  to the bot (the DM is made if needed): `inbox` with no `groupId`, and `messagePlainContent` only
  when `plain` was sent. A typed `/start <arg>` also sends `dm.start` with `params {text: arg}`
  only when the feature `botDmStartFromTyped` is on (`POST /_fake/tailchat/features`).
- `POST /_fake/tailchat/dm-start {userId, botUserId?, payload?}`: the start button / deep link
  (chat.converse.startBotDM): `dm.start` with `params` = the deep-link string (≤ 64 of
  `[A-Za-z0-9_]`) or absent.
- `POST /_fake/tailchat/press {userId, messageId, actionId, traceId?}`: a click on an inline button
  of a stored message (inline.action.click). `traceId` is the frontend's `analytics.traceId`
  (generated when left out; `null` sends none, and then no answer can succeed). invoke/modal
  buttons whose `params.botId` is an openapi bot send `buttonCallback`; command is refused 400;
  url/deeplink only answer their route; 20 clicks per 10 s per user+action, then 429.

Reading and setting up: `GET /_fake/tailchat/world` (ids and the default app's secret),
`GET /_fake/tailchat/messages?converseId=&author=`, `GET /_fake/tailchat/deleted`,
`GET /_fake/tailchat/callbacks`, `GET /_fake/tailchat/answers` (what answerCallbackQuery showed),
`POST /_fake/tailchat/apps {appName, capability?, callbackUrl?, callbackAnswerRateLimit?}`,
`POST /_fake/tailchat/users {nickname}`, `POST /_fake/tailchat/groups {name, owner, members}`,
`POST /_fake/tailchat/groups/{groupId}/members {userId, canDelete?, muted?}`,
`POST /_fake/tailchat/clock {advance: seconds}`, `POST /_fake/tailchat/reset`.
Errors of this API: HTTP 400 `{"error": …}`; a refusal by the server's rules is its own error body.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .callbacks import CallbackSender, Delivery
from .inbox import Inbox
from .world import (
    BOT_USER_ID,
    DEEP_LINK,
    DM_START_LIMIT,
    DM_START_WINDOW,
    GROUP_ID,
    START,
    FakeClock,
    TailchatWorld,
    TcApp,
    TcError,
    plain,
)

MENTION = re.compile(r"\[at=([^\]]+)\]")


class BadRequest(Exception):
    pass


def _str(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key} is required (a string)")
    return value


class People:
    """What Tailchat people do, and the callbacks it makes the server send."""

    def __init__(self, world: TailchatWorld, sender: CallbackSender) -> None:
        self.world, self.sender = world, sender
        self.inbox = Inbox(world, sender)

    def _human(self, user_id: str) -> None:
        user = self.world.users.get(user_id)
        if user is None or user.type != "normalUser":
            raise BadRequest(f"no person {user_id!r} (create one with POST /_fake/tailchat/users)")

    def _bot_app(self, bot_user_id: str) -> TcApp:
        app = self.world.app_of_bot(bot_user_id)
        if app is None:
            raise BadRequest(f"no openapi bot {bot_user_id!r}")
        return app

    def group_message(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[Delivery]]:
        world = self.world
        user_id, content = _str(body, "userId"), _str(body, "content")
        self._human(user_id)
        group_id = _str(body, "groupId", GROUP_ID)
        group = world.groups.get(group_id)
        if group is None:
            raise BadRequest(f"no group {group_id!r}")
        converse_id = _str(body, "converseId", group.panels[0])
        mentions = body.get("mentions")
        if mentions is None:
            mentions = list(dict.fromkeys(MENTION.findall(content)))
        e2ee = body.get("e2ee") is True
        meta: dict[str, Any] = {"mentions": mentions}
        if e2ee:
            meta["e2ee"] = True
        plain_text = body.get("plain")
        message = world.post_message(user_id, converse_id, content, group_id, plain_text, meta)
        return message, self.inbox.group_message(message, plain_text)

    def dm(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[Delivery]]:
        world = self.world
        user_id, content = _str(body, "userId"), _str(body, "content")
        self._human(user_id)
        app = self._bot_app(_str(body, "botUserId", BOT_USER_ID))
        converse_id = world.ensure_dm(user_id, app.bot_user_id)
        plain_text = body.get("plain")
        e2ee = body.get("e2ee") is True
        from_button = body.get("dmStartFromButton") is True
        meta: dict[str, Any] = {}
        if e2ee:
            meta["e2ee"] = True
        if from_button:
            meta["dmStartFromButton"] = True
        text = (plain_text if isinstance(plain_text, str) and plain_text.strip() else content).strip()
        start = START.match(text)
        typed_start = bool(world.features.get("botDmStartFromTyped"))
        sent = []
        if start and typed_start:
            world.count(
                f"botdm:start:{user_id}:{app.bot_user_id}",
                DM_START_LIMIT,
                DM_START_WINDOW,
                plain("Too many /start in short time"),
            )
        message = world.post_message(user_id, converse_id, content, None, plain_text, meta)
        if start and typed_start:
            start_payload: dict[str, Any] = {
                "botUserId": app.bot_user_id,
                "fromUserId": user_id,
                "converseId": converse_id,
                "timestamp": world.now_ms(),
            }
            arg = (start.group(1) or "").strip()
            if arg:
                start_payload["params"] = {"text": arg}
            sent.append(self._dm_start(app, start_payload))
        if not (start and from_button and typed_start):
            sent.append(self.inbox.deliver(app, Inbox.payload(message, plain_text), whole=True))
        return message, sent

    def _dm_start(self, app: TcApp, p: dict[str, Any]) -> Delivery:
        payload = {
            "botUserId": p["botUserId"],
            "fromUserId": p["fromUserId"],
            "converseId": p["converseId"],
            "params": p.get("params"),
            "timestamp": p["timestamp"],
        }
        return self.sender.send(
            app,
            "dm.start",
            {"type": "dm.start", "payload": {k: v for k, v in payload.items() if v is not None}},
        )

    def dm_start(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[Delivery]]:
        world = self.world
        user_id = _str(body, "userId")
        self._human(user_id)
        app = self._bot_app(_str(body, "botUserId", BOT_USER_ID))
        deep_link = body.get("payload")
        if deep_link is not None:
            deep_link = str(deep_link)
            if len(deep_link) > 64:
                raise plain("Invalid deep link payload: length must be <= 64")
            if deep_link and not DEEP_LINK.match(deep_link):
                raise plain("Invalid deep link payload: only A–Z, a–z, 0–9 and underscore are allowed")
        world.count(
            f"botdm:start:{user_id}:{app.bot_user_id}",
            DM_START_LIMIT,
            DM_START_WINDOW,
            plain("Too many /start in short time"),
        )
        converse_id = world.ensure_dm(user_id, app.bot_user_id)
        start = {
            "botUserId": app.bot_user_id,
            "fromUserId": user_id,
            "converseId": converse_id,
            "timestamp": world.now_ms(),
            "params": deep_link,
        }
        return {"converseId": converse_id}, [self._dm_start(app, start)]

    def press(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[Delivery]]:
        user_id = _str(body, "userId")
        self._human(user_id)
        trace = body.get("traceId", f"tc-{uuid.uuid4().hex[:16]}")
        if trace is not None and not isinstance(trace, str):
            raise BadRequest("traceId must be a string or null")
        answer, app, callback = self.world.click(
            user_id, _str(body, "messageId"), _str(body, "actionId"), trace
        )
        sent = [self.sender.send(app, "buttonCallback", callback)] if app and callback else []
        return answer, sent


def routes(world: TailchatWorld, sender: CallbackSender) -> list[Route]:
    people = People(world, sender)
    base = "/_fake/tailchat"

    async def settle(deliveries: list[Delivery], wait: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + wait
        for d in deliveries:
            await asyncio.to_thread(d.done.wait, max(0.0, deadline - time.monotonic()))
        return [d.record() for d in deliveries]

    def acting(
        act: Callable[[dict[str, Any]], tuple[dict[str, Any], list[Delivery]]], key: str
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                body = await _json(request)
                wait = float(body.get("wait", 10))
                with world.lock:
                    result, sent = act(body)
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, 400)
            except TcError as exc:
                return JSONResponse(exc.body(), exc.status)
            return JSONResponse({key: result, "callbacks": await settle(sent, wait)})

        return handle

    async def world_view(request: Request) -> Response:
        with world.lock:
            return JSONResponse(
                {
                    "apps": [
                        {
                            "appId": a.app_id,
                            "appSecret": a.app_secret,
                            "appName": a.app_name,
                            "botUserId": a.bot_user_id,
                            "capability": a.capability,
                            "bot": a.bot,
                        }
                        for a in world.apps.values()
                    ],
                    "users": [
                        {**u.public(), "type": u.type, "username": u.username} for u in world.users.values()
                    ],
                    "groups": [
                        {
                            "groupId": g.id,
                            "name": g.name,
                            "owner": g.owner,
                            "members": g.members,
                            "panels": g.panels,
                        }
                        for g in world.groups.values()
                    ],
                    "dms": [{"converseId": c, "members": m} for c, m in world.dms.items()],
                    "features": world.features,
                    "now": world.now_ms(),
                }
            )

    async def messages(request: Request) -> Response:
        q = request.query_params
        with world.lock:
            found = [
                world.public_message(m)
                for m in world.messages.values()
                if (not q.get("converseId") or m["converseId"] == q["converseId"])
                and (not q.get("author") or m["author"] == q["author"])
            ]
        return JSONResponse(found)

    async def deleted(request: Request) -> Response:
        return JSONResponse([world.public_message(m) for m in world.deleted])

    async def callbacks(request: Request) -> Response:
        return JSONResponse([d.record() for d in sender.deliveries])

    async def answers(request: Request) -> Response:
        return JSONResponse(
            [
                {
                    "userId": a.user_id,
                    "text": a.text,
                    "show_alert": a.show_alert,
                    "traceId": a.trace_id,
                    "ts": a.ts,
                }
                for a in world.answers
            ]
        )

    async def create_app(request: Request) -> Response:
        try:
            body = await _json(request)
            name = _str(body, "appName")
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, 400)
        with world.lock:
            app = world.add_app(
                name,
                capability=body.get("capability"),
                callbackUrl=body.get("callbackUrl"),
                callbackAnswerRateLimit=body.get("callbackAnswerRateLimit"),
            )
        return JSONResponse({"appId": app.app_id, "appSecret": app.app_secret, "botUserId": app.bot_user_id})

    async def create_user(request: Request) -> Response:
        try:
            name = _str(await _json(request), "nickname")
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, 400)
        with world.lock:
            return JSONResponse(world.add_user(name).public())

    async def create_group(request: Request) -> Response:
        try:
            body = await _json(request)
            name, owner = _str(body, "name"), _str(body, "owner")
            members = body.get("members") or []
            unknown = [m for m in [owner, *members] if m not in world.users]
            if unknown:
                raise BadRequest(f"unknown users {unknown}")
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, 400)
        with world.lock:
            group = world.add_group(name, owner, members)
        return JSONResponse({"groupId": group.id, "converseId": group.panels[0], "members": group.members})

    async def add_member(request: Request) -> Response:
        try:
            body = await _json(request)
            user_id = _str(body, "userId")
            group = world.groups.get(request.path_params["group_id"])
            if group is None or user_id not in world.users:
                raise BadRequest("unknown group or user")
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, 400)
        with world.lock:
            if user_id not in group.members:
                group.members.append(user_id)
            for flag, bucket in (("canDelete", group.deleters), ("muted", group.muted)):
                if body.get(flag) is True:
                    bucket.add(user_id)
                elif body.get(flag) is False:
                    bucket.discard(user_id)
        return JSONResponse({"groupId": group.id, "members": group.members})

    async def features(request: Request) -> Response:
        try:
            body = await _json(request)
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, 400)
        with world.lock:
            world.features.update(body)
            return JSONResponse(world.features)

    async def clock(request: Request) -> Response:
        try:
            body = await _json(request)
            seconds = float(body.get("advance", 0))
        except (BadRequest, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"give {{advance: seconds}}: {exc}"}, 400)
        if not isinstance(world.clock, FakeClock):
            return JSONResponse({"error": "this world runs on an injected clock; move that one"}, 400)
        with world.lock:
            world.clock.advance(seconds)
        return JSONResponse({"now": world.now_ms(), "offset": world.clock.offset})

    async def reset(request: Request) -> Response:
        world.reset()
        sender.clear()
        return JSONResponse({"ok": True})

    return [
        Route(base + "/world", world_view, methods=["GET"]),
        Route(base + "/messages", messages, methods=["GET"]),
        Route(base + "/deleted", deleted, methods=["GET"]),
        Route(base + "/callbacks", callbacks, methods=["GET"]),
        Route(base + "/answers", answers, methods=["GET"]),
        Route(base + "/apps", create_app, methods=["POST"]),
        Route(base + "/users", create_user, methods=["POST"]),
        Route(base + "/groups", create_group, methods=["POST"]),
        Route(base + "/groups/{group_id}/members", add_member, methods=["POST"]),
        Route(base + "/features", features, methods=["POST"]),
        Route(base + "/clock", clock, methods=["POST"]),
        Route(base + "/reset", reset, methods=["POST"]),
        Route(base + "/group-message", acting(people.group_message, "message"), methods=["POST"]),
        Route(base + "/dm", acting(people.dm, "message"), methods=["POST"]),
        Route(base + "/dm-start", acting(people.dm_start, "result"), methods=["POST"]),
        Route(base + "/press", acting(people.press, "click"), methods=["POST"]),
    ]


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json() if await request.body() else {}
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
