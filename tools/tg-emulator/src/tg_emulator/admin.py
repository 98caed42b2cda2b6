"""Small JSON HTTP admin API to seed, inspect and break a running emulator.

Routes (all JSON):

- ``GET  /health``                          liveness
- ``GET  /world``                           counts (users, chats, channels, sessions, deliveries, connections)
- ``POST /world/seed``                      add what a world file describes (same shape)
- ``GET  /users`` / ``POST /users``         list / add a user (``phone``, ``first_name``, ``username``, ``password``...)
- ``GET  /users/{ref}`` / ``PATCH /users/{ref}``  one user / change ``frozen``, ``banned``, ``password``, names, ``username``
- ``GET  /users/{ref}/code``                the login code last sent to that user's phone
- ``POST /users/{ref}/sessions``            a logged-in StringSession pointing at this emulator
- ``DELETE /users/{ref}/sessions``          terminate every session of the user (AUTH_KEY_UNREGISTERED)
- ``GET  /codes?phone=``                    login code of any phone (also not yet registered ones)
- ``GET  /channels`` / ``GET /chats``       groups and channels with member counts
- ``POST /messages``                        ``{from, to, text}``: a message sent server-side
- ``GET  /deliveries?from=&to=&chat=&since=`` delivered messages; ``GET /deliveries/duplicates?by=text``
- ``GET  /limits`` / ``PATCH /limits``      read / change rate limits
- ``GET  /faults`` / ``POST /faults`` / ``DELETE /faults``  fault rules: ``{method, error, count, code?, user?}``
- ``POST /faults/drop-call``                ``{method, count}``: the next calls close the connection
- ``POST /faults/latency``                  ``{seconds, method?}``
- ``POST /drop``                            ``{user?}``: close connections now
- ``POST /clock/advance``                   ``{seconds}``
- ``POST /qr/accept``                       ``{user, token?}``: 'scan' a QR login token (hex or base64url; latest if omitted)
- ``POST /bots``                            ``{username, first_name?, token?}``: a bot and its login token
- ``POST /bots/press``                      ``{user, bot, data? | text?, msg_id?, wait?}``: the user presses an
  inline button (by its callback data or its label; on the bot's newest message with an inline
  keyboard unless ``msg_id``); the bot gets ``updateBotCallbackQuery``; ``wait`` seconds for its answer
- ``GET  /callbacks?user=&bot=``            the presses and the answers the users got
"""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import RpcFail
from .world.bots import callback_data_of
from .world.seed import apply_seed

if TYPE_CHECKING:
    from .emulator import Emulator

log = logging.getLogger(__name__)


def _user_view(world, u) -> dict[str, Any]:
    return {
        "id": u.id,
        "access_hash": u.access_hash,
        "phone": u.phone,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "username": u.username,
        "has_password": bool(u.password),
        "frozen": u.frozen,
        "banned": u.banned,
        "contacts": sorted(u.contacts),
        "sessions": len(world.sessions_of(u)),
        "online": world.hub.user_online(u.id),
        "channels": sorted(u.channels),
    }


