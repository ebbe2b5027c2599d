"""The embedded broker (kombu's filesystem transport under SPINEBENCH_BROKER_DIR): kombu needs its folders to exist
before anyone publishes or consumes, and keeps every taken message in `processed/` (see settings), so old ones are
pruned here."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings


def is_filesystem() -> bool:
    return str(settings.CELERY_BROKER_URL).startswith("filesystem:")


def folders() -> list[Path]:
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    keys = ("data_folder_in", "data_folder_out", "control_folder", "processed_folder")
    return sorted({Path(str(options[key])) for key in keys if options.get(key)})


def ensure_folders() -> None:
    if is_filesystem():
        for folder in folders():
            folder.mkdir(parents=True, exist_ok=True)


def prune_processed(*, older_than_s: float = 86400.0) -> int:
    """Delete taken messages older than `older_than_s` (a day of them stays for a look after a crash)."""
    if not is_filesystem():
        return 0
    processed = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["processed_folder"]))
    cutoff = time.time() - older_than_s
    removed = 0
    for path in processed.glob("*.msg"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
