"""`/openapi.json` describes every command (issue 13, finding 9): one operation per registry entry
with resolvable request and response schemas, its errors, least role, domain tag and Bearer security."""

from __future__ import annotations

from typing import Any

import pytest
from tgm_contracts import REGISTRY
from tgm_gateway.bootstrap import build, build_app

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_app(build()).openapi()  # what /openapi.json serves; nothing is started


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    _, components, section, name = ref.split("/")
    found: dict[str, Any] = spec[components][section][name]
    return found


def test_every_command_is_one_operation_with_its_schemas(spec: dict[str, Any]) -> None:
    commands = REGISTRY.all()
    assert len(REGISTRY.seed()) == 193 and len(commands) > 193  # the seed's and the channels'
    ops = {p: item["post"] for p, item in spec["paths"].items() if p.startswith("/api/v1/commands/")}
    assert set(ops) == {f"/api/v1/commands/{c.NAME}" for c in commands}
    for cmd in commands:
        op = ops[f"/api/v1/commands/{cmd.NAME}"]
        assert op["operationId"] == cmd.NAME and op["tags"] == [cmd.DOMAIN.value]
        assert f"Least role: **{cmd.ROLE.label}**" in op["description"] and op["x-tgm-role"] == cmd.ROLE.label
        assert op["security"] == [{"bearer": []}]
        request = resolve(spec, op["requestBody"]["content"]["application/json"]["schema"])
        assert request["type"] == "object" and set(request.get("properties", {})) == {
            f.alias or name for name, f in cmd.Request.model_fields.items()
        }
        data = op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]
        assert resolve(spec, data), cmd.NAME
        for status in ("400", "401", "403", "413", "422", "429", "503", "504"):
            assert resolve(spec, op["responses"][status])["content"]["application/json"]["schema"]


def test_the_schemas_describe_the_contracts(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/api/v1/commands/rag-add-document"]["post"]
    request = resolve(spec, op["requestBody"]["content"]["application/json"]["schema"])
    assert request["properties"]["url"]["anyOf"][0]["pattern"] == "^https?://"
    assert "contentBase64" in request["properties"] and op["requestBody"]["required"] is False
    error = resolve(spec, resolve(spec, op["responses"]["502"])["content"]["application/json"]["schema"])
    code = resolve(spec, resolve(spec, error["properties"]["error"])["properties"]["code"])
    assert "UPSTREAM_AUTH" in code["enum"]
    for path, method in (("/api/v1/ipc", "post"), ("/api/v1/keys", "post"), ("/api/v1/keys", "get")):
        assert spec["paths"][path][method]["security"] == [{"bearer": []}]
    assert "/api/v1/commands/{command}" not in spec["paths"]  # the generic route is not documented
    # public: the catalogue (like this spec) and Tailchat's callbacks (a token in the URL)
    assert spec["paths"]["/api/v1/commands"]["get"]["security"] == []
    callback = spec["paths"]["/api/v1/channels/tailchat/{app_id}/callback/{token}"]["post"]
    assert callback["security"] == [] and "404" in callback["responses"]
    # every route of the API documents the edge's answers (schemathesis found 429 and 404 undocumented)
    for path in ("/api/v1/ipc", "/api/v1/keys", "/api/v1/stream/{command}"):
        for op in spec["paths"][path].values():
            assert {"401", "413", "429", "503"} <= set(op["responses"]), path
    ipc_422 = spec["paths"]["/api/v1/ipc"]["post"]["responses"]["422"]
    ipc_error = resolve(spec, resolve(spec, ipc_422)["content"]["application/json"]["schema"])
    assert set(ipc_error["properties"]) == {"event", "data", "requestId"}  # the seed's envelope
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "text/plain" in metrics
    assert spec["components"]["securitySchemes"]["bearer"] == {
        **spec["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
    }


def test_the_asyncapi_document_names_every_subject_and_resolves() -> None:
    """The NATS side as AsyncAPI 3.0 (issue 13): a channel per command, rpc, account call and event,
    every $ref resolvable, committed beside the JSON Schemas."""
    import json
    import re
    from pathlib import Path

    from tgm_contracts import ACCOUNT_RPCS, EVENTS, REGISTRY, RPCS
    from tgm_contracts.asyncapi import document

    doc = document()
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in doc["channels"].values()}
    assert {c.SUBJECT for c in REGISTRY.all()} <= addresses and {r.SUBJECT for r in RPCS} <= addresses
    assert set(EVENTS) <= addresses and {a.subject("{accountId}") for a in ACCOUNT_RPCS} <= addresses
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node: Any = doc
        for part in ref.split("/"):
            node = node[part]
    committed = Path(__file__).resolve().parents[3] / "libs" / "contracts" / "schemas" / "asyncapi.json"
    assert json.loads(committed.read_text()) == json.loads(json.dumps(document(), sort_keys=True))


async def test_the_gateway_serves_the_asyncapi_document() -> None:
    import httpx

    app = build_app(build())  # the route needs nothing started
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        r = await c.get("/asyncapi")
    assert r.status_code == 200 and r.json()["asyncapi"] == "3.0.0"
    assert r.json()["channels"]["cmd.gateway.get-settings.v1"]["address"] == "tgm.gateway.cmd.get-settings.v1"


def test_the_main_commands_carry_examples_their_contracts_accept(spec: dict[str, Any]) -> None:
    examples = {cmd.NAME: cmd.EXAMPLE for cmd in REGISTRY.all() if cmd.EXAMPLE is not None}
    assert len(examples) >= 10
    for name, example in examples.items():
        REGISTRY.get(name).parse(example)  # type: ignore[union-attr]  # raises when the contract refuses it
        body = spec["paths"][f"/api/v1/commands/{name}"]["post"]["requestBody"]["content"]
        assert body["application/json"]["example"] == example