class AdminApi:
    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self.app = web.Application(middlewares=[self._errors])
        r = self.app.router
        r.add_get("/health", self.health)
        r.add_get("/world", self.world_summary)
        r.add_post("/world/seed", self.seed)
        r.add_get("/users", self.list_users)
        r.add_post("/users", self.add_user)
        r.add_get("/users/{ref}", self.get_user)
        r.add_patch("/users/{ref}", self.patch_user)
        r.add_get("/users/{ref}/code", self.user_code)
        r.add_post("/users/{ref}/sessions", self.new_session)
        r.add_delete("/users/{ref}/sessions", self.revoke_sessions)
        r.add_get("/codes", self.codes)
        r.add_get("/channels", self.list_channels)
        r.add_get("/chats", self.list_chats)
        r.add_post("/messages", self.post_message)
        r.add_get("/deliveries", self.deliveries)
        r.add_get("/deliveries/duplicates", self.duplicates)
        r.add_get("/limits", self.get_limits)
        r.add_patch("/limits", self.patch_limits)
        r.add_get("/faults", self.get_faults)
        r.add_post("/faults", self.add_fault)
        r.add_delete("/faults", self.clear_faults)
        r.add_post("/faults/drop-call", self.drop_call)
        r.add_post("/faults/latency", self.latency)
        r.add_post("/drop", self.drop)
        r.add_post("/clock/advance", self.advance)
        r.add_post("/qr/accept", self.qr_accept)
        r.add_post("/bots", self.add_bot)
        r.add_post("/bots/press", self.press_button)
        r.add_get("/callbacks", self.callbacks)
        self._runner: web.AppRunner | None = None

    @property
    def world(self):
        return self.emu.world

    async def start(self, host: str, port: int) -> int:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("tg-emulator admin API on http://%s:%s", host, bound)
        return bound

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except KeyError as e:
            return web.json_response({"error": "not_found", "detail": str(e).strip("'\"")}, status=404)
        except RpcFail as e:
            return web.json_response({"error": e.message, "code": e.code}, status=400)
        except (ValueError, TypeError, json.JSONDecodeError) as e:
            return web.json_response({"error": "bad_request", "detail": str(e)}, status=400)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("the request body is a JSON object")
        return data

    def _user(self, ref: str):
        return self.world.user(int(ref) if ref.isdigit() and int(ref) in self.world.users else ref)

    # ------------------------------------------------------------------ routes

    async def health(self, request):
        return web.json_response({"ok": True, "port": self.emu.port})

    async def world_summary(self, request):
        return web.json_response(self.world.summary())

    async def seed(self, request):
        return web.json_response(apply_seed(self.world, await self._body(request)))

    async def list_users(self, request):
        users = [u for u in self.world.users.values() if u.id != self.world.service_user.id]
        return web.json_response([_user_view(self.world, u) for u in users])

    async def add_user(self, request):
        body = await self._body(request)
        phone = body.pop("phone", None)
        if not phone:
            raise ValueError("phone is required")
        contacts = body.pop("contacts", [])
        u = self.world.add_user(phone, **body)
        for c in contacts:
            self.world.add_contact(u, c)
        return web.json_response(_user_view(self.world, u), status=201)

    async def get_user(self, request):
        return web.json_response(_user_view(self.world, self._user(request.match_info["ref"])))

    async def patch_user(self, request):
        u = self._user(request.match_info["ref"])
        body = await self._body(request)
        for key, value in body.items():
            if key in ("frozen", "banned"):
                setattr(u, key, bool(value))
            elif key in ("first_name", "last_name", "about"):
                setattr(u, key, str(value))
            elif key == "password":
                self.world.set_password(u, value, body.get("password_hint", ""))
            elif key == "username":
                if (value or None) != u.username:
                    self.world.set_username(u, value)
            elif key == "privacy_invites":
                if value not in ("everybody", "contacts", "nobody"):
                    raise ValueError("privacy_invites is everybody, contacts or nobody")
                u.privacy_invites = value
            elif key != "password_hint":
                raise ValueError(f"cannot change {key!r}")
        return web.json_response(_user_view(self.world, u))

    async def user_code(self, request):
        u = self._user(request.match_info["ref"])
        return web.json_response({"phone": u.phone, "code": self.world.last_code(u.phone)})

    async def codes(self, request):
        phone = request.query.get("phone")
        if phone:
            return web.json_response({"phone": phone, "code": self.world.last_code(phone)})
        return web.json_response(self.world.code_log[-100:])

    async def new_session(self, request):
        u = self._user(request.match_info["ref"])
        return web.json_response({"user_id": u.id, "session": self.emu.session_for(u)}, status=201)

    async def revoke_sessions(self, request):
        u = self._user(request.match_info["ref"])
        return web.json_response({"revoked": self.world.revoke(user=u)})

    async def list_channels(self, request):
        return web.json_response(
            [
                {
                    "id": ch.id,
                    "title": ch.title,
                    "username": ch.username,
                    "megagroup": ch.megagroup,
                    "members": len(ch.participants),
                    "messages": len(ch.order),
                    "invites": sorted(ch.invites),
                    "slowmode_seconds": ch.slowmode_seconds,
                }
                for ch in self.world.channels.values()
            ]
        )

    async def list_chats(self, request):
        return web.json_response(
            [
                {"id": c.id, "title": c.title, "members": sorted(c.members), "invites": sorted(c.invites)}
                for c in self.world.chats.values()
            ]
        )

    async def post_message(self, request):
        body = await self._body(request)
        for key in ("from", "to", "text"):
            if key not in body:
                raise ValueError(f"{key} is required")
        to = body["to"]
        res = self.world.post(body["from"], int(to) if isinstance(to, int) else str(to), str(body["text"]))
        return web.json_response({"kind": res.kind, "msg_id": res.msg_id, "gid": res.gid}, status=201)

    async def deliveries(self, request):
        q = request.query
        out = self.world.deliveries
        if "since" in q:
            since = int(q["since"])
            out = [d for d in out if d.seq > since]
        if "from" in q:
            uid = self._user(q["from"]).id
            out = [d for d in out if d.from_user_id == uid]
        if "to" in q:
            uid = self._user(q["to"]).id
            out = [d for d in out if d.to_user_id == uid]
        if "chat" in q:
            cid = int(q["chat"])
            out = [d for d in out if d.chat_id == cid]
        limit = int(q.get("limit", 1000))
        return web.json_response([d.to_dict() for d in out[-limit:]])

    async def duplicates(self, request):
        by = request.query.get("by", "random_id")
        return web.json_response(
            {"by": by, "groups": self.world.find_duplicates(by), "refused": self.world.duplicate_attempts}
        )

    async def get_limits(self, request):
        return web.json_response(self.world.limits.to_dict())

    async def patch_limits(self, request):
        self.world.limits.update(await self._body(request))
        return web.json_response(self.world.limits.to_dict())

    async def get_faults(self, request):
        return web.json_response(self.world.faults.to_dict())

    def _user_id(self, body: dict[str, Any]) -> int | None:
        return self._user(str(body["user"])).id if body.get("user") is not None else None

    async def add_fault(self, request):
        body = await self._body(request)
        self.world.faults.fail_next(
            str(body["method"]),
            str(body["error"]),
            int(body.get("count", 1)),
            code=body.get("code"),
            user_id=self._user_id(body),
        )
        return web.json_response(self.world.faults.to_dict(), status=201)

    async def clear_faults(self, request):
        self.world.faults.clear()
        return web.json_response(self.world.faults.to_dict())

    async def drop_call(self, request):
        body = await self._body(request)
        self.world.faults.drop_next(
            str(body["method"]), int(body.get("count", 1)), user_id=self._user_id(body)
        )
        return web.json_response(self.world.faults.to_dict(), status=201)

    async def latency(self, request):
        body = await self._body(request)
        self.world.faults.set_latency(float(body["seconds"]), str(body.get("method", "*")))
        return web.json_response(self.world.faults.to_dict())

    async def drop(self, request):
        body = await self._body(request)
        return web.json_response({"dropped": self.world.hub.drop(user_id=self._user_id(body))})

    async def advance(self, request):
        body = await self._body(request)
        self.world.advance(float(body["seconds"]))
        return web.json_response({"time_offset": self.world.time_offset})

    async def qr_accept(self, request):
        body = await self._body(request)
        token = body.get("token")
        if token:
            try:
                raw = bytes.fromhex(token)
            except ValueError:
                raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        else:
            raw = self.world.latest_login_token()
            if raw is None:
                raise KeyError("no QR login is waiting")
        rec = self.world.accept_login_token(body["user"], raw)
        return web.json_response({"accepted": True, "key_id": str(rec.key.key_id)})

    # ------------------------------------------------------------------ bots

    async def add_bot(self, request):
        body = await self._body(request)
        u, token = self.world.bots.add(
            str(body["username"]), first_name=str(body.get("first_name", "")), token=body.get("token")
        )
        return web.json_response({**_user_view(self.world, u), "bot": True, "token": token}, status=201)

    async def press_button(self, request):
        body = await self._body(request)
        bots = self.world.bots
        user, bot = self._user(str(body["user"])), self._user(str(body["bot"]))
        msg_id = body.get("msg_id") or bots.latest_markup_message(user, bot)
        if msg_id is None:
            raise KeyError(f"{bot.display} sent {user.display} no message with an inline keyboard")
        data = body.get("data")
        if data is None:
            label = str(body["text"])
            found = callback_data_of(user.messages[int(msg_id)].reply_markup).get(label)
            if found is None:
                raise KeyError(f"no callback button labelled {label!r} on message {msg_id}")
            raw = found
        else:
            raw = str(data).encode()
        q = bots.press(user, bot, int(msg_id), raw)
        wait = float(body.get("wait", 0))
        if wait > 0:
            try:
                await bots.wait_answer(q, wait)
            except RpcFail:
                pass  # the view says it is unanswered
        return web.json_response(q.to_dict(), status=201)

    async def callbacks(self, request):
        wanted = {
            attr: self._user(request.query[name]).id
            for name, attr in (("user", "user_id"), ("bot", "bot_id"))
            if name in request.query
        }
        out = [
            c for c in self.world.bots.queries.values() if all(getattr(c, a) == v for a, v in wanted.items())
        ]
        return web.json_response([c.to_dict() for c in out])
