"""Benchmark (outside CI): a large algorithm archive through the chunked upload API and into Docker, measuring memory.

1. Writes a `docker save` archive of one linux/amd64 image whose single layer holds one file of random bytes (the
   layer tar is written straight into the archive while its digest, the image's diff_id, is computed).
2. Starts gunicorn (one worker process, two threads) on 127.0.0.1 over a fresh data folder, creates a participant
   and an API token, and uploads the archive with POST /api/uploads/, PUT chunks (each with its SHA-256) and
   finalise, as any client does.
3. In a separate loader process, runs what the container worker runs on the stored file: `inspect_archive`
   (validation) and the engine load from `untagged_stream` (tag-free, hashed against the digest recorded at upload
   in the same pass), then removes the image again.

Prints the peak resident memory (VmHWM) of the gunicorn worker that received every byte and of the loader, beside
the archive's size; flat memory means both stay far below it (the chunk size bounds the server: it streams each
chunk to disk in 64 KiB pieces).

    .venv/bin/python benchmarks/uploads_large_archive.py                      # 5 GiB (needs ~12 GiB free disk)
    .venv/bin/python benchmarks/uploads_large_archive.py --size-mib 1024      # a quicker run

Needs a Docker engine. Runs on the embedded default (SQLite, a data folder under --dir, removed at the end).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from load_site import free_port, stop  # the load benchmark's server helpers (benchmarks/ is on the path)

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=5 * 1024, help="random bytes in the layer (default 5120)")
    parser.add_argument("--chunk-mib", type=int, default=64, help="bytes per PUT (default 64, the server's cap)")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the data folder is made")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    args = parser.parse_args()
    if not 1 <= args.size_mib <= 64 * 1024 or not 1 <= args.chunk_mib <= 64:
        parser.error("--size-mib 1..65536, --chunk-mib 1..64")
    return args


# --------------------------------------------------------------------------------------------------- the archive


def _add(archive, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    archive.addfile(info, io.BytesIO(data))


def write_archive(path: Path, *, size: int) -> None:
    """One image, one layer holding `blob` (`size` random bytes), USER 1000:1000. The layer tar is one header, the
    padded data and two zero blocks: its length is known in advance, so it is streamed into the outer tar once."""
    blob = tarfile.TarInfo("blob")
    blob.size, blob.mode, blob.mtime, blob.uid, blob.gid = size, 0o644, 0, 1000, 1000
    layer_header = blob.tobuf(tarfile.PAX_FORMAT)
    data_padding = b"\0" * (-size % tarfile.BLOCKSIZE)
    layer_size = len(layer_header) + size + len(data_padding) + 2 * tarfile.BLOCKSIZE
    generator, diff = random.Random(0), hashlib.sha256()
    with open(path, "wb") as out:
        outer = tarfile.TarInfo("layer/layer.tar")
        outer.size, outer.mode, outer.mtime = layer_size, 0o644, 0
        out.write(outer.tobuf(tarfile.PAX_FORMAT))

        def emit(data: bytes) -> None:
            diff.update(data)
            out.write(data)

        emit(layer_header)
        remaining = size
        while remaining:
            piece = generator.randbytes(min(8 * MIB, remaining))
            emit(piece)
            remaining -= len(piece)
        emit(data_padding + b"\0" * (2 * tarfile.BLOCKSIZE))
        out.write(b"\0" * (-layer_size % tarfile.BLOCKSIZE))
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {"User": "1000:1000", "Cmd": ["/blob"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff.hexdigest()]},
        }).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        manifest = json.dumps([{"Config": config_name, "RepoTags": ["bench/large:latest"],
                                "Layers": ["layer/layer.tar"]}]).encode()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as rest:  # appends after the layer
            _add(rest, config_name, config)
            _add(rest, "manifest.json", manifest)


# ------------------------------------------------------------------------------------------------------ the site


def environment(var_dir: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "spinebench.settings.local",
        "DEBUG": "false",
        "SPINEBENCH_VAR_DIR": str(var_dir),
        "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)]),
        "LOG_LEVEL": "WARNING",
        "SPINEBENCH_THROTTLE_USER": "100000/min",
    })
    return env


def set_up(var_dir: Path) -> str:
    """Migrate, create a participant and an API token; the token's secret."""
    os.environ.update(environment(var_dir))
    sys.path[:0] = [str(REPO / "platform"), str(REPO)]
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from spinebench.accounts.tokens import issue_token

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-uploader", password="bench-password-1")
    return issue_token(user=user, name="benchmark").secret


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def start_server(var_dir: Path, port: int) -> subprocess.Popen:
    log = (var_dir / "gunicorn.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "spinebench.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--threads", "2", "--timeout", "300"],
        env=environment(var_dir), cwd=var_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while piece := handle.read(8 * MIB):
            digest.update(piece)
    return digest.hexdigest()


def upload(base: str, token: str, path: Path, *, chunk: int) -> tuple[dict, float, float]:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    size = path.stat().st_size
    created = session.post(f"{base}/api/uploads/", json={"kind": "algorithm_archive", "size": size,
                                                         "sha256": file_sha256(path), "filename": path.name})
    created.raise_for_status()
    url = created.json()["upload_url"]
    started = time.monotonic()
    with open(path, "rb") as handle:
        offset = 0
        while piece := handle.read(chunk):
            response = session.put(url, params={"offset": offset}, data=piece,
                                   headers={"Upload-Chunk-SHA256": hashlib.sha256(piece).hexdigest(),
                                            "Content-Type": "application/octet-stream"})
            response.raise_for_status()
            offset = response.json()["offset"]
    sent = time.monotonic()
    finalised = session.post(created.json()["finalise_url"])
    finalised.raise_for_status()
    return finalised.json(), sent - started, time.monotonic() - sent


LOADER = """
import json, sys, time
import django
django.setup()
from pathlib import Path
from django.core.files.storage import default_storage
from spinebench.algorithms import runner
from spinebench.algorithms.archives import inspect_archive, untagged_stream
from spinebench.algorithms.execution import engine_load
from spinebench.uploads.models import StoredUpload

def peak_rss_mib():
    lines = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:"))

record = StoredUpload.objects.get(pk=int(sys.argv[1]))
client = runner.docker_client()
baseline = peak_rss_mib()
path, cap = Path(default_storage.path(record.storage_name)), int(sys.argv[2])
started = time.monotonic()
described = inspect_archive(path, max_image_bytes=cap)
validated = time.monotonic()
loaded = engine_load(client, untagged_stream(path, max_image_bytes=cap, sha256=record.sha256))
done = time.monotonic()
assert described.image_id in {image.id for image in loaded}, "the engine did not load the archive's image"
client.images.remove(described.image_id, force=True)
print(json.dumps({"validate_s": validated - started, "load_s": done - validated, "image_id": described.image_id,
                  "peak_rss_mib": peak_rss_mib(), "baseline_rss_mib": baseline}))
"""


def main() -> None:
    args = parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="spinebench-upload-bench-", dir=args.dir))
    server = None
    try:
        archive = var_dir / "large-image.tar"
        started = time.monotonic()
        write_archive(archive, size=args.size_mib * MIB)
        size = archive.stat().st_size
        print(f"archive: {size / MIB:.0f} MiB written in {time.monotonic() - started:.0f} s")
        token = set_up(var_dir)
        port = free_port()
        server = start_server(var_dir, port)
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server, var_dir)
        worker = children(server.pid)[0]
        before = peak_rss_mib(worker)
        session, send_s, finalise_s = upload(base, token, archive, chunk=args.chunk_mib * MIB)
        server_peak = peak_rss_mib(worker)
        print(f"upload: {size / MIB / send_s:.0f} MiB/s over {send_s:.0f} s in {args.chunk_mib} MiB chunks; "
              f"finalise (whole-file SHA-256, move into storage) {finalise_s:.1f} s")
        stop(server)
        server = None
        archive.unlink()  # the stored copy is what the loader reads
        loader = subprocess.run(
            [sys.executable, "-c", LOADER, str(session["stored_upload"]), str(size + 64 * MIB)],
            env=environment(var_dir), cwd=var_dir, capture_output=True, text=True, timeout=3600,
        )
        if loader.returncode != 0:
            raise SystemExit(f"loader failed:\n{loader.stderr[-3000:]}")
        loaded = json.loads(loader.stdout.strip().splitlines()[-1])
        print(f"loader: validate {loaded['validate_s']:.0f} s, load into Docker {loaded['load_s']:.0f} s "
              f"(image {loaded['image_id'][:19]})")
        print(f"\nRESULT archive {size / MIB:.0f} MiB | gunicorn worker peak RSS {server_peak:.0f} MiB "
              f"(after start-up {before:.0f} MiB) | loader peak RSS {loaded['peak_rss_mib']:.0f} MiB "
              f"(after start-up {loaded['baseline_rss_mib']:.0f} MiB)")
    finally:
        if server is not None:
            stop(server)
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)


def wait_until_up(base: str, process: subprocess.Popen, var_dir: Path) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{(var_dir / 'gunicorn.log').read_text()[-3000:]}")
        try:
            if requests.get(f"{base}/api/", timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit("gunicorn did not answer within 60 s")


if __name__ == "__main__":
    main()
