"""The client's large uploads go through the resumable chunked upload sessions (issue 15), against a live server
behind a TCP proxy on 127.0.0.1 that drops the connection once, in the middle of a chunk: the client asks the server
for its offset and goes on (the file arrives once, its sha256 checked, and is scored); with no retries allowed it
stops with a one-line message, and running the same command again continues the same session."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import threading
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from spinebench.accounts.tokens import issue_token
from spinebench.challenges.models import Phase
from spinebench.datasets.services import link_phase_datasets, register_dataset
from spinebench.submissions.models import Submission
from spinebench.uploads.models import StoredUpload, UploadSession

from .factories import ChallengeFactory, RegistrationFactory
from .test_client import run_client

CHUNK = 16 * 1024


def _hang_up(*ends: socket.socket) -> None:
    """Shut both ways down first: a plain close() from this thread would not wake the other pump blocked in recv(),
    and the kernel would keep the connection open (no FIN), leaving the server waiting for the rest of the body."""
    for end in ends:
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        end.close()


class CuttingProxy:
    """Forwards 127.0.0.1:port to the live server. Once the client has sent `cut_after` bytes through it (over all
    connections), it closes both ends of the connection in the middle of whatever was being sent, once."""

    def __init__(self, target: tuple[str, int], *, cut_after: int):
        self.target, self.cut_after = target, cut_after
        self.sent = 0  # client-to-server bytes forwarded
        self.cuts = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump_up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(upstream, client), daemon=True).start()

    def _pump_up(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                with self.lock:
                    if not self.cuts and self.sent + len(data) > self.cut_after:
                        upstream.sendall(data[: self.cut_after - self.sent])
                        self.sent, self.cuts = self.cut_after, 1
                        raise ConnectionAbortedError
                    self.sent += len(data)
                upstream.sendall(data)
        except OSError:
            pass
        _hang_up(client, upstream)

    @staticmethod
    def _pump_down(upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        _hang_up(client, upstream)

    def stop(self) -> None:
        self.listener.close()


@pytest.fixture
def zip_site(transactional_db, eager_tasks, live_server, tmp_path, settings):
    """A per-case (zip) phase, a participant logged in through the proxy, and a zip of perfect predictions many chunks
    long (the server's chunk cap is lowered to CHUNK bytes)."""
    import phantoms

    settings.SPINEBENCH_UPLOAD_CHUNK_MAX_BYTES = CHUNK
    challenge = ChallengeFactory()
    folder = phantoms.generate("metastatic-body-ct", out=Path(settings.DATASETS_ROOT) / challenge.slug / "test",
                               cases=1, seed=3, domain="test", small=True, progress=False)
    dataset = register_dataset(challenge=challenge, slug="test", folder=folder)
    phase = Phase.objects.create(challenge=challenge, slug="test", title="Test", task="metastatic-body-ct",
                                 max_upload_bytes=50 * 1024**2)
    link_phase_datasets(phase=phase, dataset=dataset)
    user = RegistrationFactory(challenge=challenge).user
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for case in dataset.case_ids():
            # Stored uncompressed inside the gzip (still a valid .nii.gz), so the file spans many chunks.
            volume = gzip.decompress((dataset.ground_truth_dir / f"{case}.nii.gz").read_bytes())
            archive.writestr(f"{case}/segmentation.nii.gz", gzip.compress(volume, compresslevel=0))
    predictions = tmp_path / "predictions.zip"
    predictions.write_bytes(buffer.getvalue())
    assert predictions.stat().st_size > 6 * CHUNK  # several chunks before and after the cut
    host, port = live_server.thread.host, live_server.thread.port
    proxy = CuttingProxy((host, port), cut_after=predictions.stat().st_size // 2)
    config = tmp_path / "conf" / "client.json"
    token = issue_token(user=user, name="client").secret
    login = run_client("login", "--server", f"http://127.0.0.1:{proxy.port}", "--token", config=config,
                       stdin=token + "\n")
    assert login.returncode == 0, login.stderr
    yield {"phase": phase, "user": user, "config": config, "file": predictions, "proxy": proxy}
    proxy.stop()


def _arrived_once(user, path: Path) -> StoredUpload:
    """One stored file for the account, holding exactly the file's bytes (by sha256), used by the submission."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    [stored] = StoredUpload.objects.filter(kind=StoredUpload.Kind.PREDICTIONS_ZIP)
    assert (stored.sha256, stored.size) == (digest, path.stat().st_size)
    with default_storage.open(stored.storage_name) as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == digest
    [submission] = Submission.objects.filter(creator=user)
    assert submission.predictions_file.name == stored.storage_name
    assert UploadSession.objects.count() == 1
    return stored


@pytest.mark.slow  # a live server behind a proxy, the client in a subprocess
def test_a_dropped_connection_mid_chunk_is_resumed_and_the_file_arrives_once_and_is_scored(zip_site):
    proxy, path = zip_site["proxy"], zip_site["file"]
    done = run_client("submit", str(zip_site["phase"].pk), str(path), "--method-name", "ZipNet", "--wait",
                      "--interval", "0.2", config=zip_site["config"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert proxy.cuts == 1 and "retry 1 of 5" in done.stderr
    assert "succeeded" in done.stdout and "dice:" in done.stdout and "Traceback" not in done.stderr
    _arrived_once(zip_site["user"], path)
    submission = Submission.objects.get(creator=zip_site["user"])
    assert submission.method_name == "ZipNet" and submission.evaluation.aggregates["dice"] == pytest.approx(1.0)
    # Only what was lost travelled twice: at most one chunk's bytes on top of the file (plus headers).
    assert proxy.sent < path.stat().st_size + 2 * CHUNK + 20_000
    remembered = zip_site["config"].parent / "uploads.json"
    assert not remembered.exists() or json.loads(remembered.read_text()) == {}  # nothing left to resume


@pytest.mark.slow  # a live server, the client run twice
def test_a_crash_leaves_a_resumable_session_that_the_same_command_continues(zip_site):
    proxy, path, config = zip_site["proxy"], zip_site["file"], zip_site["config"]
    args = ("submit", str(zip_site["phase"].pk), str(path), "--wait", "--interval", "0.2", "--quiet")
    broken = run_client(*args, "--retries", "0", config=config)
    assert broken.returncode == 2 and proxy.cuts == 1
    assert "run the same command again to resume" in broken.stderr and "Traceback" not in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1
    [session] = UploadSession.objects.all()
    assert 0 < session.offset < path.stat().st_size and session.status == UploadSession.Status.OPEN
    remembered = config.parent / "uploads.json"
    assert str(session.pk) in remembered.read_text() and oct(remembered.stat().st_mode & 0o777) == "0o600"
    assert not Submission.objects.exists()

    sent_before = proxy.sent
    again = run_client(*args, config=config)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "succeeded" in again.stdout
    assert UploadSession.objects.get().pk == session.pk  # the same session, not a new upload
    # The second run sent the rest, not the whole file again.
    assert proxy.sent - sent_before < path.stat().st_size - session.offset + 2 * CHUNK + 20_000
    _arrived_once(zip_site["user"], path)
    assert json.loads(remembered.read_text()) == {}

