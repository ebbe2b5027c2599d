"""Validation of uploaded `docker save` archives, on archives written here member by member (no engine needed):
each refusal has its own message, the image id is the sha256 of the config file as Docker defines it, the USER is
resolved as the engine resolves it (root refused however it is spelled), link chains and oversized JSON or headers
are refused in bounded time and memory, JSON of the wrong shape is refused with a message, and the stream that is
loaded into the engine carries no tag."""

import gzip
import hashlib
import io
import json
import tarfile
import time
import tracemalloc

import pytest

from spinebench.algorithms.archives import MAX_JSON_BYTES, ArchiveError, inspect_archive, untagged_stream

from .archive_builders import (
    BASE_GROUP,
    BASE_PASSWD,
    MIB,
    add_bytes,
    image_config,
    layer_tar,
    link,
    passwd_layer,
    write_archive,
)


@pytest.mark.parametrize("compress", [False, True])
def test_valid_archive_is_described(tmp_path, compress):
    path = tmp_path / ("image.tar.gz" if compress else "image.tar")
    config_digest = write_archive(path, compress=compress)
    described = inspect_archive(path, max_image_bytes=MIB)
    assert described.image_id == f"sha256:{config_digest}"
    assert described.archive_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (described.user, described.uid, described.gid) == ("1000:1000", 1000, 1000)
    assert (described.architecture, described.os) == ("amd64", "linux")
    assert described.repo_tags == ["algo:0"]
    assert all(passed for _, passed, _ in described.checks)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": 2}, "manifest.json must list exactly one image, it lists 2"),
        ({"images": 0}, "manifest.json must list exactly one image, it lists 0"),
        ({"architecture": "arm64"}, "built for 'linux'/'arm64'; SpineBench runs linux/amd64 images only"),
        ({"os_name": "windows"}, "built for 'windows'/'amd64'"),
        ({"user": ""}, "the image runs as root"),
        ({"user": None}, "the image runs as root"),
        ({"user": "0:0"}, "the image runs as root"),
        ({"layer_bytes": 2 * MIB}, "over this phase's size cap of 1 MiB uncompressed"),
        ({"extra": [("../escape.txt", b"x")]}, "'../escape.txt' escapes the archive root"),
        ({"extra": [("layer/../../escape.txt", b"x")]}, "escapes the archive root"),
        ({"extra": [("/etc/cron.d/evil", b"x")]}, "has an empty, absolute or Windows path"),
        ({"extra": [link("layer/evil", "/etc/passwd")]}, "links to the absolute path '/etc/passwd'"),
        ({"extra": [link("layer/evil", "../../etc/passwd")]}, "links outside the archive"),
        ({"extra": [link("evil", "../outside", hard=True)]}, "links outside the archive"),
    ],
)
def test_refusals_name_the_problem(tmp_path, kwargs, message):
    write_archive(tmp_path / "image.tar", **kwargs)
    with pytest.raises(ArchiveError) as refusal:
        inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)
    assert message in str(refusal.value)


def test_device_file_is_refused(tmp_path):
    device = tarfile.TarInfo("layer/dev")
    device.type = tarfile.CHRTYPE
    write_archive(tmp_path / "image.tar", extra=[(device, None)])
    with pytest.raises(ArchiveError, match="device, fifo, sparse or other special file"):
        inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)


def test_not_an_archive_and_missing_manifest(tmp_path):
    (tmp_path / "junk.tar").write_bytes(b"this is not a tar archive at all" * 40)
    with pytest.raises(ArchiveError, match="is not a tar archive made by `docker save`"):
        inspect_archive(tmp_path / "junk.tar", max_image_bytes=MIB)
    with tarfile.open(tmp_path / "empty.tar", "w") as archive:
        add_bytes(archive, "hello.txt", b"hi")
    with pytest.raises(ArchiveError, match="'manifest.json' is missing from the archive"):
        inspect_archive(tmp_path / "empty.tar", max_image_bytes=MIB)


def test_manifest_naming_a_missing_layer_is_refused(tmp_path):
    manifest = json.dumps([{"Config": "c.json", "Layers": ["nowhere/layer.tar"]}]).encode()
    config = image_config(layers=[])
    with tarfile.open(tmp_path / "image.tar", "w") as archive:
        add_bytes(archive, "manifest.json", manifest)
        add_bytes(archive, "c.json", config)
    with pytest.raises(ArchiveError, match="'nowhere/layer.tar' is missing from the archive"):
        inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)


