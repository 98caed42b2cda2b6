"""The bot's HTTP API, `/api/openapi/bot/*` and `/api/openapi/app/*`, on the server's wire:

- success: HTTP 200 `{"code": 200, "data": <result>}`, or `{"code": 200}` when the action returns
  nothing (setAppBotInfo);
- errors: `{name, message, code, type?, data?}` with HTTP `code` (plain Errors are 500, permission
  403, not found 404, parameter validation 422 with Moleculer's `data` list, missing credentials 401);
- `X-App-Secret: <appId>:<secret>` is checked before any action (a wrong secret is HTTP 500
  "Open app secret not match", not 401); query and body are merged into the params (body wins);
  bodies over 1 MB are refused with 413.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .inbox import Inbox
from .world import TailchatWorld, TcApp, TcError, js_json, plain

BODY_LIMIT = 1024 * 1024

#: A parameter rule of fastest-validator: (type, optional). Types: string, boolean, number, object,
#: array (of strings where the server says `items: 'string'`), any.
Rule = tuple[str, bool]
Action = Callable[[TcApp, dict[str, Any]], Any]


def tc_json(body: Any, status: int = 200) -> Response:
    return Response(js_json(body), status, media_type="application/json; charset=utf-8")


def _type_error(field: str, kind: str, value: Any) -> dict[str, Any] | None:
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "string": (lambda v: isinstance(v, str), f"The '{field}' field must be a string."),
        "boolean": (lambda v: isinstance(v, bool), f"The '{field}' field must be a boolean."),
        "number": (
            lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            f"The '{field}' field must be a number.",
        ),
        "object": (lambda v: isinstance(v, dict), f"The '{field}' must be an Object."),
        "array": (lambda v: isinstance(v, list), f"The '{field}' field must be an array."),
    }
    if kind not in checks:
        return None
    ok, message = checks[kind]
    if ok(value):
        return None
    return {"type": kind, "message": message, "field": field, "actual": value}


def validate(params: dict[str, Any], rules: dict[str, Rule], string_items: tuple[str, ...] = ()) -> None:
    """Moleculer's parameter validation: 422 ValidationError listing every failed field."""
    errors = []
    for name, (kind, optional) in rules.items():
        value = params.get(name)
        if value is None:
            if not optional:
                # `actual` is undefined for a missing field, so JSON leaves it out.
                missing = {"type": "required", "message": f"The '{name}' field is required.", "field": name}
                errors.append(missing if name not in params else {**missing, "actual": None})
            continue
        err = _type_error(name, kind, value)
        if err:
            errors.append(err)
        elif name in string_items:
            errors.extend(e for i, v in enumerate(value) if (e := _type_error(f"{name}[{i}]", "string", v)))
    if errors:
        raise TcError(422, "ValidationError", "Parameters validation error!", "VALIDATION_ERROR", errors)


