"""The NATS side of TG-Matrix as an AsyncAPI 3.0 document, generated from the contracts (issue 13).

One channel per subject the contracts declare: every command (`tgm.<owner>.cmd.<name>.v<major>`,
request/reply; the gateway sends them, signed), every internal rpc and account call, and every event
(`tgm.<owner>.evt.<name>.v<major>`, published by its owner into the `TGM_EVENTS` stream). Message payloads
are the contracts' own JSON Schemas (requests as validated, replies and events as serialised), under
`components/schemas`. Committed beside the JSON Schemas as `libs/contracts/schemas/asyncapi.json`
(`make schemas`; the schema check fails when it is stale) and served by the gateway at `/asyncapi`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from . import ACCOUNT_RPCS, EVENTS, REGISTRY, RPCS
from .envelope import ErrorReply, OkReply

REF = "#/components/schemas/{model}"


def _id(kind: str, owner: str, name: str, version: int) -> str:
    return f"{kind}.{owner}.{name}.v{version}"


def document(version: str = "1") -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (ErrorReply, "serialization"),
        (OkReply, "serialization"),
    ]
    calls: list[tuple[str, str, str, str, type[BaseModel], type[BaseModel]]] = []
    for cmd in REGISTRY.all():
        calls.append(
            (_id("cmd", cmd.OWNER.value, cmd.NAME, cmd.VERSION), cmd.SUBJECT, cmd.__doc__ or cmd.NAME,
             f"least role {cmd.ROLE.label}; the gateway signs the principal", cmd.Request, cmd.Response)
        )  # fmt: skip
    for rpc in RPCS:
        calls.append(
            (_id("rpc", rpc.OWNER.value, rpc.NAME, rpc.VERSION), rpc.SUBJECT, rpc.__doc__ or rpc.NAME,
             "internal: between services, guarded by the NATS permissions", rpc.Request, rpc.Response)
        )  # fmt: skip
    for arpc in ACCOUNT_RPCS:
        calls.append(
            (_id("acct", "tg-session", arpc.NAME, arpc.VERSION), arpc.subject("{accountId}"),
             arpc.__doc__ or arpc.NAME, "to the tg-session replica holding the account", arpc.Request,
             arpc.Response)
        )  # fmt: skip
    for *_, request, response in calls:
        wanted += [(request, "validation"), (response, "serialization")]
    events = sorted(EVENTS.items())
    wanted += [(evt, "serialization") for _, evt in events]
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), by_alias=True, ref_template=REF)

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {
        "error": {"name": "error", "payload": refs[(ErrorReply, "serialization")]},
    }
    for cid, subject, doc, note, request, response in calls:
        req, rep = f"{cid}.request", f"{cid}.reply"
        messages[req] = {"name": req, "payload": refs[(request, "validation")]}
        messages[rep] = {
            "name": rep,
            "summary": "{ok: true, data: <this>} or {ok: false, error}",
            "payload": refs[(response, "serialization")],
        }
        channels[cid] = {
            "address": subject,
            "description": f"{doc.strip().splitlines()[0]} ({note})",
            "messages": {"request": {"$ref": f"#/components/messages/{req}"}},
        }
        channels[f"{cid}.reply"] = {
            "address": None,
            "description": "the requester's inbox",
            "messages": {
                "reply": {"$ref": f"#/components/messages/{rep}"},
                "error": {"$ref": "#/components/messages/error"},
            },
        }
        operations[cid] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{cid}"},
            "reply": {"channel": {"$ref": f"#/channels/{cid}.reply"}},
        }
    for subject, evt in events:
        eid = _id("evt", evt.OWNER.value, evt.NAME, evt.VERSION)
        messages[eid] = {"name": eid, "payload": refs[(evt, "serialization")]}
        channels[eid] = {
            "address": subject,
            "description": (evt.__doc__ or evt.NAME).strip().splitlines()[0] + " (in the TGM_EVENTS stream)",
            "messages": {"event": {"$ref": f"#/components/messages/{eid}"}},
        }
        operations[eid] = {"action": "send", "channel": {"$ref": f"#/channels/{eid}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "TG-Matrix bus",
            "version": version,
            "description": "Commands, internal calls and events on NATS, generated from tgm_contracts.",
        },
        "servers": {"nats": {"host": "127.0.0.1:4222", "protocol": "nats"}},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": defs.get("$defs", {})},
    }
