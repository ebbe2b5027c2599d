"""Validation of uploaded `docker save` archives, on archives written here member by member (no engine needed):
each refusal has its own message, the image id is the sha256 of the config file as Docker defines it."""

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from spinebench.algorithms.archives import ArchiveError, inspect_archive

MIB = 1 << 20


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def write_archive(path, *, user="1000", architecture="amd64", os_name="linux", images=1, extra=None, layer_bytes=1024,
                  compress=False):
    config = json.dumps({"architecture": architecture, "os": os_name, "config": {"User": user}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [f"algo:{i}"], "Layers": ["layer/layer.tar"]} for i in range(images)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        add_bytes(archive, "manifest.json", json.dumps(manifest).encode())
        add_bytes(archive, config_name, config)
        add_bytes(archive, "layer/layer.tar", b"\0" * layer_bytes)
        for member, data in (extra or []):
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member, io.BytesIO(data) if data else None)
            else:
                add_bytes(archive, member, data)
    data = buffer.getvalue()
    path.write_bytes(gzip.compress(data) if compress else data)
    return hashlib.sha256(config).hexdigest()


def link(name, target, *, hard=False):
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


@pytest.mark.parametrize("compress", [False, True])
def test_valid_archive_is_described(tmp_path, compress):
    path = tmp_path / ("image.tar.gz" if compress else "image.tar")
    config_digest = write_archive(path, compress=compress)
    described = inspect_archive(path, max_image_bytes=MIB)
    assert described.image_id == f"sha256:{config_digest}"
    assert described.archive_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (described.user, described.architecture, described.os) == ("1000", "amd64", "linux")
    assert described.repo_tags == ["algo:0"]
    assert all(passed for _, passed, _ in described.checks)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": 2}, "manifest.json must list exactly one image, it lists 2"),
        ({"images": 0}, "manifest.json must list exactly one image, it lists 0"),
        ({"architecture": "arm64"}, "built for linux/arm64; SpineBench runs linux/amd64 images only"),
        ({"os_name": "windows"}, "built for windows/amd64"),
        ({"user": ""}, "the image runs as root"),
        ({"user": "root"}, "the image runs as root"),
        ({"user": "0:0"}, "the image runs as root"),
        ({"layer_bytes": 2 * MIB}, "over this phase's size cap of 1 MiB uncompressed"),
        ({"extra": [("../escape.txt", b"x")]}, "'../escape.txt' escapes the archive root"),
        ({"extra": [("layer/../../escape.txt", b"x")]}, "escapes the archive root"),
        ({"extra": [("/etc/cron.d/evil", b"x")]}, "has an absolute or Windows path"),
        ({"extra": [link("layer/evil", "/etc/passwd")]}, "links to the absolute path '/etc/passwd'"),
        ({"extra": [link("layer/evil", "../../etc/passwd")]}, "links outside the archive"),
        ({"extra": [link("evil", "../outside", hard=True)]}, "links outside the archive"),
    ],
)
def test_refusals_name_the_problem(tmp_path, kwargs, message):
    write_archive(tmp_path / "image.tar", **kwargs)
    with pytest.raises(ArchiveError, match=None) as refusal:
        inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)
    assert message in str(refusal.value)


def test_device_file_is_refused(tmp_path):
    device = tarfile.TarInfo("layer/dev")
    device.type = tarfile.CHRTYPE
    write_archive(tmp_path / "image.tar", extra=[(device, None)])
    with pytest.raises(ArchiveError, match="device, fifo or other special file"):
        inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)


def test_not_an_archive_and_missing_manifest(tmp_path):
    (tmp_path / "junk.tar").write_bytes(b"this is not a tar archive at all" * 40)
    with pytest.raises(ArchiveError, match="is not a tar or tar.gz archive"):
        inspect_archive(tmp_path / "junk.tar", max_image_bytes=MIB)
    with tarfile.open(tmp_path / "empty.tar", "w") as archive:
        add_bytes(archive, "hello.txt", b"hi")
    with pytest.raises(ArchiveError, match="manifest.json is missing from the archive"):
        inspect_archive(tmp_path / "empty.tar", max_image_bytes=MIB)


def test_manifest_naming_a_missing_layer_is_refused(tmp_path):
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"User": "1000"}}).encode()
    with tarfile.open(tmp_path / "image.tar", "w") as archive:
        add_bytes(archive, "manifest.json", json.dumps([{"Config": "c.json", "Layers": ["nowhere/layer.tar"]}]).encode())
        add_bytes(archive, "c.json", config)
    with pytest.raises(ArchiveError, match="names the layer 'nowhere/layer.tar', which is not in the archive"):
        inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)