def routes(world: TailchatWorld, inbox: Inbox) -> list[Route]:
    def endpoint(
        rules: dict[str, Rule], action: Action, string_items: tuple[str, ...] = ()
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                raw = await request.body()
                if len(raw) > BODY_LIMIT:
                    raise TcError(413, "PayloadTooLarge", "request entity too large", "ENTITY_TOO_LARGE")
                params = dict(request.query_params)
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise TcError(
                            400, "InvalidRequestBodyError", "Invalid request body", "INVALID_REQUEST_BODY"
                        ) from None
                    if isinstance(body, dict):
                        params.update(body)
                app = authorize(request)
                validate(params, rules, string_items)
                with world.lock:
                    result = action(app, params)
            except TcError as exc:
                return tc_json(exc.body(), exc.status)
            return tc_json({"code": 200} if result is None else {"code": 200, "data": result})

        return handle

    def authorize(request: Request) -> TcApp:
        header = request.headers.get("x-app-secret", "")
        if header:
            with world.lock:
                return world.authenticate(header)
        if request.headers.get("x-token"):
            raise TcError(
                401, "UnAuthorizedError", "Unauthorized", "INVALID_TOKEN", {"error": "Invalid Token"}
            )
        raise TcError(401, "UnAuthorizedError", "Unauthorized", "NO_TOKEN", {"error": "No Token"})

    def whoami(app: TcApp, p: dict[str, Any]) -> Any:
        return world.users[app.bot_user_id].public()

    def send_message(app: TcApp, p: dict[str, Any]) -> Any:
        message = world.post_message(
            app.bot_user_id,
            p["converseId"],
            p["content"],
            p.get("groupId") or None,
            p.get("plain"),
            p.get("meta"),
        )
        if message.get("groupId"):
            inbox.group_message(message, p.get("plain"))  # fire and forget, as the server does
        return message

    def edit_message(app: TcApp, p: dict[str, Any]) -> Any:
        return world.edit_message(app.bot_user_id, p["messageId"], p.get("content"), p.get("meta"))

    def delete_message(app: TcApp, p: dict[str, Any]) -> Any:
        return world.delete_message(app.bot_user_id, p["messageId"])

    def ensure_dm(app: TcApp, p: dict[str, Any]) -> Any:
        return {"converseId": world.ensure_dm(app.bot_user_id, p["userId"])}

    def answer_callback(app: TcApp, p: dict[str, Any]) -> Any:
        # The body's appSecret names the answering app (it is checked on its own, like the header).
        answering = world.for_integration(p["appSecret"], None)
        return world.answer_callback(
            answering, p["traceId"], p["userId"], p["text"], bool(p.get("show_alert"))
        )

    def set_bot_info(app: TcApp, p: dict[str, Any]) -> Any:
        world.set_bot_info(app, p["fieldName"], p["fieldValue"])
        return None

    def get_commands(app: TcApp, p: dict[str, Any]) -> Any:
        return world.commands(p["appId"], p.get("scope"), p.get("ifVersion"), p.get("ifEtag"))

    def get_commands_by_scope(app: TcApp, p: dict[str, Any]) -> Any:
        return world.commands_by_scope(
            p["appId"], p["scopeType"], p.get("chatId"), p.get("userId"), p.get("ifVersion"), p.get("ifEtag")
        )

    def get_command_meta(app: TcApp, p: dict[str, Any]) -> Any:
        return world.command_meta(p["appId"])

    def get_commands_by_user_ids(app: TcApp, p: dict[str, Any]) -> Any:
        return world.commands_by_user_ids(
            app.bot_user_id,
            p["botUserIds"],
            p["converseId"],
            p.get("groupId"),
            p.get("ifVersion"),
            p.get("ifEtag"),
        )

    def get_for_integration(app: TcApp, p: dict[str, Any]) -> Any:
        return world.for_integration(p.get("appSecret"), p.get("appId")).doc()

    def owner_only(app: TcApp, p: dict[str, Any]) -> Any:
        # setAppInfo / setAppCapability / setAppOAuthInfo look the app up by owner = the caller, and
        # with X-App-Secret the caller is the bot, never the owner [inference from the code].
        raise plain("Not found openapp")

    s, opt_s = ("string", False), ("string", True)
    bot = "/api/openapi/bot/"
    app_ = "/api/openapi/app/"
    return [
        Route(bot + "whoami", endpoint({}, whoami), methods=["GET", "POST"]),
        Route(
            bot + "sendMessage",
            endpoint(
                {"converseId": s, "groupId": opt_s, "content": s, "plain": opt_s, "meta": ("any", True)},
                send_message,
            ),
            methods=["POST"],
        ),
        Route(
            bot + "editMessage",
            endpoint({"messageId": s, "content": opt_s, "meta": ("object", True)}, edit_message),
            methods=["POST"],
        ),
        Route(bot + "deleteMessage", endpoint({"messageId": s}, delete_message), methods=["POST"]),
        Route(bot + "ensureDMWithUser", endpoint({"userId": s}, ensure_dm), methods=["POST"]),
        Route(
            bot + "answerCallbackQuery",
            endpoint(
                {
                    "appSecret": s,
                    "traceId": s,
                    "userId": s,
                    "text": s,
                    "show_alert": ("boolean", True),
                    "cache_time": ("number", True),
                },
                answer_callback,
            ),
            methods=["POST"],
        ),
        Route(
            app_ + "setAppBotInfo",
            endpoint({"fieldName": s, "fieldValue": ("any", False)}, set_bot_info),
            methods=["POST"],
        ),
        Route(
            app_ + "getBotCommands",
            endpoint({"appId": s, "ifVersion": ("number", True), "ifEtag": opt_s}, get_commands),
            methods=["POST"],
        ),
        Route(
            app_ + "getBotCommandsByScope",
            endpoint(
                {
                    "appId": s,
                    "scopeType": s,
                    "chatId": opt_s,
                    "userId": opt_s,
                    "ifVersion": ("number", True),
                    "ifEtag": opt_s,
                },
                get_commands_by_scope,
            ),
            methods=["POST"],
        ),
        Route(app_ + "getBotCommandMeta", endpoint({"appId": s}, get_command_meta), methods=["POST"]),
        Route(
            app_ + "getBotCommandsByUserIds",
            endpoint(
                {
                    "botUserIds": ("array", False),
                    "converseId": s,
                    "groupId": opt_s,
                    "ifVersion": ("number", True),
                    "ifEtag": opt_s,
                },
                get_commands_by_user_ids,
                string_items=("botUserIds",),
            ),
            methods=["POST"],
        ),
        Route(
            app_ + "getForIntegration",
            endpoint({"appId": opt_s, "appSecret": opt_s}, get_for_integration),
            methods=["POST"],
        ),
        *(
            Route(app_ + name, endpoint({}, owner_only), methods=["POST"])
            for name in ("setAppInfo", "setAppCapability", "setAppOAuthInfo")
        ),
        Route("/api/openapi/{service}/{action}", not_found, methods=["GET", "POST"]),
    ]


async def not_found(request: Request) -> Response:
    """moleculer-web with `mappingPolicy: all`: an unknown action is ServiceNotFoundError 404."""
    name = f"openapi.{request.path_params['service']}.{request.path_params['action']}"
    return tc_json(
        {
            "name": "ServiceNotFoundError",
            "message": f"Service '{name}' is not found.",
            "code": 404,
            "type": "SERVICE_NOT_FOUND",
            "data": {"action": name},
        },
        404,
    )
