"""Fuzzing the prediction-zip path (spinebench.uploads.zips.check_zip and extract_zip, Django-free): archives built
from hostile member names, link and device modes, flags, methods and sizes, then optionally damaged byte by byte or
truncated, plus raw bytes. Property: a clear ZipRefused or a sound result; extraction writes only regular files and
folders below its own destination and no more bytes than the limit; memory bounded. Examples per test are in the
test ids: structured 300, damaged 300, raw bytes 150 (750 in all)."""

from __future__ import annotations

import io
import stat
import struct
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spinebench.uploads.zips import ZipLimits, ZipRefused, check_zip, extract_zip

from .budget import bounded_memory, fuzz_settings, tree

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name")
LIMITS = ZipLimits(max_entries=20, max_total_bytes=64 * 1024)
name_parts = st.one_of(
    st.sampled_from(["case_1", "c2", "segmentation.nii.gz", "..", ".", "", "a" * 300, "\\evil", "C:", "x\x00y", "é"]),
    st.text(min_size=1, max_size=12),
)
benign_names = (
    st.lists(st.sampled_from(["case_1", "c2", "sub", "segmentation.nii.gz", "x.json"]), min_size=1, max_size=3)
    .map("/".join)
    .map(lambda name: name + "/" if name.endswith("sub") else name)
)
hostile_names = st.lists(name_parts, min_size=1, max_size=4).map("/".join).map(lambda name: name[:2000])
benign_modes = st.sampled_from([0, stat.S_IFREG | 0o644])
hostile_modes = st.sampled_from(
    [stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777, stat.S_IFIFO | 0o600, stat.S_IFCHR | 0o600]
)
payloads = st.one_of(st.binary(max_size=300), st.integers(0, 200_000).map(bytes))  # zeros: small when compressed
methods = st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])


@st.composite
def archives(draw) -> bytes:
    """Half the archives use only sound names and modes (so acceptance and extraction are exercised too); the
    others mix in hostile names, link/device modes, many entries and patched flags or methods."""
    hostile = draw(st.booleans())
    names, modes = (
        (st.one_of(benign_names, hostile_names), st.one_of(benign_modes, hostile_modes))
        if hostile
        else (benign_names, benign_modes)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for _ in range(draw(st.integers(0, 25) if hostile else st.integers(0, 6))):
            info = zipfile.ZipInfo(draw(names))
            info.external_attr = draw(modes) << 16
            info.compress_type = draw(methods)
            try:
                archive.writestr(info, draw(payloads))
            except (ValueError, UnicodeEncodeError):  # names zipfile itself cannot write
                continue
    data = buffer.getvalue()
    if hostile and data.startswith(b"PK\x03\x04") and draw(st.booleans()):  # flags/methods no writer produces
        patched = bytearray(data)
        local, central = patched.find(b"PK\x03\x04"), patched.find(b"PK\x01\x02")
        field, value = draw(st.sampled_from([(6, 1), (8, 99), (6, 8), (8, 12)]))  # encrypted, method 99, ...
        for offset in (local + field, central + field + 2):
            struct.pack_into("<H", patched, offset, value)
        data = bytes(patched)
    return data


@st.composite
def damaged(draw) -> bytes:
    data = bytearray(draw(archives()))
    for _ in range(draw(st.integers(1, 8))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if data and draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def check(data: bytes, tmp_path) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir(exist_ok=True)
    for old in sorted(sandbox.rglob("*"), reverse=True):
        old.rmdir() if old.is_dir() and not old.is_symlink() else old.unlink()
    destination = sandbox / "unpacked"
    destination.mkdir()
    try:
        names = check_zip(io.BytesIO(data), name="p.zip", limits=LIMITS)
    except ZipRefused as problem:
        assert str(problem).startswith("p.zip") and len(str(problem)) < 400
        names = None
    try:
        extract_zip(io.BytesIO(data), destination, name="p.zip", limits=LIMITS)
    except ZipRefused:
        assert names is None, "check_zip accepted an archive that extract_zip refused"
    else:
        assert names is not None and len(names) <= LIMITS.max_entries
    outside = {path for path in tree(sandbox) if not path.startswith("unpacked")}
    assert outside == {"unpacked"} or outside == set(), outside  # nothing written beside the destination
    written = 0
    for path in destination.rglob("*"):
        assert not path.is_symlink() and (path.is_file() or path.is_dir()), path
        written += path.stat().st_size if path.is_file() else 0
    assert written <= LIMITS.max_total_bytes


@pytest.mark.slow  # 300 generated zips
def test_structured_zips_300(tmp_path):
    @fuzz_settings(300)
    @given(data=archives())
    def run(data):
        check(data, tmp_path)

    with bounded_memory():
        run()


@pytest.mark.slow  # 300 damaged zips
def test_damaged_zips_300(tmp_path):
    @fuzz_settings(300)
    @given(data=damaged())
    def run(data):
        check(data, tmp_path)

    with bounded_memory():
        run()


def test_raw_bytes_150(tmp_path):
    @fuzz_settings(150)
    @given(data=st.one_of(st.binary(max_size=600), st.binary(max_size=60).map(lambda tail: b"PK\x05\x06" + tail)))
    def run(data):
        check(data, tmp_path)

    with bounded_memory():
        run()
