"""A stand-in for a service or the gateway, run by the stack's tests as `python -m stack_fake_child`.

It reads the environment the stack gives a real child and behaves like one where the stack can
tell: it serves `/readyz` (200 only while NATS and the database accept connections), `/healthz` and a
one-line `/metrics` (naming its replica), the gateway
role writes `admin.key` on first start, SIGTERM exits 0. For the tests it also records each start
and its environment under `<TGM_DATA_DIR>/fake/`, can spawn a grandchild, and exits with any
status on `POST /exit?code=N` (status 0 from the gateway is what `graceful-shutdown` does).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

RECORDED = (
    "NATS_URL",
    "MONGODB_URI",
    "TGM_DATA_DIR",
    "TGM_MASTER_KEY_FILE",
    "TGM_REPLICA_ID",
    "TGM_HEALTH_PORT",
    "TGM_GATEWAY_HOST",
    "TGM_GATEWAY_PORT",
    "FAKE_EXTRA",
)


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 0
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def main() -> None:
    env = os.environ
    replica = env["TGM_REPLICA_ID"]
    data = Path(env["TGM_DATA_DIR"])
    gateway = "TGM_GATEWAY_PORT" in env
    if env.get("FAKE_FAIL_START") == replica:
        print(f"{replica}: invalid configuration, giving up", flush=True)
        sys.exit(2)

    record = data / "fake"
    record.mkdir(exist_ok=True)
    with (record / f"{replica}.starts").open("a") as f:
        f.write(f"{os.getpid()}\n")
    (record / f"{replica}.env.json").write_text(json.dumps({k: env.get(k) for k in RECORDED}))
    if env.get("FAKE_GRANDCHILD"):
        gc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        (record / f"{replica}.grandchild").write_text(str(gc.pid))
    if gateway:
        key_file = data / "admin.key"
        if not key_file.exists():
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24) + "\n")
        host, port = env["TGM_GATEWAY_HOST"], int(env["TGM_GATEWAY_PORT"])
    else:
        host, port = "127.0.0.1", int(env["TGM_HEALTH_PORT"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/readyz":
                ok = reachable(env["NATS_URL"]) and reachable(env["MONGODB_URI"])
                self.reply(200 if ok else 503, {"ready": ok})
            elif self.path == "/healthz":
                self.reply(200, {"alive": True, "replica": replica})
            elif self.path == "/metrics":
                data = f'fake_child_up{{replica="{replica}"}} 1\n'.encode()
                self.send_response(200)
                self.send_header("content-type", "text/plain; version=0.0.4")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self.reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/exit":
                code = int(parse_qs(url.query).get("code", ["0"])[0])
                self.reply(200, {"exiting": code})
                threading.Timer(0.05, os._exit, (code,)).start()
            else:
                self.reply(404, {"error": "not found"})

        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            print(f"{replica}: {format % args}", flush=True)

    server = ThreadingHTTPServer((host, port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{replica}: serving on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        print(f"{replica}: stopping", flush=True)


if __name__ == "__main__":
    main()
