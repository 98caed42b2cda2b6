"""What a service needs to survive the loss of a NATS node (issue 17 finding 2):

- NATS_URL may name a cluster's servers comma-separated; the client gets them as its server pool (nats-py
  took the string as one malformed URL and refused to connect), so it connects while the first is down
  and fails over to another when its server dies;
- every KV bucket and object store opened through the runtime's broker gets TGM_JS_REPLICAS copies, also
  one a service opens with the broker itself (tg-session's account leases were made with FastStream's
  default of 1: on a 3-node cluster they lived on one node), and one that exists with fewer is raised
  before it is declared again.
"""

from __future__ import annotations

from typing import Any

import pytest
from faststream.nats import NatsBroker
from pydantic import ValidationError
from tgm_contracts import Service, streams
from tgm_runtime import RuntimeSettings, replicas
from tgm_runtime.replicas import ReplicatedBroker
from tgm_runtime.testing import bare_runtime

pytestmark = pytest.mark.timeout(90)

CLUSTER = "nats://127.0.0.1:4222, nats://127.0.0.1:4223,nats://127.0.0.1:4224"


@pytest.mark.unit
def test_a_cluster_url_is_the_clients_server_pool() -> None:
    settings = RuntimeSettings(nats_url=CLUSTER)
    assert settings.nats_servers == [
        "nats://127.0.0.1:4222",
        "nats://127.0.0.1:4223",
        "nats://127.0.0.1:4224",
    ]
    assert RuntimeSettings(nats_url="nats://h:1").nats_servers == ["nats://h:1"]
    rt = bare_runtime(Service.ANALYTICS, nats_url=CLUSTER)
    assert isinstance(rt.broker, ReplicatedBroker)
    # What nats-py's connect receives (FastStream keeps the keyword arguments until it connects).
    assert rt.broker._connection_kwargs["servers"] == settings.nats_servers
    with pytest.raises(ValidationError, match="NATS_URL names no server"):
        RuntimeSettings(nats_url=" , ")


class _Recorder:
    """Stands in for FastStream's declaration and for `ensure_replicas`: what the broker asked."""

    def __init__(self, existing: dict[str, int]) -> None:
        self.existing = existing
        self.declared: list[tuple[str, dict[str, Any]]] = []
        self.raised: list[tuple[str, int]] = []

    async def key_value(self, bucket: str, **kwargs: Any) -> str:
        self.declared.append((bucket, kwargs))
        return bucket

    async def object_storage(self, bucket: str, **kwargs: Any) -> str:
        self.declared.append((bucket, kwargs))
        return bucket

    async def ensure(self, _js: Any, stream: str, n: int) -> bool:
        from nats.js.errors import NotFoundError

        if stream not in self.existing:
            raise NotFoundError
        self.raised.append((stream, n))
        self.existing[stream] = n
        return True


@pytest.mark.unit
async def test_buckets_opened_through_the_broker_get_the_configured_replicas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = _Recorder(existing={"KV_tgm_account_leases": 1})
    monkeypatch.setattr(NatsBroker, "key_value", rec.key_value)
    monkeypatch.setattr(NatsBroker, "object_storage", rec.object_storage)
    monkeypatch.setattr(replicas, "ensure_replicas", rec.ensure)
    rt = bare_runtime(Service.TG_SESSION, nats_url=CLUSTER)
    rt.settings.js_replicas = rt.broker.js_replicas = 3
    monkeypatch.setattr(ReplicatedBroker, "connection", property(lambda self: _Conn()))

    # As tg-session opens its lease bucket (the broker itself, no replicas named): an existing bucket
    # with one copy is raised to three first, then declared with three.
    await rt.broker.key_value("tgm_account_leases", ttl=15, history=1)
    await rt.broker.key_value("tgm_account_leases", ttl=15, history=1)  # checked once per start
    await rt.key_value(streams.MONITORED_CHATS)  # a new bucket: nothing to raise
    await rt.object_store(streams.EXPORTS)
    await rt.broker.key_value("pinned", replicas=1)  # a caller that names a number keeps it
    await rt.broker.key_value("opened", declare=False)  # opening without declaring checks nothing
    assert rec.raised == [("KV_tgm_account_leases", 3)]
    assert [(b, kw.get("replicas")) for b, kw in rec.declared] == [
        ("tgm_account_leases", 3),
        ("tgm_account_leases", 3),
        (streams.MONITORED_CHATS.bucket, 3),
        (streams.EXPORTS.bucket, 3),
        ("pinned", 1),
        ("opened", 3),
    ]
    # A new start checks again (the runtime clears the set in start()).
    rt.broker.replicas_checked.clear()
    rec.existing["KV_tgm_account_leases"] = 1
    await rt.broker.key_value("tgm_account_leases", ttl=15, history=1)
    assert rec.raised[-1] == ("KV_tgm_account_leases", 3)


class _Conn:
    def jetstream(self) -> object:
        return object()


@pytest.mark.integration
async def test_the_first_server_down_the_runtime_connects_to_the_next(nats_server: Any) -> None:
    from tgm_testing.procs import free_port

    dead = f"nats://127.0.0.1:{free_port()}"
    rt = bare_runtime(Service.ANALYTICS, nats_url=f"{dead},{nats_server.url}")
    rt.broker._connection_kwargs["dont_randomize"] = True  # the dead one first, every time
    await rt.broker.connect()
    try:
        assert rt.nc.is_connected and rt.nc.connected_url.port == nats_server.port
    finally:
        await rt.broker.stop()


@pytest.mark.integration
async def test_on_a_cluster_a_bucket_the_service_opens_itself_has_three_copies(nats_cluster: Any) -> None:
    """The real thing: tg-session's way of opening its lease bucket (broker.key_value without replicas),
    a bucket that existed with one copy, an object store; the data of the raised bucket kept."""
    rt = bare_runtime(Service.TG_SESSION, nats_url=nats_cluster.url)
    rt.broker.js_replicas = 3
    await rt.broker.connect()
    try:
        js = rt.js
        old = await js.create_key_value(bucket="old_leases", ttl=15, replicas=1)
        await old.put("acct1", b"replica-a")
        leases = await rt.broker.key_value("new_leases", ttl=15, history=1)
        await leases.put("acct1", b"replica-a")
        again = await rt.broker.key_value("old_leases", ttl=15, history=1)
        store = await rt.broker.object_storage("files")
        assert (await js.stream_info("KV_new_leases")).config.num_replicas == 3
        assert (await js.stream_info("KV_old_leases")).config.num_replicas == 3
        assert (await js.stream_info("OBJ_files")).config.num_replicas == 3
        assert (await again.get("acct1")).value == b"replica-a"
        assert store is not None
    finally:
        await rt.broker.stop()