# M1: the USER resolved as the engine resolves it ------------------------------------------------------------------

ROOT_NAMED = "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:1000::/:/bin/sh\nalgorithm:x:1000:1000::/:/bin/sh\n"


@pytest.mark.parametrize(("user", "passwd", "group", "message"), [
    ("0", None, None, "uid 0"),
    ("00", None, None, "uid 0"),
    ("+0", None, None, "uid 0"),
    ("-0", None, None, "uid 0"),
    ("0000", None, None, "uid 0"),
    ("0000:1000", None, None, "uid 0"),
    ("", BASE_PASSWD, None, "uid 0"),
    (":1000", BASE_PASSWD, None, "uid 0"),
    ("root", BASE_PASSWD, None, "uid 0"),
    ("toor", ROOT_NAMED, None, "uid 0"),  # a name that the image's own passwd maps to uid 0
    ("admin", "admin:x:zero:1000::/:/bin/sh\n", None, "uid 0"),  # an unparsable uid reads as 0, as in runc
    ("1000:0", None, None, "gid 0"),
    ("1000:00", None, None, "gid 0"),
    ("1000:root", None, BASE_GROUP, "gid 0"),
    ("1000:wheel", None, "wheel:x:+0:\n", "gid 0"),
    ("1000", None, None, "gid 0"),  # no passwd entry: the engine runs it with gid 0
    ("staff", "staff:x:1000:0::/:/bin/sh\n", None, "gid 0"),
    ("algorithm:algorithm", BASE_PASSWD, "algorithm:x:0:\n", "gid 0"),
    ("nobody-here", BASE_PASSWD, None, "not a number and not a name in its /etc/passwd"),
    ("1000:nogroup", None, BASE_GROUP, "not a number and not a name in its /etc/group"),
    ("-1", None, None, "outside the uid range"),
    ("4294967296:1000", None, None, "outside the uid range"),
    (" 1000", BASE_PASSWD, None, "not a number and not a name"),  # Go's Atoi takes no spaces: a name, not in passwd
])
def test_root_however_spelled_is_refused(tmp_path, user, passwd, group, message):
    write_archive(tmp_path / "image.tar", user=user, layers=[layer_tar(), passwd_layer(passwd, group)])
    with pytest.raises(ArchiveError, match=message):
        inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)


@pytest.mark.parametrize(("user", "expected"), [
    ("algorithm", (1000, 1000)),
    ("1000", (1000, 1000)),  # numeric uid listed in passwd: its gid comes from there
    ("+1000", (1000, 1000)),
    ("algorithm:users", (1000, 100)),
    ("1000:100", (1000, 100)),
    ("algorithm:1000:0", (1000, 1000)),  # fields after the group are ignored by the engine
])
def test_non_root_users_resolve(tmp_path, user, expected):
    write_archive(tmp_path / "image.tar", user=user,
                  layers=[passwd_layer(BASE_PASSWD, BASE_GROUP + "users:x:100:\n")])
    described = inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)
    assert (described.uid, described.gid) == expected


def test_layers_apply_in_order_with_whiteouts(tmp_path):
    lower = passwd_layer("algorithm:x:0:0::/:/bin/sh\n")
    upper = passwd_layer("algorithm:x:1000:1000::/:/bin/sh\n")
    write_archive(tmp_path / "later-wins.tar", user="algorithm", layers=[lower, upper])
    assert inspect_archive(tmp_path / "later-wins.tar", max_image_bytes=MIB).uid == 1000
    write_archive(tmp_path / "earlier-loses.tar", user="algorithm", layers=[upper, lower])
    with pytest.raises(ArchiveError, match="uid 0"):
        inspect_archive(tmp_path / "earlier-loses.tar", max_image_bytes=MIB)
    whiteout = layer_tar({"etc/.wh.passwd": b""})
    write_archive(tmp_path / "whited-out.tar", user="algorithm", layers=[upper, whiteout])
    with pytest.raises(ArchiveError, match="not a name in its /etc/passwd"):
        inspect_archive(tmp_path / "whited-out.tar", max_image_bytes=MIB)
    opaque = layer_tar({"etc/.wh..wh..opq": b"", "etc/passwd": b"algorithm:x:0:1000::/:/bin/sh\n"})
    write_archive(tmp_path / "opaque.tar", user="algorithm", layers=[upper, opaque])
    with pytest.raises(ArchiveError, match="uid 0"):
        inspect_archive(tmp_path / "opaque.tar", max_image_bytes=MIB)


