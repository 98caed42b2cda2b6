"""A fake DmFlow bot API built from seed 003: bot info, flow chat, FAQ with best/suggestion thresholds,
table QA with `filterMap` and pages, domains, users (list, get, patch, conversations), tags, memory
templates and the register event. Every answer is the `{"rc", "data", "error"}` envelope; a bad bearer
token is HTTP 401 with `rc` != 0.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import FakeState, FaultMiddleware, control_routes, overlap, read_json

DEFAULT_KEY = "dm-test"
FAQ_ID = "267950411136516195"
TABLEQA_ID = "271530283370373185"
PLATFORMS = ("line", "messenger", "api", "telegram")


def error_body(status: int) -> tuple[int, Any]:
    msgs = {
        400: "payload is required",
        401: "invalid token",
        404: "not found",
        429: "too many requests",
        500: "internal error",
    }
    return status, {"rc": status, "error": msgs.get(status, "error")}


def ok(data: Any = None) -> JSONResponse:
    return JSONResponse({"rc": 0, "data": data} if data is not None else {"rc": 0})


def fail(rc: int, error: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"rc": rc, "error": error}, status_code=status)


@dataclass
class DmWorld:
    api_keys: set[str] = field(default_factory=lambda: {DEFAULT_KEY})
    faqs: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {
            FAQ_ID: [
                {"question": "面試JAVA工程師", "answer": '["job_interview"]', "type": "REDIRECT"},
                {"question": "面試Node.js工程師", "answer": '["interview_nodejs"]', "type": "REDIRECT"},
                {"question": "介紹Node.js工程師", "answer": '["describe_nodejs"]', "type": "REDIRECT"},
                {
                    "question": "營業時間是幾點",
                    "answer": "我們的營業時間是週一到週五 9:00-18:00。",
                    "type": "TEXT",
                },
                {
                    "question": "運費怎麼算",
                    "answer": "單筆訂單滿 1000 元免運，未滿收 80 元。",
                    "type": "TEXT",
                },
                {
                    "question": "What are your opening hours",
                    "answer": "We are open Monday to Friday, 9:00-18:00.",
                    "type": "TEXT",
                },
            ]
        }
    )
    phones: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"name": "iphone12", "brand": "蘋果", "price": 6900, "battery": 3500, "ram": 128},
            {"name": "iphone13", "brand": "蘋果", "price": 8900, "battery": 3800, "ram": 256},
            {"name": "galaxy s21", "brand": "三星", "price": 6500, "battery": 4000, "ram": 128},
            {"name": "pixel 6", "brand": "谷歌", "price": 5900, "battery": 4600, "ram": 128},
        ]
    )
    flow: dict[str, str] = field(
        default_factory=lambda: {
            "天氣": "今天天氣舒服",
            "weather": "The weather is lovely today.",
            "你好": "你好！有什麼可以幫您？",
            "hello": "Hello! How can I help you?",
            "價格": "Pro 方案每月 900 元。",
            "price": "The Pro plan is 30 USD a month.",
        }
    )
    users: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    conversations: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    sessions: dict[tuple[str, str], str] = field(default_factory=dict)  # (platform, user) -> WAIT / LISTEN
    table_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(
        default_factory=lambda: [
            {"name": "tag1", "description": "標籤1", "id": "254870170810449954"},
            {"name": "tag2", "description": "標籤2", "id": "256770248043135038"},
        ]
    )
    memory_fields: list[dict[str, str]] = field(
        default_factory=lambda: [
            {
                "description": "使用者名稱",
                "id": "478075408797933588",
                "type": "stringEnum",
                "key": "username",
            },
            {"description": "生日", "id": "283615327961481304", "type": "datetimeEnum", "key": "birthday"},
            {"description": "城市", "id": "377723514581819414", "type": "stringEnum", "key": "city"},
        ]
    )
    next_id: int = 388634744657944592

    def user(self, platform: str, user_id: str) -> dict[str, Any]:
        key = (platform, user_id)
        if key not in self.users:
            self.next_id += 1
            now = int(time.time())
            self.users[key] = {
                "updatedTime": now,
                "createdTime": now,
                "hasImage": False,
                "id": str(self.next_id),
                "fields": [],
                "userId": user_id,
                "platform": "@" + ("fbmessenger" if platform == "messenger" else platform),
                "enabled": True,
                "username": "",
                "tags": [],
            }
        return self.users[key]

    def log(self, platform: str, user_id: str, frm: str, kind: str, content: str) -> None:
        self.conversations.setdefault((platform, user_id), []).append(
            {"from": frm, "type": kind, "content": content, "createTime": int(time.time() * 1000)}
        )


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_filters(text: str) -> dict[str, list[dict[str, str]]]:
    """'價格在6000元到7000元且品牌為蘋果的手機' -> filterMap, the way the seed's example analyses it."""
    fm: dict[str, list[dict[str, str]]] = {}
    zh_digits = {"一": 1, "二": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
    norm = re.sub(r"([一二兩三四五六七八九])千", lambda m: str(zh_digits[m.group(1)] * 1000), text)
    nums = [n for n in re.findall(r"\d{3,6}", norm)]
    if len(nums) >= 2:
        lo, hi = sorted((float(nums[0]), float(nums[1])))
        fm["price"] = [
            {"key": "price", "op": "gte", "value": str(lo)},
            {"key": "price", "op": "lte", "value": str(hi)},
        ]
    elif len(nums) == 1:
        op = "lte" if re.search(r"以下|以內|低於|under|below|less", norm) else "gte"
        fm["price"] = [{"key": "price", "op": op, "value": str(float(nums[0]))}]
    for brand, words in {
        "蘋果": ("蘋果", "apple", "iphone"),
        "三星": ("三星", "samsung"),
        "谷歌": ("谷歌", "google"),
    }.items():
        if any(w in norm.lower() for w in words):
            fm["brand"] = [{"op": "eq", "value": brand, "key": "brand"}]
    return fm


def build(world: DmWorld | None = None, state: FakeState | None = None) -> Starlette:
    world = world or DmWorld()
    state = state or FakeState()

    def authorized(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in world.api_keys

    def unauthorized() -> Response:
        return fail(401, "invalid token", status=401)

    async def info(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        return ok({"id": "12345678", "name": "bot", "description": "範例", "locale": "zh_TW"})

    async def chat(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        body = await read_json(request)
        if not isinstance(body, dict):
            return fail(400, "request body must be a JSON object")
        for key in ("platform", "userId", "type", "payload"):
            if not body.get(key):
                return fail(400, f"{key} is required")
        platform, uid, kind, payload = body["platform"], str(body["userId"]), body["type"], body["payload"]
        if platform not in PLATFORMS:
            return fail(400, f"platform must be one of {', '.join(PLATFORMS)}")
        if kind not in ("text", "event", "attachment") or not isinstance(payload, dict):
            return fail(400, "type must be text, event or attachment, with an object payload")
        world.user(platform, uid)
        session_key = (platform, uid)
        replies: list[str] = []
        fallback = False
        if kind == "event":
            ev = payload.get("type")
            if ev == "start":
                world.sessions[session_key] = "WAIT"
                replies = ["歡迎！請問想了解什麼？"]
            elif ev == "end":
                world.sessions[session_key] = "LISTEN"
            elif ev == "sleep":
                if not payload.get("context"):
                    return fail(400, "context is required")
                replies = [f"[{payload['context']}]"]
            elif ev != "ignore":
                return fail(400, "unknown event type")
        elif kind == "attachment":
            replies = [f"收到檔案 {payload.get('name') or payload.get('url') or payload.get('id')}"]
        else:
            query = payload.get("query")
            if not isinstance(query, str) or not query:
                return fail(400, "payload.query is required")
            world.log(platform, uid, "USER", "text", query)
            if world.sessions.get(session_key) == "LISTEN":
                if "[wakeup]" in query:
                    world.sessions[session_key] = "WAIT"
                    replies = ["我回來了！"]
            else:
                hit = next((v for k, v in world.flow.items() if k.lower() in query.lower()), None)
                if hit is None:
                    fallback = True
                    replies = ["抱歉，我不太明白您的意思。"]
                else:
                    replies = [hit]
        for r in replies:
            world.log(platform, uid, "BOT", "text", r)
        api = platform == "api"
        return ok(
            {
                "replies": replies if api else [json.dumps({"text": r}, ensure_ascii=False) for r in replies],
                "msg_type": "TEXT" if api else "JSON",
                "version_id": "274504579784423095",
                "fallback": fallback,
                "status": world.sessions.get(session_key, "WAIT"),
            }
        )

    async def faq(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        entries = world.faqs.get(request.path_params["faq_id"])
        if entries is None:
            return fail(10001, "domain deleted or not found")
        body = await read_json(request)
        if not isinstance(body, dict) or not body.get("text") or not body.get("userId"):
            return fail(400, "text and userId are required")
        best_t = float(body.get("bestThreshold") or 0.6)
        sugg_t = float(body.get("suggThreshold") or 0.3)
        if not (0.1 <= best_t <= 1 and 0.1 <= sugg_t <= 1):
            return fail(400, "thresholds must be between 0.1 and 1")
        scored = sorted(((overlap(body["text"], e["question"]), e) for e in entries), key=lambda x: -x[0])
        best = scored[0] if scored and scored[0][0] >= best_t else None
        rest = scored[1:] if best else scored
        sugg = [
            {"question": e["question"], "answer": e["answer"], "type": e["type"]}
            for s, e in rest
            if s >= sugg_t
        ]
        if best:
            e = best[1]
            return ok(
                {
                    "answer": e["answer"],
                    "question": e["question"],
                    "type": e["type"],
                    "fallback": False,
                    "suggQuestions": sugg[:3],
                }
            )
        return ok({"answer": "", "question": "", "type": "TEXT", "fallback": True, "suggQuestions": sugg[:3]})

    def subject(p: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": p["name"],
            "attributes": [
                {"name": "price", "value": f"{p['name']}的價格是{p['price']}元", "render": False},
                {"name": "battery", "value": str(p["battery"]), "render": False},
                {"name": "brand", "value": p["brand"], "render": False},
                {"name": "ram", "value": str(p["ram"]), "render": False},
            ],
        }

    def matches(p: dict[str, Any], fm: dict[str, list[dict[str, str]]]) -> bool:
        for conds in fm.values():
            for c in conds:
                have = p.get(c.get("key", ""))
                want = c.get("value", "")
                num = _num(want)
                if c.get("op") == "eq" and str(have) != want:
                    return False
                if c.get("op") == "gte" and (num is None or not isinstance(have, int | float) or have < num):
                    return False
                if c.get("op") == "lte" and (num is None or not isinstance(have, int | float) or have > num):
                    return False
        return True

    async def tableqa(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        if request.path_params["tableqa_id"] != TABLEQA_ID:
            return fail(10001, "domain deleted or not found")
        body = await read_json(request)
        if not isinstance(body, dict) or not body.get("userId") or not body.get("sessionId"):
            return fail(400, "userId and sessionId are required")
        sid = str(body["sessionId"])
        if body.get("reset") or body.get("event") == "reset":
            world.table_sessions.pop(sid, None)
        session = world.table_sessions.setdefault(sid, {"filterMap": {}})
        event = body.get("event")
        size = int(body.get("subjectSize") or 10)
        if not 1 <= size <= 10:
            return fail(400, "subjectSize must be 1-10")
        index = 0
        if event == "next":
            page = body.get("page")
            if not isinstance(page, dict) or "index" not in page:
                return fail(400, "page is required with event=next")
            index, size = int(page["index"]), int(page.get("size") or size)
            if body.get("filterMap"):
                session["filterMap"] = body["filterMap"]
        else:
            if not body.get("text") and not body.get("filterMap"):
                return fail(400, "text is required")
            fm = body.get("filterMap") or parse_filters(str(body.get("text") or ""))
            session["filterMap"] = {**session["filterMap"], **fm}
        fm = session["filterMap"]
        found = [p for p in world.phones if matches(p, fm)] if fm else []
        chunk = found[index * size : (index + 1) * size]
        return ok(
            {
                "filterMap": fm,
                "answer": "" if found else "找不到符合條件的商品。",
                "subjects": [subject(p) for p in chunk],
                "page": {"total": len(found), "size": size, "index": index},
                "fallback": not found,
            }
        )

    async def domains(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        types = request.query_params.getlist("types") or ["faqEnum", "tableqaEnum"]
        all_domains = [
            {"name": "hire", "description": "面試", "id": FAQ_ID, "type": "faqEnum"},
            {"name": "phone", "description": "手機介紹", "id": TABLEQA_ID, "type": "tableqaEnum"},
        ]
        return ok({"domains": [d for d in all_domains if d["type"] in types]})

    async def faqs(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        return ok({"faqs": [{"name": "hire", "description": "面試", "id": FAQ_ID}]})

    async def tableqas(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        return ok({"tableqas": [{"name": "phone", "description": "手機介紹", "id": TABLEQA_ID}]})

    async def users(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        body = await read_json(request)
        if not isinstance(body, dict) or body.get("platform") not in PLATFORMS:
            return fail(400, "platform is required")
        if not isinstance(body.get("index"), int) or not isinstance(body.get("size"), int):
            return fail(400, "index and size are required")
        items = [u for (p, _), u in world.users.items() if p == body["platform"]]
        if (body.get("systemFields") or {}).get("username"):
            items = [u for u in items if u["username"] == body["systemFields"]["username"]]
        if body.get("includes"):
            want = set(body["includes"])
            items = [u for u in items if want & {t["id"] for t in u["tags"]}]
        if body.get("afterUpdatedTime"):
            items = [u for u in items if u["updatedTime"] * 1000 >= int(body["afterUpdatedTime"])]
        i, s = body["index"], body["size"]
        shown = [{**u, "tags": [{"id": t["id"]} for t in u["tags"]]} for u in items[i * s : (i + 1) * s]]
        return ok({"page": {"total": len(items), "size": s, "index": i}, "users": shown})

    async def user_detail(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        uid = request.path_params["user_id"]
        platform = request.query_params.get("platform") or "api"
        if request.method == "PATCH":
            body = await read_json(request)
            if not isinstance(body, dict) or body.get("platform") not in PLATFORMS:
                return fail(400, "platform is required")
            u = world.user(body["platform"], uid)
            sys_fields = body.get("sysFields") or {}
            if "username" in sys_fields:
                u["username"] = str(sys_fields["username"])
            if "enabled" in sys_fields:
                u["enabled"] = bool(sys_fields["enabled"])
            by_id = {f["id"]: f for f in world.memory_fields}
            for fid, value in (body.get("customFields") or {}).items():
                if fid not in by_id:
                    return fail(400, f"unknown custom field {fid}")
                f = by_id[fid]
                u["fields"] = [x for x in u["fields"] if x["id"] != fid] + [
                    {
                        "constraintType": f["type"],
                        "id": fid,
                        "value": str(value),
                        "key": f["key"],
                        "desc": f["description"],
                    }
                ]
            if "tags" in body:
                known = {t["id"]: t for t in world.tags}
                if any(t not in known for t in body["tags"]):
                    return fail(400, "unknown tag id")
                u["tags"] = [
                    {
                        "lastModifiedTime": int(time.time()),
                        "count": "1",
                        "name": known[t]["name"],
                        "id": t,
                        "desc": known[t]["description"],
                    }
                    for t in body["tags"]
                ]
            u["updatedTime"] = int(time.time())
            return ok({"success": True})
        found = world.users.get((platform, uid))
        return ok(found) if found else fail(404, "user not found")

    async def user_conversations(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        q = request.query_params
        if not q.get("platform") or not q.get("size") or q.get("page") is None:
            return fail(400, "platform, size and page are required")
        msgs = world.conversations.get((q["platform"], request.path_params["user_id"]), [])
        size, page = int(q["size"]), int(q["page"])
        chunk = msgs[page * size : (page + 1) * size]
        if q.get("from_type"):
            chunk = [m for m in chunk if m["from"] == q["from_type"]]  # filters after paging, as documented
        total_page = (len(msgs) + size - 1) // size
        return ok(
            {
                "messages": chunk,
                "total": len(msgs),
                "cur_page": page,
                "total_page": total_page,
                "size": len(chunk),
            }
        )

    async def tags(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        return ok({"tags": world.tags})

    async def memories(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        return ok({"userFields": world.memory_fields})

    async def register(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        body = await read_json(request)
        if not isinstance(body, dict) or not all(
            body.get(k) for k in ("broad_hash_id", "platform", "userId")
        ):
            return fail(400, "broad_hash_id, platform and userId are required")
        world.user(body["platform"], str(body["userId"]))
        return ok()

    p = "/_api/v1/bot"
    routes = [
        Route(p + "/info", info, methods=["GET"]),
        Route(p + "/chat", chat, methods=["POST"]),
        Route(p + "/faqs/{faq_id}", faq, methods=["POST"]),
        Route(p + "/tableqas/{tableqa_id}", tableqa, methods=["POST"]),
        Route(p + "/domains", domains, methods=["GET"]),
        Route(p + "/faqs", faqs, methods=["GET"]),
        Route(p + "/tableqas", tableqas, methods=["GET"]),
        Route(p + "/users", users, methods=["POST"]),
        Route(p + "/users/{user_id}", user_detail, methods=["GET", "PATCH"]),
        Route(p + "/users/{user_id}/conversations", user_conversations, methods=["GET"]),
        Route(p + "/tags", tags, methods=["GET"]),
        Route(p + "/memories", memories, methods=["GET"]),
        Route(p + "/event/register", register, methods=["POST"]),
        *control_routes(state),
    ]
    app = Starlette(
        routes=routes, middleware=[Middleware(FaultMiddleware, state=state, error_body=error_body)]
    )
    app.state.fake = state
    app.state.world = world
    return app
