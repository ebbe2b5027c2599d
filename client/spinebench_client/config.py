"""Where the client keeps the server address and the API token: one JSON file in the user's config directory,
created with mode 0600 (the token is a password)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


class NotLoggedIn(Exception):
    pass


def config_path() -> Path:
    """`SPINEBENCH_CLIENT_CONFIG`, else `<config dir>/spinebench/client.json` (XDG_CONFIG_HOME or ~/.config; %APPDATA%
    on Windows)."""
    explicit = os.environ.get("SPINEBENCH_CLIENT_CONFIG")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        base = Path(os.environ["APPDATA"])
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "spinebench" / "client.json"


def write_private(path: Path, data: dict) -> Path:
    """`data` as JSON in a file only its owner may read: created 0600 before anything is written; an existing file is
    narrowed too."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.chmod(path, 0o600)
    return path


def save(*, server: str, token: str) -> Path:
    return write_private(config_path(), {"server": server.rstrip("/"), "token": token})


def uploads_path() -> Path:
    """Where unfinished chunked uploads are remembered (beside the config file), so that `submit` run again after a
    crash or a lost connection continues the same upload session."""
    return config_path().with_name("uploads.json")


def load() -> dict:
    path = config_path()
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotLoggedIn("Not logged in: run `spinebench-client login --server URL` first.") from None
    except (OSError, ValueError) as error:
        raise NotLoggedIn(f"Cannot read {path} ({error}); run `spinebench-client login` again.") from None
    if not isinstance(stored, dict) or not stored.get("server") or not stored.get("token"):
        raise NotLoggedIn(f"{path} holds no server and token; run `spinebench-client login` again.")
    return stored