def test_passwd_behind_a_link_cannot_resolve_a_name(tmp_path):
    layer = layer_tar({"etc/passwd": link("etc/passwd", "../opt/passwd"),
                       "opt/passwd": b"algorithm:x:1000:1000::/:/bin/sh\n"})
    write_archive(tmp_path / "image.tar", user="algorithm", layers=[layer])
    with pytest.raises(ArchiveError, match="cannot be resolved: /etc/passwd in the image is a link"):
        inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)


def test_numeric_user_and_group_need_no_layer_scan(tmp_path):
    write_archive(tmp_path / "image.tar", user="1234:5678", layers=[b"not a tar at all" * 100])
    described = inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)
    assert (described.uid, described.gid) == (1234, 5678)


def test_a_layer_that_is_not_a_tar_is_refused_when_needed(tmp_path):
    write_archive(tmp_path / "image.tar", user="algorithm", layers=[b"not a tar at all" * 100])
    with pytest.raises(ArchiveError, match="the layer 'layer0/layer.tar' is truncated or corrupt"):
        inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)


# H4: links are followed a bounded number of times -------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("loop", ["config", "manifest", "layer", "self"])
def test_link_loops_are_refused_at_once(tmp_path, loop):
    layers = [layer_tar()]
    config = image_config(layers=layers)
    manifest = {"Config": "a.json", "RepoTags": None, "Layers": ["layer0/layer.tar"]}
    members = [("b.json", config)]
    if loop == "config":
        members = [link("a.json", "b.json"), link("b.json", "a.json")]
    elif loop == "self":
        members = [link("a.json", "a.json")]
    elif loop == "layer":
        manifest["Config"], manifest["Layers"] = "c.json", ["l1.tar"]
        members = [("c.json", config), link("l1.tar", "sub/../l2.tar"), link("l2.tar", "l1.tar", hard=True)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        if loop == "manifest":
            archive.addfile(link("manifest.json", "m2.json")[0])
            archive.addfile(link("m2.json", "manifest.json")[0])
        else:
            add_bytes(archive, "manifest.json", json.dumps([manifest]).encode())
        for member, data in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                add_bytes(archive, member, data)
    (tmp_path / "loop.tar").write_bytes(buffer.getvalue())
    started = time.monotonic()
    expected = "is not a regular file" if loop == "manifest" else "chain of more than 16 links"
    with pytest.raises(ArchiveError, match=expected):
        inspect_archive(tmp_path / "loop.tar", max_image_bytes=MIB)
    assert time.monotonic() - started < 5


def test_link_chains_resolve_from_each_links_own_folder(tmp_path):
    """OCI layouts link a layer to a blob; a chain of links is followed relative to each link's own folder."""
    layer = layer_tar()
    config = image_config(layers=[layer])
    manifest = [{"Config": "cfg/link.json", "RepoTags": None, "Layers": ["l/layer.tar"]}]
    with tarfile.open(tmp_path / "image.tar", "w") as archive:
        add_bytes(archive, "manifest.json", json.dumps(manifest).encode())
        add_bytes(archive, "blobs/sha256/config", config)
        archive.addfile(link("cfg/link.json", "../deep/hop.json")[0])
        archive.addfile(link("deep/hop.json", "../blobs/sha256/config")[0])
        add_bytes(archive, "blobs/sha256/layer", layer)
        archive.addfile(link("l/layer.tar", "../blobs/sha256/layer")[0])
    described = inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)
    assert described.image_id == "sha256:" + hashlib.sha256(config).hexdigest()


# M5: JSON members and tar headers are size-capped before they are read ---------------------------------------------


def peak_memory(function) -> int:
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("member", ["manifest", "config"])
def test_oversized_json_members_are_refused_unread(tmp_path, member):
    big = b"[" + b" " * (64 * MIB) + b"]"
    kwargs = {"manifest": big} if member == "manifest" else {"config": b'{"os": "linux"' + b" " * (64 * MIB) + b"}"}
    write_archive(tmp_path / "big.tar.gz", compress=True, **kwargs)
    assert (tmp_path / "big.tar.gz").stat().st_size < MIB

    def inspect():
        with pytest.raises(ArchiveError, match=f"over the {MAX_JSON_BYTES}-byte limit"):
            inspect_archive(tmp_path / "big.tar.gz", max_image_bytes=128 * MIB)

    assert peak_memory(inspect) < 16 * MIB


