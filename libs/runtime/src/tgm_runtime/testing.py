"""Component-test helpers: a service's handlers on FastStream's in-memory TestNatsBroker, with a real
database (the `mongo_server` fixture of tgm_testing) under a unique database name per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from faststream.nats import TestNatsBroker
from pydantic import BaseModel
from tgm_contracts import Command, Headers, Service

from .busauth import BusAuth, derive_bus_key
from .config import RuntimeSettings
from .runtime import ServiceRuntime
from .secrets import decode_key


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
        timeout: float = 30,
    ) -> dict[str, Any]:
        return await self.request(cmd.SUBJECT, payload, role=role, request_id=request_id, timeout=timeout)

    async def request(
        self,
        subject: str,
        payload: BaseModel | dict[str, Any] | bytes | None = None,
        *,
        role: str = "admin",
        request_id: str | None = None,
        principal: str = "",
        signed: bool = True,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Request `subject` as the gateway would: the principal signed (`signed=False`: as a process
        that skipped the gateway, with the role header alone). `timeout`: seconds to wait for the reply."""
        if isinstance(payload, bytes):
            data = payload
        elif isinstance(payload, BaseModel):
            data = json.dumps(payload.model_dump(mode="json", by_alias=True)).encode()
        else:
            data = json.dumps(payload if payload is not None else {}).encode()
        headers = {Headers.REQUEST_ID: request_id or uuid.uuid4().hex, Headers.ROLE: role}
        if signed:
            headers.update(signed_headers(self.runtime, subject, data, role=role, principal=principal))
        reply = await self.broker.request(data, subject=subject, headers=headers, timeout=timeout)
        return json.loads(reply.body)

    async def data(self, cmd: type[Command], payload: Any = None) -> Any:
        """Call and return `data`, failing loudly on an error envelope."""
        reply = await self.call(cmd, payload)
        assert reply["ok"], reply
        return reply["data"]


def signed_headers(
    signer: ServiceRuntime[Any] | BusAuth,
    subject: str,
    data: bytes,
    *,
    role: str = "admin",
    principal: str = "tester",
    request_id: str | None = None,
) -> dict[str, str]:
    """Headers of a command message as the gateway sends it (request id, principal and role, signed
    with the bus key of `signer`: a runtime of the system under test, or its BusAuth), for tests that
    publish commands on a real NATS themselves. `data` must be the exact bytes sent."""
    auth = signer if isinstance(signer, BusAuth) else signer.bus_auth
    return {
        Headers.REQUEST_ID: request_id or uuid.uuid4().hex,
        **auth.headers(subject, data, principal, role),
    }


def bus_auth_for(master_key_file: Path) -> BusAuth:
    """The BusAuth of services that run with this master key file (a stack's, a child process's)."""
    return BusAuth([derive_bus_key(decode_key(master_key_file.read_text()))])


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
