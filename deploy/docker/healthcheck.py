"""Container health check: GET http://127.0.0.1:<port><path>, exit 0 on HTTP 200, 1 otherwise.

The gateway serves /healthz and /readyz on its API port (TGM_GATEWAY_PORT); every other service on its
health port (TGM_HEALTH_PORT). Usage: `python /app/healthcheck.py [/readyz|/healthz]`.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/readyz"
    if os.environ.get("TGM_SERVICE") == "gateway":
        port = os.environ.get("TGM_GATEWAY_PORT", "8080")
    else:
        port = os.environ.get("TGM_HEALTH_PORT", "8081")
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as resp:
            ok = resp.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