def test_oversized_tar_headers_are_refused_unread(tmp_path):
    """A pax header of 48 MiB (tarfile would read it in one piece) is refused before it is read."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("manifest.json")
        info.pax_headers = {"comment": "x" * (48 * MIB)}
        archive.addfile(info, io.BytesIO(b""))
    (tmp_path / "header.tar.gz").write_bytes(gzip.compress(buffer.getvalue(), compresslevel=1))

    def inspect():
        with pytest.raises(ArchiveError, match="header that declares"):
            inspect_archive(tmp_path / "header.tar.gz", max_image_bytes=128 * MIB)

    assert peak_memory(inspect) < 16 * MIB


def test_compression_bomb_in_a_layer_stops_at_the_cap(tmp_path):
    """A gzip layer that inflates past the image cap is refused while it is read for /etc/passwd."""
    inner = layer_tar({"big.bin": b"\0" * (64 * MIB), "etc/passwd": BASE_PASSWD.encode()})
    write_archive(tmp_path / "bomb.tar", user="algorithm", layers=[gzip.compress(inner, compresslevel=1)])
    with pytest.raises(ArchiveError, match="decompresses to more than 8 MiB"):
        inspect_archive(tmp_path / "bomb.tar", max_image_bytes=8 * MIB)


# M2: JSON of the wrong shape, or not JSON, is a clear refusal -------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"manifest": b'["not an object"]'}, "manifest.json has the wrong shape"),
    ({"manifest": b'[{"Config": 5, "Layers": []}]'}, "Config is not a file name"),
    ({"manifest": b'[{"Config": "c.json", "Layers": "layer.tar"}]'}, "Layers is not a list of file names"),
    ({"manifest": b'[{"Config": "c.json", "Layers": [1, 2]}]'}, "Layers is not a list of file names"),
    ({"manifest": b'[{"Config": "c.json", "Layers": [], "RepoTags": "x:y"}]'}, "RepoTags is not a list"),
    ({"manifest": b'{"Config": "c.json"}'}, "must list exactly one image, it lists no"),
    ({"manifest": b"null"}, "must list exactly one image, it lists no"),
    ({"manifest": b"\xff\xfe\x00garbage"}, "manifest.json' in the archive is not valid JSON"),
    ({"manifest": b"[" * 200_000}, "nests too deeply|not valid JSON"),
    ({"config": b"[1, 2, 3]"}, "the image config has the wrong shape: it is not a JSON object"),
    ({"config": b'{"os": "linux", "architecture": "amd64", "config": "USER 0"}'}, "its config is not an object"),
    ({"config": b'{"os": "linux", "architecture": "amd64", "config": {"User": 0}}'}, "must be strings"),
    ({"config": b'{"os": ["linux"], "architecture": "amd64"}'}, "must be strings"),
    ({"config": b"not json"}, "in the archive is not valid JSON"),
])
def test_json_of_the_wrong_shape_is_refused(tmp_path, kwargs, message):
    write_archive(tmp_path / "image.tar", **kwargs)
    with pytest.raises(ArchiveError, match=message):
        inspect_archive(tmp_path / "image.tar", max_image_bytes=MIB)


# H1: the stream loaded into the engine carries no name ---------------------------------------------------------------


def test_untagged_stream_drops_every_name(tmp_path):
    index = {"schemaVersion": 2, "manifests": [{"digest": "sha256:" + "0" * 64, "annotations": {
        "io.containerd.image.name": "docker.io/spinebench/evaluator:latest",
        "org.opencontainers.image.ref.name": "latest", "org.example.kept": "yes"}}]}
    config_digest = write_archive(tmp_path / "image.tar.gz", compress=True, repositories=True,
                                  repo_tags=["spinebench/evaluator:latest", "spinebench/baselines-cpu:latest"],
                                  extra=[("index.json", json.dumps(index).encode())])
    described = inspect_archive(tmp_path / "image.tar.gz", max_image_bytes=MIB)
    data = b"".join(untagged_stream(tmp_path / "image.tar.gz", max_image_bytes=MIB))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile("manifest.json"))
        loaded_index = json.load(archive.extractfile("index.json"))
        layer = archive.extractfile("layer0/layer.tar").read()
    assert "repositories" not in names and names.count("manifest.json") == 1
    assert manifest == [{"Config": f"{config_digest}.json", "RepoTags": None, "Layers": ["layer0/layer.tar"]}]
    assert loaded_index["manifests"][0]["annotations"] == {"org.example.kept": "yes"}
    assert layer == layer_tar()
    assert b"spinebench/evaluator" not in data and described.repo_tags[0] == "spinebench/evaluator:latest"
