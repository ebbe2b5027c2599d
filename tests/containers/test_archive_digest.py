"""The stream loaded into the engine is checked against the digest recorded at upload, in the same pass and in flat
memory: HashingReader gives hashlib's digest of the whole file whatever way tarfile moves through it, and a file
changed since upload raises before the manifest (without which the engine loads nothing) leaves."""

import hashlib
import io
import tarfile
import tracemalloc

import pytest

from spinebench.algorithms.archives import ArchiveError, HashingReader, untagged_stream

from .archive_builders import MIB, write_archive


@pytest.mark.parametrize("compress", [False, True])
def test_the_stream_passes_with_the_recorded_digest_and_fails_without_the_manifest_otherwise(tmp_path, compress):
    path = tmp_path / ("image.tar.gz" if compress else "image.tar")
    write_archive(path, compress=compress, repositories=True)  # a dropped member: tarfile seeks over its data
    recorded = hashlib.sha256(path.read_bytes()).hexdigest()
    data = b"".join(untagged_stream(path, max_image_bytes=MIB, sha256=recorded))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        assert "manifest.json" in archive.getnames()
    sent = []
    with pytest.raises(ArchiveError, match="no longer matches the SHA-256 recorded"):
        for block in untagged_stream(path, max_image_bytes=MIB, sha256="0" * 64):
            sent.append(block)
    assert b"manifest.json" not in b"".join(sent)


def test_a_byte_changed_after_upload_is_caught(tmp_path):
    path = tmp_path / "image.tar"
    write_archive(path)
    recorded = hashlib.sha256(path.read_bytes()).hexdigest()
    content = bytearray(path.read_bytes())
    content[-2000] ^= 0x01  # in the trailing blocks: a byte tarfile itself never needs to read
    path.write_bytes(bytes(content))
    with pytest.raises(ArchiveError, match="changed or corrupted on disk"):
        b"".join(untagged_stream(path, max_image_bytes=MIB, sha256=recorded))


@pytest.mark.parametrize(
    "moves",
    [
        [("read", 10), ("seek", 0), ("read", 100), ("seek", 5000), ("read", 7), ("seek", 20), ("read", 3000)],
        [("seek", 9000), ("read", 1), ("seek", 0), ("read", 20000)],
        [("read", 1 << 20)],
    ],
)
def test_hashing_reader_hashes_each_byte_once_in_file_order(tmp_path, moves):
    content = bytes(range(256)) * 50 + b"tail"
    path = tmp_path / "f"
    path.write_bytes(content)
    with open(path, "rb") as handle:
        reader = HashingReader(handle)
        for move, value in moves:
            if move == "read":
                position = handle.tell()
                assert reader.read(value) == content[position:position + value]
            else:
                reader.seek(value)
        assert reader.finish() == hashlib.sha256(content).hexdigest()


def test_memory_stays_flat_while_a_large_archive_streams(tmp_path):
    path = tmp_path / "big.tar"
    write_archive(path, layer_bytes=48 * MIB)
    recorded = hashlib.sha256(path.read_bytes()).hexdigest()
    tracemalloc.start()
    try:
        total = sum(len(block) for block in untagged_stream(path, max_image_bytes=64 * MIB, sha256=recorded))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 48 * MIB and peak < 8 * MIB, peak


def test_the_engine_load_waits_longer_than_the_clients_usual_timeout(settings):
    """The engine answers a load only after unpacking every layer: that one call gets the long timeout, and the
    client's usual one comes back afterwards (also when the load fails)."""
    from types import SimpleNamespace

    from spinebench.algorithms.execution import engine_load

    settings.SPINEBENCH_IMAGE_LOAD_TIMEOUT_S = 1234
    seen = []

    def load(stream):
        seen.append((client.api.timeout, b"".join(stream)))
        if len(seen) > 1:
            raise RuntimeError("the engine went away")
        return ["image"]

    client = SimpleNamespace(api=SimpleNamespace(timeout=60), images=SimpleNamespace(load=load))
    assert engine_load(client, iter([b"a", b"b"])) == ["image"]
    with pytest.raises(RuntimeError):
        engine_load(client, iter([b"c"]))
    assert seen == [(1234, b"ab"), (1234, b"c")] and client.api.timeout == 60
