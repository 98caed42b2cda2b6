"""JetStream streams, KV buckets and object stores, declared once.

Services create what they use at start (idempotently) from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import subjects


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_seconds: float
    description: str
    #: How long JetStream remembers a Nats-Msg-Id: long enough to drop a batch re-sent after a lost publish ack.
    duplicate_window_seconds: float = 120


@dataclass(frozen=True)
class KvSpec:
    bucket: str
    ttl_seconds: float | None
    history: int
    description: str


@dataclass(frozen=True)
class ObjectStoreSpec:
    bucket: str
    description: str
    #: Objects older than this are removed by the server (None: kept until deleted).
    ttl_seconds: float | None = None


EVENTS_STREAM = StreamSpec(
    name="TGM_EVENTS",
    subjects=(subjects.EVENTS_FILTER,),
    max_age_seconds=7 * 24 * 3600,
    description="Every domain event of every service; Nats-Msg-Id is the event id.",
)

#: Logs and performance samples every service ships to analytics (tgm_contracts.telemetry). Three
#: days is room for an analytics outage over a weekend without keeping a second copy of the logs
#: analytics already stores; the default dedupe window covers a batch re-sent after a lost publish ack.
TELEMETRY_STREAM = StreamSpec(
    name="TGM_TELEMETRY",
    subjects=(subjects.TELEMETRY_FILTER,),
    max_age_seconds=3 * 24 * 3600,
    description="Log batches and performance samples of every service; Nats-Msg-Id is replica:boot:seq.",
)

#: Which tg-session replica holds which account. A key per account, renewed by heartbeat.
ACCOUNT_LEASES = KvSpec(
    bucket="tgm_account_leases",
    ttl_seconds=15,
    history=1,
    description="account id -> holder replica id; expires unless renewed",
)

#: Job claims of campaign scheduler replicas.
JOB_LEASES = KvSpec(
    bucket="tgm_job_leases",
    ttl_seconds=30,
    history=1,
    description="scheduler lease keys; expire unless renewed",
)

#: The chats automation watches (campaign writes key `chats`, a `models.campaign.MonitoredChats`;
#: tg-session watches it and publishes group messages and joins only of those chats). No TTL: the
#: set stays until campaign changes it, so a restarted tg-session knows it at once.
MONITORED_CHATS = KvSpec(
    bucket="tgm_monitored_chats",
    ttl_seconds=None,
    history=1,
    description="key `chats`: MonitoredChats JSON (chat ids and usernames automation watches)",
)
MONITORED_CHATS_KEY = "chats"

#: The per-API-key request budget every gateway replica draws from (`tgm_gateway.keys.limiter`):
#: a key per API key id, `{"t": tokens, "at": epoch seconds}`. An idle key's entry expires, which
#: only ever gives it a full bucket again, as it would have refilled to by then.
KEY_RATE = KvSpec(
    bucket="tgm_key_rate",
    ttl_seconds=600,
    history=1,
    description="api key id -> shared token bucket of the gateway replicas",
)

#: Backup archives, one object per service and backup id.
BACKUPS = ObjectStoreSpec(bucket="tgm_backups", description="<backup id>/<service>.jsonl.gz")

#: Exports too large for one NATS reply (`tgm_runtime.exports.Exports`): the service that made the file
#: puts it here, the reply names it (`ExportFile.objectName`), and the gateway streams it to the caller
#: at `GET /api/v1/exports/<objectName>`. The name's first part is the least role that may download it.
#: Kept a day: an export is a download, not an archive.
EXPORTS = ObjectStoreSpec(
    bucket="tgm_exports",
    description="<least role>/<export id>/<filename>",
    ttl_seconds=24 * 3600,
)

#: Files too large for one NATS message on their way to a command (issue 13: large payloads): the caller
#: streams the bytes to `POST /api/v1/uploads`, the gateway puts them here under `<upload id>/<filename>`
#: and answers the name, and the command names it instead of carrying the bytes
#: (`rag-add-document {"upload": …}`); the service reads it from here. Kept an hour: long enough for
#: the command (and its retries) that follows, not an archive.
UPLOADS = ObjectStoreSpec(
    bucket="tgm_uploads",
    description="<upload id>/<filename>",
    ttl_seconds=3600,
)
#: An upload's object name: 32 hex digits (random: the name is the capability), a slash, the file's
#: name without slashes or control characters.
UPLOAD_NAME = r"^[0-9a-f]{32}/[^/\x00-\x1f]{1,120}$"

STREAMS: tuple[StreamSpec, ...] = (EVENTS_STREAM, TELEMETRY_STREAM)
KV_BUCKETS: tuple[KvSpec, ...] = (ACCOUNT_LEASES, JOB_LEASES, MONITORED_CHATS, KEY_RATE)
OBJECT_STORES: tuple[ObjectStoreSpec, ...] = (BACKUPS, EXPORTS, UPLOADS)
