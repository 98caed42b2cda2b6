"""The real servers: start, serve, restart on the same port with the same data, and the fixtures."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import nats
import pymongo
import pytest
from nats.js.errors import NotFoundError
from tgm_testing.fixtures import unique_db_name
from tgm_testing.procs import ProcessError, ProcessExitedError, port_is_open, wait_for_async
from tgm_testing.servers import MongoServer, NatsServer, find_executable


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_find_executable(tmp_path: Path) -> None:
    assert os.access(find_executable("nats-server"), os.X_OK)
    assert os.access(find_executable("secantusd-py"), os.X_OK)
    with pytest.raises(FileNotFoundError, match="no-such-server"):
        find_executable("no-such-server")


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_unique_db_name_is_valid_and_unique() -> None:
    a = unique_db_name("test_x[param/with.dots and $pace]")
    b = unique_db_name("test_x[param/with.dots and $pace]")
    assert a != b
    assert a.startswith("t_test_x_param_with_dots_and_pace_")
    assert len(unique_db_name("x" * 500)) < 64
    assert not set('/\\. "$') & set(a)


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_nats_session_fixture_serves_jetstream(nats_server: NatsServer, nats_url: str) -> None:
    assert nats_url == nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        name = unique_db_name("fixture").upper()
        await js.add_stream(name=name, subjects=[f"{name}.>"])
        ack = await js.publish(f"{name}.x", b"hello")
        assert ack.seq == 1
        await js.delete_stream(name)
    finally:
        await nc.close()


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_nats_restart_keeps_port_and_streams_and_clients_reconnect(make_nats_server) -> None:
    server: NatsServer = make_nats_server(monitor_port=None)
    port = server.port
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc = await nats.connect(
        server.url, reconnected_cb=on_reconnect, reconnect_time_wait=0.1, max_reconnect_attempts=-1
    )
    try:
        js = nc.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep.>"])
        await js.publish("keep.a", b"1")

        first_pid = server.pid
        server.stop()
        assert not port_is_open("127.0.0.1", port)
        server.start()
        assert server.port == port and server.pid != first_pid

        await asyncio.wait_for(reconnected.wait(), 20)
        info = await js.stream_info("KEEP")
        assert info.state.messages == 1  # the store survived the restart
        with pytest.raises(NotFoundError):
            await js.stream_info("NEVER_CREATED")
    finally:
        await nc.close()


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_nats_kill_is_abrupt_and_restartable(make_nats_server) -> None:
    server: NatsServer = make_nats_server()
    server.kill()
    assert not server.alive
    server.start()
    nc = await nats.connect(server.url)
    await nc.close()


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_mongo_fixture_and_fresh_db(
    mongo_server: MongoServer, mongo_uri: str, mongo_client, fresh_db_name: str
) -> None:
    assert mongo_uri == mongo_server.uri and "directConnection=true" in mongo_uri
    mongo_client[fresh_db_name].items.insert_one({"a": 1})
    assert fresh_db_name in mongo_client.list_database_names()
    assert mongo_client[fresh_db_name].items.count_documents({}) == 1


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_fresh_db_is_dropped_after_the_test(mongo_client, request: pytest.FixtureRequest) -> None:
    # Runs after the previous test in this module: no database it made may remain.
    left = [
        n for n in mongo_client.list_database_names() if n.startswith("t_test_mongo_fixture_and_fresh_db")
    ]
    assert left == []


@pytest.mark.integration
@pytest.mark.timeout(90)
async def test_mongo_restart_keeps_data_and_async_client_works(make_mongo_server) -> None:
    server: MongoServer = make_mongo_server()
    client: pymongo.AsyncMongoClient[dict[str, Any]]
    client = pymongo.AsyncMongoClient(server.uri, serverSelectionTimeoutMS=10000)
    try:
        await client.app.things.insert_one({"_id": "k", "v": 7})
        port = server.port
        server.restart()
        assert server.port == port

        async def read_back():
            return await client.app.things.find_one({"_id": "k"})

        doc = await wait_for_async(read_back, timeout=20, ignore=(pymongo.errors.PyMongoError,))
        assert doc == {"_id": "k", "v": 7}
    finally:
        await client.close()


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_start_failures_are_clear(tmp_path: Path, nats_server: NatsServer) -> None:
    # A port someone else holds is refused up front, rather than probing the other server.
    clash = NatsServer(tmp_path / "store", port=nats_server.port, log_path=tmp_path / "clash.log")
    with pytest.raises(ProcessError, match=f"127.0.0.1:{nats_server.port} is already in use"):
        clash.start()
    # A server that exits at once is reported with the tail of its log.
    bad = NatsServer(
        tmp_path / "store2", extra_args=["-c", str(tmp_path / "missing.conf")], log_path=tmp_path / "bad.log"
    )
    with pytest.raises(ProcessExitedError, match=r"(?s)nats-server exited with status.*missing\.conf"):
        bad.start()
