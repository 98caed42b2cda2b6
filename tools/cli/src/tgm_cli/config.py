"""Where `tgm` finds the gateway and its key: `TGM_URL` / `TGM_KEY`, else the file `tgm login` wrote.

The file is `config.json` in the user's config dir (platformdirs: `~/.config/tgm` on Linux;
`TGM_CONFIG_DIR` moves it, which the tests use; the catalogue cache is in the user's cache dir,
`TGM_CACHE_DIR`). It holds the key, so it is written with mode 0600
in a folder of mode 0700, through a temporary file renamed over the old one: a reader never sees half
a file and the key is never readable by others, not even for a moment.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_URL = "http://127.0.0.1:8080"
FILE_NAME = "config.json"


@dataclass(frozen=True)
class Credentials:
    """The gateway's base URL and the API key to send (None: not logged in)."""

    url: str
    key: str | None


def config_dir() -> Path:
    override = os.environ.get("TGM_CONFIG_DIR")
    return Path(override) if override else platformdirs.user_config_path("tgm", appauthor=False)


def cache_dir() -> Path:
    """Where the catalogue is cached (`TGM_CACHE_DIR` moves it)."""
    override = os.environ.get("TGM_CACHE_DIR")
    return Path(override) if override else platformdirs.user_cache_path("tgm", appauthor=False)


def config_file() -> Path:
    return config_dir() / FILE_NAME


def _read_file() -> dict[str, str]:
    try:
        data = json.loads(config_file().read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ValueError(f"{config_file()} is not valid JSON ({exc}); `tgm login` writes it anew") from None
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url


def load(url: str | None = None, key: str | None = None) -> Credentials:
    """Explicit values first, then `TGM_URL` / `TGM_KEY`, then the login file, then the default URL."""
    stored = _read_file()
    chosen_url = url or os.environ.get("TGM_URL") or stored.get("url") or DEFAULT_URL
    chosen_key = key or os.environ.get("TGM_KEY") or stored.get("key")
    return Credentials(normalise_url(chosen_url), chosen_key or None)


def save(creds: Credentials) -> Path:
    """Write URL and key to the login file (mode 0600); its path."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / FILE_NAME
    tmp = folder / f".{FILE_NAME}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask cannot widen it, an old file's mode does not carry over
        with os.fdopen(fd, "w") as out:
            json.dump({"url": creds.url, "key": creds.key}, out)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove() -> bool:
    """Delete the login file; whether there was one."""
    try:
        config_file().unlink()
    except FileNotFoundError:
        return False
    return True
