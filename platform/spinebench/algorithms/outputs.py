"""An algorithm run's outputs in the storage. The containers write into the run's local folder (bind mounts need a
local path: execution.run_root, the worker's scratch); once every job has succeeded the predictions are stored as
one zip (`algorithm-outputs/<submission>-<run key>.zip`, spinebench.uploads.stored_files), so a re-score on any
host, with any storage backend, reads them from there when the run's folder is not on its disk."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spinebench.uploads.local_cache import local_copy
from spinebench.uploads.stored_files import stored_once
from spinebench.uploads.zips import ZipLimits, extract_zip

from .models import AlgorithmRun


def outputs_name(run: AlgorithmRun) -> str:
    return f"algorithm-outputs/{run.submission_id}-{run.key.hex}.zip"


def store_outputs(run: AlgorithmRun, *, folder: Path) -> str:
    """The stored name of the zip of `folder` (the run's predictions), stored once."""

    def build(target: Path) -> None:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, path.relative_to(folder).as_posix())

    return stored_once(outputs_name(run), build)


@contextmanager
def run_predictions(run: AlgorithmRun, *, folder: Path, limits: ZipLimits) -> Iterator[Path]:
    """The run's predictions as a folder: `folder` where it is on this disk, else the stored zip unpacked into a
    temporary folder (removed on exit)."""
    if folder.is_dir():
        yield folder
        return
    archive = local_copy(outputs_name(run))
    with tempfile.TemporaryDirectory(prefix="spinebench-outputs-") as unpacked, archive.open("rb") as handle:
        yield extract_zip(handle, Path(unpacked), name="outputs.zip", limits=limits)
