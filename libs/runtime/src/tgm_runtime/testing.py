"""Component-test helpers: a service's handlers on FastStream's in-memory TestNatsBroker, with a real
database (the `mongo_server` fixture of tgm_testing) under a unique database name per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from faststream.nats import TestNatsBroker
from pydantic import BaseModel
from tgm_contracts import Command, Headers, Service

from .config import RuntimeSettings
from .runtime import ServiceRuntime


class RuntimeClient:
    def __init__(self, runtime: ServiceRuntime, broker: Any) -> None:
        self.runtime = runtime
        self.broker = broker

    async def call(
        self,
        cmd: type[Command],
        payload: BaseModel | dict[str, Any] | bytes | None = None,
        *,
        role: str = "admin",
        request_id: str | None = None,
    ) -> dict[str, Any]:
        return await self.request(cmd.SUBJECT, payload, role=role, request_id=request_id)

    async def request(
        self,
        subject: str,
        payload: BaseModel | dict[str, Any] | bytes | None = None,
        *,
        role: str = "admin",
        request_id: str | None = None,
    ) -> dict[str, Any]:
        if isinstance(payload, BaseModel):
            body: Any = payload.model_dump(mode="json", by_alias=True)
        else:
            body = payload if payload is not None else {}
        headers = {Headers.REQUEST_ID: request_id or uuid.uuid4().hex, Headers.ROLE: role}
        reply = await self.broker.request(body, subject=subject, headers=headers, timeout=30)
        return json.loads(reply.body)

    async def data(self, cmd: type[Command], payload: Any = None) -> Any:
        """Call and return `data`, failing loudly on an error envelope."""
        reply = await self.call(cmd, payload)
        assert reply["ok"], reply
        return reply["data"]


@asynccontextmanager
async def runtime_client(
    runtime: ServiceRuntime, mongo_uri: str, database: str | None = None
) -> AsyncIterator[RuntimeClient]:
    runtime.settings.database_prefix = database or f"t{uuid.uuid4().hex[:10]}_"
    await runtime.connect_database(mongo_uri)
    mongo = runtime.mongo
    assert mongo is not None
    name = runtime.database_name()
    try:
        async with TestNatsBroker(runtime.broker) as br:
            await runtime.start(connect_broker=False)
            try:
                yield RuntimeClient(runtime, br)
            finally:
                await mongo.drop_database(name)
                await runtime.stop()
    finally:
        if runtime.mongo is not None:
            await runtime.mongo.close()
            runtime.mongo = None


def bare_runtime(
    service: Service = Service.ANALYTICS,
    *,
    nats_url: str = "nats://127.0.0.1:1",
    mongo_uri: str | None = None,
    tag: str = "t",
) -> ServiceRuntime[Any]:
    """A runtime with nothing registered, for tests of the runtime itself: its own database
    prefix and replica id (both unique), on the given servers. The default NATS URL points at
    nothing, for tests that never connect."""
    unique = uuid.uuid4().hex[:6]
    settings = RuntimeSettings(
        nats_url=nats_url, database_prefix=f"{tag}{unique}_", replica_id=f"{service.value}-{tag}-{unique}"
    )
    if mongo_uri is not None:
        settings.mongodb_uri = mongo_uri
    return ServiceRuntime(service, "test", settings=settings)
