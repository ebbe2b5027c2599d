"""Fuzzing the `docker save` archive validator with hypothesis: hostile archives built from random and garbled
manifest and config JSON, links (loops, escapes, absolute targets), special files, headers declaring huge sizes with
no data behind them, deep and `../` names, layers holding random /etc/passwd files or garbage, plain or gzipped.

Property, for every archive: `inspect_archive` returns a description (then the user is never root and the tag-free
stream it loads holds no tag) or raises ArchiveError with a short message; never any other exception, never a write
anywhere (the upload's folder and its parent are unchanged), bounded time (hypothesis deadline) and memory.
Kept small for CI: 80 examples."""

import gzip
import io
import json
import os
import tarfile
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from spinebench.algorithms.archives import ArchiveError, inspect_archive, untagged_stream
from tests.containers.archive_builders import layer_tar

MAX_IMAGE_BYTES = 4 << 20
KNOWN = ["manifest.json", "index.json", "repositories", "c.json", "a.json", "b.json", "layer0/layer.tar",
         "blobs/sha256/aa", "./manifest.json", "layer0", "etc/passwd", "sub/../c.json"]
HOSTILE = ["../escape", "../../etc/cron.d/x", "/etc/passwd", "a/../../b", "a\\b", "", ".", "..", "a/" * 60 + "deep",
           "x" * 300, "ümlaut.json", "nul\x00byte", "manifest.json/", "./../manifest.json"]
USERS = ["", "0", "00", "+0", "-0", "0000", "root", "toor", "1000", "1000:1000", "1000:0", "algorithm", ":1000",
         "algorithm:root", "-1", "99999999999999999999", " 1000", "1000:1000:0", "０"]

names = st.one_of(st.sampled_from(KNOWN + HOSTILE), st.text(max_size=30),
                  st.lists(st.sampled_from(["..", ".", "a", "manifest.json", "layer0", ""]), min_size=1,
                           max_size=6).map("/".join))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)
users = st.one_of(st.sampled_from(USERS), st.text(alphabet="0123456789+-:abrotx ", max_size=12), json_values)


@st.composite
def garbled(draw, data: bytes) -> bytes:
    """`data` truncated, with bytes flipped or inserted, or as it is."""
    operation = draw(st.sampled_from(["keep", "keep", "truncate", "flip", "insert"]))
    if operation == "keep" or not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    if operation == "truncate":
        return data[:at]
    if operation == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    return data[:at] + draw(st.binary(max_size=8)) + data[at:]


@st.composite
def manifests(draw) -> bytes:
    shape = draw(st.sampled_from(["docker", "docker", "random", "entries"]))
    if shape == "random":
        value = draw(json_values)
    elif shape == "entries":
        value = draw(st.lists(st.dictionaries(st.sampled_from(["Config", "Layers", "RepoTags", "LayerSources"]),
                                              json_values | names, max_size=4), max_size=3))
    else:
        value = [{"Config": draw(st.sampled_from(["c.json", "a.json", "blobs/sha256/aa"]) | names),
                  "RepoTags": draw(st.sampled_from([None, ["spinebench/evaluator:latest"], ["x:y", "z"]])),
                  "Layers": draw(st.lists(st.sampled_from(["layer0/layer.tar", "blobs/sha256/aa"]) | names,
                                          max_size=3))}]
    return draw(garbled(json.dumps(value).encode()))


@st.composite
def configs(draw) -> bytes:
    if draw(st.booleans()):
        value = draw(json_values)
    else:
        value = {"architecture": draw(st.sampled_from(["amd64", "amd64", "arm64"]) | json_values),
                 "os": draw(st.sampled_from(["linux", "linux", "windows"])),
                 "config": draw(st.sampled_from([None, "x"]) | st.fixed_dictionaries({"User": users}))}
    return draw(garbled(json.dumps(value).encode()))


@st.composite
def layers(draw) -> bytes:
    kind = draw(st.sampled_from(["passwd", "passwd", "garbage", "gzip"]))
    if kind == "garbage":
        return draw(st.binary(max_size=2048))
    lines = draw(st.lists(st.lists(st.text(alphabet="abcdefrotx0123456789+-: ", max_size=6), min_size=1,
                                   max_size=7).map(":".join), max_size=5))
    files = {"etc/passwd": "\n".join(lines + ["algorithm:x:1000:1000::/:/bin/sh"]).encode(),
             "etc/group": b"root:x:0:\nalgorithm:x:1000:\n"}
    if draw(st.booleans()):
        files["etc/.wh.passwd"] = b""
    data = layer_tar(files)
    return gzip.compress(data, compresslevel=1) if kind == "gzip" else data


