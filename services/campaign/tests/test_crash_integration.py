"""The campaign service as a real process, SIGKILLed in the middle of a run and restarted: every job
is delivered exactly once (FakeFleet plays tg-session and keeps its record of job ids)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
import uuid
from collections import Counter
from typing import Any

import nats
import pytest
from tgm_campaign.testing import FakeFleet
from tgm_contracts.commands import messaging as M
from tgm_runtime.testing import bus_auth_for, signed_headers
from tgm_testing.procs import ManagedProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

PACING = {
    "jitterMinSeconds": 0.0,
    "jitterMaxSeconds": 0.0,
    "quietHoursStart": None,
    "quietHoursEnd": None,
    "safetyMarginSeconds": 0.2,
    "perChatMinIntervalSeconds": 0.0,
    "perAccountPerMinute": 60,
    "perAccountPerHour": 2000,
    "perAccountDailyNonContacts": 1000,
}


def _ready(port: int) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
        return r.status == 200


def campaign_process(nats_url: str, mongo_uri: str, prefix: str, tmp: Any) -> ManagedProcess:
    port = free_port()
    env = {
        "NATS_URL": nats_url,
        "MONGODB_URI": mongo_uri,
        "TGM_DATABASE_PREFIX": prefix,
        "TGM_REPLICA_ID": "campaign-0",
        "TGM_HEALTH_PORT": str(port),
        "TGM_DATA_DIR": str(tmp),
        "TGM_CAMPAIGN_SEND_TIMEOUT_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    return ManagedProcess(
        [sys.executable, "-m", "tgm_campaign"],
        name="campaign-0",
        env=env,
        log_path=tmp / "campaign.log",
        ready=lambda: _ready(port),
        ready_timeout=60,
        grace=5,
    )


async def test_sigkill_mid_run_loses_nothing_and_duplicates_nothing(
    nats_server, mongo_server, tmp_path
) -> None:
    prefix = f"k{uuid.uuid4().hex[:8]}_"
    fleet = FakeFleet(
        nats_server.url,
        mongo_server.uri,
        [f"acct{i}" for i in range(8)],
        database_prefix=prefix + "fleet_",
        latency=0.15,  # sends take a while, so the kill lands while some are in flight
    )
    await fleet.start()
    client = mongo_server.client()
    db = client[prefix + "tgm_campaign"]
    db["_settings"].insert_one({"_id": "pacing", "values": PACING, "version": 1})
    db["_settings"].insert_one({"_id": "compliance", "values": {"perRecipientDailyCap": 100}, "version": 1})
    proc = campaign_process(nats_server.url, mongo_server.uri, prefix, tmp_path)
    nc = await nats.connect(nats_server.url)
    try:
        await asyncio.to_thread(proc.start)
        total = 120
        payload = {"text": "hello {there|you}", "recipients": [{"peer": 50_000 + i} for i in range(total)]}
        data = json.dumps(payload).encode()
        headers = signed_headers(bus_auth_for(tmp_path / "master.key"), M.QueueMessage.SUBJECT, data)
        reply = json.loads((await nc.request(M.QueueMessage.SUBJECT, data, timeout=30, headers=headers)).data)
        assert reply["ok"], reply
        # Kill it twice while it is sending.
        for threshold in (30, 70):
            await fleet.wait_for(lambda f, n=threshold: len(f.deliveries) >= n, 60)
            await asyncio.to_thread(proc.kill)
            in_flight = db["jobs"].count_documents({"state": "in_flight"})
            await asyncio.sleep(1.0)  # the process is dead for a moment, as after a real crash
            await asyncio.to_thread(proc.start)
            assert in_flight >= 0
        await fleet.wait_for(lambda f: len(f.deliveries) >= total, 120)

        def all_sent() -> bool:
            return db["jobs"].count_documents({"state": "sent"}) == total

        deadline = asyncio.get_running_loop().time() + 60
        while not all_sent():
            assert asyncio.get_running_loop().time() < deadline, Counter(
                d["state"] for d in db["jobs"].find()
            )
            await asyncio.sleep(0.2)
        per_job = Counter(d.job_id for d in fleet.deliveries)
        assert len(per_job) == total and set(per_job.values()) == {1}, "a job was delivered twice"
        per_peer = Counter(d.peer for d in fleet.deliveries)
        assert set(per_peer.values()) == {1}
        jobs = list(db["jobs"].find())
        assert all(j["message_id"] == fleet.record[j["_id"]].message_id for j in jobs)
        print("attempt outcomes:", Counter(a[2] for a in fleet.attempts), "restarts:", proc.starts)
    finally:
        await asyncio.to_thread(proc.terminate)
        await nc.close()
        await fleet.stop()
        for name in client.list_database_names():
            if name.startswith(prefix):
                client.drop_database(name)
        client.close()
        os.environ.pop("TGM_CAMPAIGN_SEND_TIMEOUT_SECONDS", None)
