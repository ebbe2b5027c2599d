"""Fuzzing NIfTI headers on the segmentation path (evaluators.imageheader and formats.read_segmentation): a valid
label map whose header fields (dims, datatype, bitpix, vox_offset, magic, sizeof_hdr, scaling) are set to hostile
values or whose first bytes are damaged, stored raw or gzipped. Property: a clear PredictionError or an array on the
reference grid, never another exception, never more memory than a few volumes. Examples in the test ids: fields 300,
damaged bytes 200, MetaImage headers 150 (650 in all)."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given
from hypothesis import strategies as st

from evaluators import formats
from evaluators.errors import PredictionError

from .budget import bounded_memory, fuzz_settings

SHAPE = (6, 7, 8)  # numpy order z, y, x


@pytest.fixture(scope="module")
def valid_nifti(tmp_path_factory) -> tuple[bytes, sitk.Image]:
    folder = tmp_path_factory.mktemp("nifti")
    reference = sitk.GetImageFromArray(np.zeros(SHAPE, dtype=np.uint8))
    label_map = sitk.GetImageFromArray((np.arange(np.prod(SHAPE)).reshape(SHAPE) % 2).astype(np.uint8))
    sitk.WriteImage(label_map, str(folder / "s.nii"))
    return (folder / "s.nii").read_bytes(), reference


small_or_huge = st.one_of(st.integers(-3, 12), st.sampled_from([0, 1, 255, 1024, 32767, -32768]))
FIELDS = {  # offset, struct format, values
    "dims": (40, "<8h", st.lists(small_or_huge, min_size=8, max_size=8)),
    "datatype": (70, "<h", st.sampled_from([0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 2048, 2304, 999, -1])),
    "bitpix": (72, "<h", st.sampled_from([0, 1, 8, 16, 24, 32, 64, 128, -8])),
    "vox_offset": (108, "<f", st.sampled_from([0.0, 352.0, 351.0, 1e9, -1.0, float("nan"), float("inf"), 400.0])),
    "scl_slope": (112, "<f", st.sampled_from([0.0, 1.0, -1.0, 1e38, float("nan"), float("inf")])),
    "sizeof_hdr": (0, "<i", st.sampled_from([348, 540, 0, -348, 1 << 24])),
    "magic": (344, "4s", st.sampled_from([b"n+1\0", b"ni1\0", b"n+2\0", b"\0\0\0\0", b"n+1x"])),
    "qform_code": (252, "<h", st.integers(-5, 5)),
    "pixdim": (
        76,
        "<8f",
        st.lists(st.sampled_from([0.0, 1.0, -1.0, 1e-30, 1e30, float("nan")]), min_size=8, max_size=8),
    ),
}


def check(content: bytes, reference: sitk.Image, tmp_path, compress: bool) -> None:
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    path = folder / ("segmentation.nii.gz" if compress else "segmentation.nii")
    for old in folder.iterdir():
        old.unlink()
    path.write_bytes(gzip.compress(content, compresslevel=1) if compress else content)
    try:
        array = formats.read_segmentation(path, case_id="case", reference=reference, allowed_labels=(0, 1))
    except PredictionError as error:
        assert str(error).startswith("case/segmentation.nii") and len(str(error)) < 600, str(error)
    else:
        assert array.shape == SHAPE and set(np.unique(array)) <= {0, 1}


def test_header_fields_300(valid_nifti, tmp_path):
    content, reference = valid_nifti

    @fuzz_settings(300)
    @given(
        changes=st.dictionaries(st.sampled_from(sorted(FIELDS)), st.just(None), min_size=1, max_size=4),
        data=st.data(),
        compress=st.booleans(),
    )
    def run(changes, data, compress):
        header = bytearray(content)
        for field in changes:
            offset, layout, values = FIELDS[field]
            value = data.draw(values, label=field)
            struct.pack_into(layout, header, offset, *(value if isinstance(value, list) else [value]))
        check(bytes(header), reference, tmp_path, compress)

    with bounded_memory():
        run()


def test_damaged_bytes_200(valid_nifti, tmp_path):
    content, reference = valid_nifti

    @fuzz_settings(200)
    @given(
        edits=st.lists(st.tuples(st.integers(0, 351), st.integers(0, 255)), min_size=1, max_size=12),
        cut=st.one_of(st.none(), st.integers(0, len(valid_nifti[0]))),
        compress=st.booleans(),
    )
    def run(edits, cut, compress):
        damaged = bytearray(content)
        for position, value in edits:
            damaged[position] = value
        check(bytes(damaged[:cut] if cut is not None else damaged), reference, tmp_path, compress)

    with bounded_memory():
        run()


MHA_LINES = {
    "NDims": st.sampled_from(["3", "2", "4", "0", "-1", "99", "x"]),
    "DimSize": st.sampled_from(["8 7 6", "6 7 8", "8 7 6 1", "1000000 1000000 1000000", "0 7 6", "-8 7 6", "8 7"]),
    "ElementType": st.sampled_from(["MET_UCHAR", "MET_DOUBLE", "MET_FLOAT_ARRAY", "MET_NONE", "MET_LONG_LONG", "?"]),
    "ElementNumberOfChannels": st.sampled_from(["1", "3", "100000000", "0", "-2"]),
    "HeaderSize": st.sampled_from(["0", "-1", "100000", "4"]),
    "CompressedData": st.sampled_from(["True", "False"]),
    "CompressedDataSize": st.sampled_from(["0", "10", "99999999"]),
    "BinaryDataByteOrderMSB": st.sampled_from(["True", "False"]),
    "ElementSpacing": st.sampled_from(["1 1 1", "0 0 0", "nan nan nan", "-1 1 1"]),
    "ElementDataFile": st.sampled_from(["LOCAL", "LOCAL", "LOCAL", "/etc/passwd", "LIST", "x%03d.raw 1 3 1"]),
}


def test_metaimage_headers_150(valid_nifti, tmp_path):
    """MetaImage text headers with hostile fields and a voxel payload of random length."""
    _, reference = valid_nifti

    @fuzz_settings(150)
    @given(
        fields=st.fixed_dictionaries({}, optional=MHA_LINES), payload=st.binary(max_size=700), zeros=st.integers(0, 400)
    )
    def run(fields, payload, zeros):
        lines = [
            "ObjectType = Image",
            *[f"{key} = {value}" for key, value in fields.items() if key != "ElementDataFile"],
        ]
        lines.append(f"ElementDataFile = {fields.get('ElementDataFile', 'LOCAL')}")
        content = ("\n".join(lines) + "\n").encode() + payload + bytes(zeros)
        folder = tmp_path / "mha"
        folder.mkdir(exist_ok=True)
        path = folder / "segmentation.mha"
        path.write_bytes(content)
        try:
            array = formats.read_segmentation(path, case_id="case", reference=reference, allowed_labels=(0, 1))
        except PredictionError as error:
            assert str(error).startswith("case/segmentation.mha") and len(str(error)) < 600, str(error)
        else:
            assert array.shape == SHAPE

    with bounded_memory():
        run()