def header(name: str, *, kind: str, size: int = 0, linkname: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.linkname = size, linkname
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                 "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "huge": tarfile.REGTYPE}[kind]
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def entry(name: str, data: bytes) -> bytes:
    return header(name, kind="file", size=len(data)) + data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


@st.composite
def consistent(draw) -> list[bytes]:
    """Members of a well-formed image (config maybe reached through a chain of links, OCI style) with a random
    USER and random /etc/passwd layers: the validator's deeper paths, up to a description."""
    user = draw(st.sampled_from(["1000:1000", "algorithm", "1000", "algorithm:algorithm"]) | users)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"User": user}}).encode()
    layer_names = [f"layer{index}/layer.tar" for index in range(draw(st.integers(0, 2)))]
    config_name = draw(st.sampled_from(["c.json", "cfg/link.json"]))
    tags = draw(st.sampled_from([None, ["spinebench/evaluator:latest"], ["a:b", "spinebench/baselines-cpu:latest"]]))
    manifest = json.dumps([{"Config": config_name, "RepoTags": tags, "Layers": layer_names}]).encode()
    blocks = [entry("manifest.json", draw(garbled(manifest)) if draw(st.integers(0, 4)) == 0 else manifest)]
    if config_name == "c.json":
        blocks.append(entry("c.json", config))
    else:  # cfg/link.json -> hop -> ... -> blobs/config, or a loop
        chain = ["cfg/link.json"] + [f"hops/{index}" for index in range(draw(st.integers(0, 20)))]
        loop_at = draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, len(chain) - 1)))
        for index, (source, target) in enumerate(zip(chain, chain[1:] + ["blobs/config"], strict=True)):
            target = "../cfg/link.json" if index == loop_at else "../" + target
            blocks.append(header(source, kind="sym", linkname=target))
        blocks.append(entry("blobs/config", config))
    blocks += [entry(name, draw(layers())) for name in layer_names]
    if draw(st.booleans()):
        blocks.append(entry("repositories", b'{"spinebench/evaluator": {"latest": "x"}}'))
    return blocks


@st.composite
def hostile(draw) -> list[bytes]:
    """Manifest, config and layers each drawn on their own (maybe garbled), then hostile extra members."""
    blocks = [entry("manifest.json", draw(manifests())), entry(draw(st.sampled_from(["c.json", "a.json"])),
                                                                draw(configs()))]
    blocks += [entry(draw(st.sampled_from(["layer0/layer.tar", "blobs/sha256/aa"])), draw(layers()))
               for _ in range(draw(st.integers(0, 2)))]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["file", "dir", "sym", "sym", "hard", "fifo", "chr", "huge"]))
        name = draw(names)
        if kind == "file":
            blocks.append(entry(name, draw(st.binary(max_size=256) | configs() | manifests())))
        elif kind == "huge":  # a header declaring far more data than follows: the archive ends inside it
            blocks.append(header(name, kind="huge", size=draw(st.integers(1 << 20, 1 << 40))) + b"x" * 100)
            break
        else:
            blocks.append(header(name, kind=kind, linkname=draw(names) if kind in ("sym", "hard") else ""))
    return blocks


@st.composite
def archives(draw) -> bytes:
    try:
        blocks = draw(consistent() if draw(st.booleans()) else hostile())
    except (ValueError, UnicodeError):
        reject()  # a name tarfile itself cannot write
    if draw(st.booleans()):
        blocks.append(b"\0" * (2 * tarfile.BLOCKSIZE))
    if draw(st.integers(0, 4)) == 0:
        blocks = draw(st.permutations(blocks))
    data = b"".join(blocks)
    return gzip.compress(data, compresslevel=1) if draw(st.booleans()) else data


def tree(root: Path) -> dict[str, tuple[int, float]]:
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime) for path in root.rglob("*")}


@settings(max_examples=80, deadline=timedelta(seconds=10), database=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=archives())
def test_hostile_archives_are_refused_or_described(data):
    with tempfile.TemporaryDirectory(prefix="sec-containers-fuzz-") as root:
        upload = Path(root) / "upload"
        upload.mkdir()
        path = upload / "image.tar"
        path.write_bytes(data)
        before = tree(Path(root))
        started = time.monotonic()
        tracemalloc.start()
        try:
            try:
                described = inspect_archive(path, max_image_bytes=MAX_IMAGE_BYTES)
            except ArchiveError as error:
                assert 0 < len(str(error)) < 1000
            else:
                assert described.uid > 0 and described.gid > 0
                assert described.image_id.startswith("sha256:") and len(described.image_id) == 71
                check_stream(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 64 << 20
        assert time.monotonic() - started < 10
        assert tree(Path(root)) == before


def check_stream(path: Path) -> None:
    """The stream the engine would load: a tar whose manifest names no tag and without `repositories`."""
    try:
        stream = b"".join(untagged_stream(path, max_image_bytes=MAX_IMAGE_BYTES))
    except ArchiveError:
        return  # e.g. a member's data is cut short: the load is refused as an archive problem
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as loaded:
        names = loaded.getnames()
        manifest = json.load(loaded.extractfile("manifest.json"))
    assert "repositories" not in names and names.count("manifest.json") == 1
    assert [entry["RepoTags"] for entry in manifest] == [None]
