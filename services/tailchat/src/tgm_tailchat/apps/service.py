"""Tailchat apps: register (secret encrypted at rest), list, check (whoami), remove; the bot's settings
(`setAppBotInfo`), its commands by scope with version/ETag caching, and the callback token.

- The secret is accepted bare or as the composite `<appId>:<secret>` and kept as the bare part,
  encrypted with the runtime's `SecretBox` (context: the appId). It is decrypted only to build the
  `X-App-Secret` header of a call; no view, log line or error carries it.
- Registering checks the credentials with `whoami` first (unless `check: false`): a wrong secret is
  refused as `UPSTREAM_AUTH` and nothing is stored. The bot's user id from whoami is what inline
  actions need as `params.botId` for their presses to reach us.
- The callback token: Tailchat does not sign callbacks, so the callback URL carries a per-app secret
  token (`/api/v1/channels/tailchat/<appId>/callback/<token>`). Only its SHA-256 is stored (like API
  keys: a random 256-bit token needs no slow hash); the path is shown once, when registering and when
  rotating. With `TGM_TAILCHAT_PUBLIC_URL` set, rotating also sets the bot's callbackUrl on the server.
- `setAppBotInfo` takes one field per call; the fields given are set in a fixed order (callbackUrl,
  username, allowGroup, receiveAllGroupMessages, commands) and the first refusal stops the rest — the
  answer's error names the field, and the ones before it are set.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets as token_source
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tgm_contracts import ErrorCode
from tgm_contracts.base import Ack
from tgm_contracts.commands import channels as cmd
from tgm_contracts.models.channels import BotCommandView, TailchatAppView
from tgm_runtime import Conflict, DomainError, NotFound, SecretBox
from tgm_runtime.routes import answers
from tgm_runtime.secrets import SecretError

from ..adapters.errors import TailchatError, malformed
from ..adapters.tailchat import (
    GET_COMMANDS,
    GET_COMMANDS_BY_SCOPE,
    SET_BOT_INFO,
    WHOAMI,
    AppCredentials,
    TailchatClient,
)
from .store import AppStore

log = logging.getLogger("tgm.tailchat.apps")

CALLBACK_PATH = "/api/v1/channels/tailchat/{app_id}/callback/{token}"


#: Compared against when an app has no token: no token hashes to it (it is not hex).
_NO_TOKEN = "-" * 64


def _now() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bare_secret(app_id: str, given: str) -> str:
    """The secret without its `<appId>:` head (the contract checked the head names this app)."""
    head, sep, tail = given.partition(":")
    return tail if sep and head == app_id else given


def view(doc: dict[str, Any]) -> TailchatAppView:
    return TailchatAppView(
        app_id=doc["_id"],
        name=doc.get("name") or doc["_id"],
        server_url=doc["server_url"],
        secret_set=bool(doc.get("secret_enc")),
        bot_user_id=doc.get("bot_user_id"),
        bot_nickname=doc.get("bot_nickname"),
        status=doc.get("status", "unchecked"),
        last_error=doc.get("last_error"),
        last_checked_at=doc.get("last_checked_at"),
        callback_token_set=bool(doc.get("callback_token_hash")),
        callback_token_rotated_at=doc.get("callback_token_rotated_at"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def _status_of(error: DomainError) -> str:
    return "rejected" if error.code is ErrorCode.UPSTREAM_AUTH else "unreachable"


class AppService:
    def __init__(
        self,
        store: AppStore,
        client: TailchatClient,
        secrets: SecretBox,
        *,
        public_url: str,
        forget_messages: Callable[[str], Awaitable[int]],
    ) -> None:
        self.store = store
        self.client = client
        self.secrets = secrets
        self.public_url = public_url.rstrip("/")
        self.forget_messages = forget_messages

    # --- what the messages domain needs ------------------------------------------------------

    async def credentials(self, app_id: str) -> tuple[AppCredentials, dict[str, Any]]:
        """The app's credentials (secret decrypted for this call) and its document; NOT_FOUND if none."""
        doc = await self._doc(app_id)
        try:
            secret = self.secrets.decrypt(doc["secret_enc"], context=app_id)
        except SecretError:
            raise Conflict(
                f"the secret of Tailchat app {app_id} cannot be decrypted with the configured master keys "
                "(TGM_MASTER_KEY, TGM_PREVIOUS_MASTER_KEYS); register the app again",
                {"appId": app_id},
            ) from None
        return AppCredentials(doc["server_url"], app_id, secret), doc

    async def bot_user_id(self, app_id: str) -> str:
        """The bot's Tailchat user id, asked of the server (whoami) when it is not known yet."""
        creds, doc = await self.credentials(app_id)
        if doc.get("bot_user_id"):
            return str(doc["bot_user_id"])
        who = await self._whoami(creds)
        await self.store.update(app_id, self._identity(who), _now())
        return str(who["_id"])

    async def callback_app(self, app_id: str, token: str) -> dict[str, Any]:
        """The app a callback URL's token belongs to; NOT_FOUND, the same for an unknown app and a
        wrong token, otherwise. The SHA-256 of the token is compared with the stored one in constant
        time (`hmac.compare_digest`), against a stand-in when the app is unknown or has no token, so
        the answer's timing tells nothing either."""
        doc = await self.store.get(app_id)
        stored = (doc or {}).get("callback_token_hash")
        expected = stored if isinstance(stored, str) else _NO_TOKEN
        if not hmac.compare_digest(token_hash(token).encode(), expected.encode()) or doc is None:
            raise NotFound("no such callback")
        return doc

    # --- commands ----------------------------------------------------------------------------

    @answers(cmd.RegisterTailchatApp)
    async def register(self, req: cmd.RegisterTailchatAppRequest) -> cmd.RegisteredTailchatApp:
        secret = bare_secret(req.app_id, req.app_secret)
        creds = AppCredentials(req.server_url, req.app_id, secret)
        now = _now()
        fields: dict[str, Any] = {
            "server_url": req.server_url,
            "secret_enc": self.secrets.encrypt(secret, context=req.app_id),
            "status": "unchecked",
            "last_error": None,
        }
        if req.name:
            fields["name"] = req.name
        if req.check:
            who = await self._whoami(creds)  # a refusal stores nothing
            fields.update(self._identity(who), status="ok", last_checked_at=now)
            fields.setdefault("name", who.get("nickname") or req.app_id)
        else:
            # Re-keyed without a check (perhaps to another server): no identity of before lingers; the
            # bot's id is asked for when first needed.
            fields.update(bot_user_id=None, bot_nickname=None, last_checked_at=None)
        token = token_source.token_urlsafe(32)
        fields.update(callback_token_hash=token_hash(token), callback_token_rotated_at=now)
        doc = await self.store.upsert(req.app_id, fields, now)
        log.info("tailchat app %s registered (server %s)", req.app_id, req.server_url)
        return cmd.RegisteredTailchatApp(app=view(doc), callback_path=self._path(req.app_id, token))

    @answers(cmd.GetTailchatApps)
    async def all_apps(self) -> cmd.TailchatAppList:
        return cmd.TailchatAppList(items=[view(d) for d in await self.store.all()])

    @answers(cmd.RemoveTailchatApp)
    async def remove(self, req: cmd.AppRef) -> Ack:
        await self._doc(req.app_id)
        removed = await self.store.remove(req.app_id)
        forgotten = await self.forget_messages(req.app_id)
        log.info("tailchat app %s removed (%d remembered messages forgotten)", req.app_id, forgotten)
        return Ack(affected=removed)

    @answers(cmd.CheckTailchatApp)
    async def check(self, req: cmd.AppRef) -> TailchatAppView:
        creds, _ = await self.credentials(req.app_id)
        now = _now()
        try:
            who = await self._whoami(creds)
        except DomainError as exc:
            fields: dict[str, Any] = {"status": _status_of(exc), "last_error": exc.message}
        else:
            fields = {**self._identity(who), "status": "ok", "last_error": None}
        doc = await self.store.update(req.app_id, {**fields, "last_checked_at": now}, now)
        if doc is None:
            raise NotFound(f"no Tailchat app {req.app_id}")
        return view(doc)

    @answers(cmd.RotateTailchatCallbackToken)
    async def rotate(self, req: cmd.RotateTailchatCallbackTokenRequest) -> cmd.RotatedCallbackToken:
        creds, _ = await self.credentials(req.app_id)
        token = token_source.token_urlsafe(32)
        path = self._path(req.app_id, token)
        url = self.public_url + path if self.public_url else None
        applied = False
        if req.apply and url:
            # The server first, so a refusal leaves the old token working where Tailchat still sends.
            await self.client.call(creds, SET_BOT_INFO, {"fieldName": "callbackUrl", "fieldValue": url})
            applied = True
        now = _now()
        await self.store.update(
            req.app_id, {"callback_token_hash": token_hash(token), "callback_token_rotated_at": now}, now
        )
        log.info("tailchat app %s: callback token rotated (applied: %s)", req.app_id, applied)
        return cmd.RotatedCallbackToken(callback_path=path, callback_url=url, applied=applied, rotated_at=now)

    @answers(cmd.SetTailchatBotInfo)
    async def set_bot_info(self, req: cmd.SetTailchatBotInfoRequest) -> cmd.TailchatBotInfoSet:
        creds, _ = await self.credentials(req.app_id)
        wanted: list[tuple[str, Any]] = [
            ("callbackUrl", req.callback_url),
            ("username", req.username),
            ("allowGroup", req.allow_group),
            ("receiveAllGroupMessages", req.receive_all_group_messages),
            ("commands", None if req.commands is None else [_command_wire(c) for c in req.commands]),
        ]
        done: list[str] = []
        for field, value in wanted:
            if value is None:
                continue
            try:
                await self.client.call(creds, SET_BOT_INFO, {"fieldName": field, "fieldValue": value})
            except TailchatError as exc:
                details = {**(exc.details or {}), "field": field, "setBefore": done}
                raise TailchatError(exc.code, f"{field}: {exc.message}", details, exc.retry_after) from None
            done.append(field)
        return cmd.TailchatBotInfoSet(app_id=req.app_id, fields=done)

    @answers(cmd.GetTailchatCommands)
    async def commands(self, req: cmd.GetTailchatCommandsRequest) -> cmd.TailchatCommands:
        creds, _ = await self.credentials(req.app_id)
        body: dict[str, Any] = {"appId": req.app_id}
        if req.if_version is not None:
            body["ifVersion"] = req.if_version
        if req.if_etag is not None:
            body["ifEtag"] = req.if_etag
        endpoint = GET_COMMANDS
        if req.scope_type is not None:
            endpoint = GET_COMMANDS_BY_SCOPE
            body["scopeType"] = req.scope_type
            if req.chat_id:
                body["chatId"] = req.chat_id
            if req.user_id:
                body["userId"] = req.user_id
        data = await self.client.call(creds, endpoint, body)
        if not isinstance(data, dict):
            raise malformed(endpoint.operation, "not an object")
        return commands_view(req, data)

    # --- helpers -----------------------------------------------------------------------------

    async def _doc(self, app_id: str) -> dict[str, Any]:
        doc = await self.store.get(app_id)
        if doc is None:
            raise NotFound(f"no Tailchat app {app_id}", {"appId": app_id})
        return doc

    async def _whoami(self, creds: AppCredentials) -> dict[str, Any]:
        who = await self.client.call(creds, WHOAMI)
        if not isinstance(who, dict) or not who.get("_id"):
            raise malformed(WHOAMI.operation, "no bot user id (_id)")
        return who

    @staticmethod
    def _identity(who: dict[str, Any]) -> dict[str, Any]:
        return {"bot_user_id": str(who["_id"]), "bot_nickname": who.get("nickname")}

    @staticmethod
    def _path(app_id: str, token: str) -> str:
        return CALLBACK_PATH.format(app_id=app_id, token=token)


def _command_wire(command: Any) -> dict[str, Any]:
    """A command as setAppBotInfo takes it: snake_case `chat_id` / `user_id` inside `scope`."""
    out: dict[str, Any] = {"command": command.command, "description": command.description}
    if command.scope is not None:
        scope: dict[str, Any] = {"type": command.scope.type}
        if command.scope.chat_id:
            scope["chat_id"] = command.scope.chat_id
        if command.scope.user_id:
            scope["user_id"] = command.scope.user_id
        out["scope"] = scope
    return out


def commands_view(req: cmd.GetTailchatCommandsRequest, data: dict[str, Any]) -> cmd.TailchatCommands:
    """The server's answer as ours. The server's cache ignores ifVersion/ifEtag (its key is the appId
    and scope only), so notModified is decided here too from the version and etag it reports."""
    version = data.get("version") if isinstance(data.get("version"), int) else 0
    etag = data.get("etag") if isinstance(data.get("etag"), str) else None
    not_modified = bool(data.get("notModified")) or (
        (req.if_version is not None and req.if_version == version)
        or (req.if_etag is not None and etag is not None and req.if_etag == etag)
    )
    commands = None
    if not not_modified:
        raw = data["commands"] if isinstance(data.get("commands"), list) else []
        commands = [
            BotCommandView(
                command=str(c.get("command", "")),
                description=str(c.get("description", "")),
                scope=c.get("scope") if isinstance(c.get("scope"), dict) else None,
            )
            for c in raw
            if isinstance(c, dict)
        ]
    return cmd.TailchatCommands(
        app_id=req.app_id, not_modified=not_modified, version=version, etag=etag, commands=commands
    )
