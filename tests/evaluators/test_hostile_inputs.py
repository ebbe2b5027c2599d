"""Regression tests of issue #16 (H3 decompression bombs, the Low items on numbers and quoted input) and #18 item 6
(CSV line numbers): each reproduces what a hostile or merely unusual file did to the evaluators on commit b6644e4."""

import gzip
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from evaluators import formats
from evaluators.errors import PredictionError
from evaluators.imageheader import HeaderError, read_nifti_header
from evaluators.tasks import evaluate

from .conftest import image

CASES = ("c1", "c2")


@pytest.fixture
def aasce(make_dataset):
    return make_dataset("aasce-cobb", {case: [30.0, 20.0, 10.0] for case in CASES})


def load(task, content, tmp_path, *, case_ids=CASES, name="p.csv"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return formats.load_predictions(task, path, case_ids=case_ids)


# ------------------------------------------------------------------------- #18 item 6: the right physical line


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("case_id,pt,mt,tl\nc1,1,2,3\n\nc2,1,x,3\n", 4),  # a blank line before the bad row
        ("case_id,pt,mt,tl\n\n\n\nc1,1,2,3\n\nc2,1,x,3\n", 7),  # several blank lines
        ("case_id,pt,mt,tl\r\nc1,1,2,3\r\n\r\nc2,1,x,3\r\n", 4),  # CRLF
        ("\ufeffcase_id,pt,mt,tl\nc1,1,2,3\nc2,1,x,3\n", 3),  # a byte-order mark
        ('case_id,pt,mt,tl\n"c1",1,2,"3\n"\nc2,1,x,3\n', 4),  # a quoted field holding a newline
        ('case_id,pt,mt,tl\n"c1",1,2,"3\n\n\n"\r\nc2,1,x,3\n', 6),  # ... several, then CRLF
        ("\n\ncase_id,pt,mt,tl\nc1,1,2,3\nc2,1,x,3\n", 5),  # blank lines before the header
        ("case_id,pt,mt,tl\n  \nc1,1,2,3\nc2,1,x,3\n", 4),  # a line of spaces counts as blank
    ],
    ids=["blank", "blanks", "crlf", "bom", "quoted-newline", "quoted-newlines-crlf", "leading-blanks", "spaces"],
)
def test_messages_name_the_physical_line(aasce, tmp_path, content, line):
    with pytest.raises(PredictionError, match=rf"^p\.csv line {line}: mt 'x' is not a number$"):
        load("aasce-cobb", content, tmp_path)


def test_duplicate_and_range_messages_name_the_physical_line_too(make_dataset, tmp_path):
    make_dataset("fracture-ct", {"c1": {"L1": 0}, "c2": {"L1": 1}})
    content = 'case_id,vertebra,probability\n\n"c1",L1,0.5\n"c2",\nL1,0.5\n'
    with pytest.raises(PredictionError, match=r"p\.csv line 4: 2 fields, but the header has 3"):
        load("fracture-ct", content, tmp_path)
    content = "case_id,vertebra,probability\r\n\r\nc1,L1,0.5\r\n\r\nc1,L1,0.25\r\n"
    with pytest.raises(PredictionError, match=r"p\.csv line 5: duplicate vertebra L1 for case 'c1'"):
        load("fracture-ct", content, tmp_path)
    content = "case_id,vertebra,probability\n\nc1,L1,0.5\n\nc2,L1,1.5\n"
    with pytest.raises(PredictionError, match=r"p\.csv line 5: probability must lie in \[0, 1\], got '1.5'"):
        load("fracture-ct", content, tmp_path)


def test_blank_lines_crlf_and_bom_still_load(aasce, tmp_path):
    content = "\ufeffcase_id , PT,mt,tl\r\n\r\nc1, 1,2,3\r\n\r\n c2,4,5,6,\r\n"  # a trailing empty field is fine
    loaded = load("aasce-cobb", content, tmp_path)
    np.testing.assert_array_equal(loaded["c2"]["angles"], [4.0, 5.0, 6.0])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("case_id,pt,mt,tl,pt\nc1,1,2,3,4\n", "column(s) pt appear more than once in the header"),
        ("case_id,pt,mt,tl\nc1,1,2\n", "p.csv line 2: 3 fields, but the header has 4"),
        ("case_id,pt,mt,tl\nc1,1,2,3,9\n", "p.csv line 2: 5 fields, but the header has 4"),
        ("\n\n  \n", "the file has no rows"),
        ('case_id,pt,mt,tl\nc1,1,2,"3\n', "p.csv line 2: not a readable CSV row"),
    ],
)
def test_shape_problems_are_clear(aasce, tmp_path, content, message):
    with pytest.raises(PredictionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load("aasce-cobb", content, tmp_path)


# ------------------------------------------------------------------------------------------ Low: numbers


TASK_ROWS = {
    "aasce-cobb": ("case_id,pt,mt,tl", "{case},{value},2,3", "pt"),
    "fracture-ct": ("case_id,vertebra,probability", "{case},L1,{value}", "probability"),
    "vertebra-labelling-xr": ("case_id,vertebra,x,y", "{case},L1,{value},2", "x"),
}


@pytest.fixture
def task_dataset(make_dataset):
    def build(task):
        if task == "aasce-cobb":
            return make_dataset(task, {case: [30.0, 20.0, 10.0] for case in CASES})
        if task == "fracture-ct":
            return make_dataset(task, {"c1": {"L1": 0}, "c2": {"L1": 1}})
        return make_dataset(task, {case: ({"L1": [1.0, 2.0]}, "ap") for case in CASES})

    return build


@pytest.mark.parametrize("task", list(TASK_ROWS))
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1_0", "'1_0' is not a plain decimal number; write it with the digits 0-9"),
        ("\u0661\u0660", "'١٠' is not a plain decimal number"),  # Arabic-Indic 1, 0
        ("\u0967", "'१' is not a plain decimal number"),  # Devanagari 1
        ("0x10", "'0x10' is not a number"),
        ("1e999", "must be a finite number, got '1e999'"),
        ("-nan", "must be a finite number, got '-nan'"),
    ],
    ids=["underscore", "arabic-indic", "devanagari", "hex", "overflow", "nan"],
)
def test_unusual_numbers_get_a_clear_message_for_every_csv_task(task_dataset, tmp_path, task, value, message):
    """On b6644e4 pandas refused these but float() accepted them, so no message was raised at the first check and
    a misleading one (or, for the labelling task, a traceback) came later."""
    dataset = task_dataset(task)
    header, row, column = TASK_ROWS[task]
    rows = [header, row.format(case="c1", value="0.5"), row.format(case="c2", value=value)]
    path = tmp_path / "p.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(PredictionError, match=rf"^p\.csv line 3: {column} .*") as raised:
        evaluate(task, predictions=path, ground_truth=dataset)
    assert message in str(raised.value)


def test_json_numbers_are_checked_the_same_way(make_dataset, tmp_path):
    make_dataset("vertebra-labelling-xr", {"c1": ({"L1": [1.0, 2.0]}, "ap")})
    case = tmp_path / "pred" / "c1"
    case.mkdir(parents=True)
    for value, message in (
        ('"1_0"', "is not a plain decimal number"),
        ("true", "True' is not a number"),
        ("1" + "0" * 400, "must be a finite number"),
        ("1" + "0" * 5000, "not usable JSON"),
        ("[" * 100_000 + "]" * 100_000, "not usable JSON"),
    ):
        text = f'{{"centroids": {{"L1": [{value}, 2]}}}}' if not value.startswith("[[") else value
        (case / "centroids.json").write_text(text)
        with pytest.raises(PredictionError, match=message):
            formats.load_predictions("vertebra-labelling-xr", tmp_path / "pred", case_ids=["c1"])


# ------------------------------------------------------------------------------ Low: capped quoted input


@pytest.mark.parametrize(
    ("row", "column"),
    [("c1,{big},2,3", "pt"), ("{big},1,2,3", "case id")],
)
def test_quoted_input_is_capped(aasce, tmp_path, row, column):
    big = "9" * 50 + "x" * 100_000  # the probe's 900 KB value, smaller
    content = "case_id,pt,mt,tl\n" + row.format(big=big) + "\n"
    with pytest.raises(PredictionError) as raised:
        load("aasce-cobb", content, tmp_path)
    message = str(raised.value)
    assert len(message) < 300 and "…" in message, message


def test_oversized_fields_and_vertebra_names_are_capped(make_dataset, tmp_path):
    make_dataset("fracture-ct", {"c1": {"L1": 0}})
    content = "case_id,vertebra,probability\nc1," + "L" * 200_000 + ",0.5\n"
    with pytest.raises(PredictionError, match=r"line 2: not a readable CSV row") as raised:
        load("fracture-ct", content, tmp_path, case_ids=["c1"])
    assert len(str(raised.value)) < 300
    content = "case_id,vertebra,probability\nc1," + "Q" * 5000 + ",0.5\n"
    with pytest.raises(PredictionError, match=r"unknown vertebra 'QQQ") as raised:
        load("fracture-ct", content, tmp_path, case_ids=["c1"])
    assert len(str(raised.value)) < 300


# ----------------------------------------------------------------------------------- H3: decompression bombs


def bomb_nifti(path, size=(1024, 1024, 512)):
    """A valid small NIfTI whose header is rewritten to declare `size` (uint8): a few hundred bytes on disk that
    would make a reader allocate size voxels."""
    small = path.with_name("small.nii")
    sitk.WriteImage(sitk.Image(4, 4, 4, sitk.sitkUInt8), str(small))
    header = bytearray(small.read_bytes())
    struct.pack_into("<8h", header, 40, 3, *size, 1, 1, 1, 1)
    path.write_bytes(gzip.compress(bytes(header)))
    return path


@pytest.fixture
def segmentation_case(tmp_path):
    reference = image(np.zeros((8, 9, 10), dtype=np.uint8))
    folder = tmp_path / "pred" / "m1"
    folder.mkdir(parents=True)
    return reference, folder


def test_a_bomb_is_refused_from_its_header_before_any_voxel_is_read(segmentation_case, monkeypatch):
    reference, folder = segmentation_case
    path = bomb_nifti(folder / "segmentation.nii.gz")
    assert path.stat().st_size < 2000

    def never(*args, **kwargs):
        raise AssertionError("the voxels were read before the header was checked")

    monkeypatch.setattr(sitk, "ReadImage", never)
    with pytest.raises(
        PredictionError,
        match=r"size \(1024, 1024, 512\) differs from the input image's \(10, 9, 8\) "
        r"\(536870912 voxels against 720; refused from the header",
    ):
        formats.read_segmentation(path, case_id="m1", reference=reference, allowed_labels=(0, 1))


def test_same_voxel_count_other_bytes_or_components_is_refused(segmentation_case):
    reference, folder = segmentation_case
    vector = sitk.Compose([image(np.zeros((8, 9, 10), dtype=np.uint8))] * 3)
    sitk.WriteImage(vector, str(folder / "segmentation.nii.gz"))
    with pytest.raises(PredictionError, match="expected a scalar label map, got 3 components per voxel"):
        formats.read_segmentation(
            folder / "segmentation.nii.gz", case_id="m1", reference=reference, allowed_labels=(0, 1)
        )
    sitk.WriteImage(
        image(np.zeros((8, 9, 10), dtype=np.complex128).real.astype(np.float64)), str(folder / "segmentation.mha")
    )
    (folder / "segmentation.nii.gz").unlink()
    array = formats.read_segmentation(
        folder / "segmentation.mha", case_id="m1", reference=reference, allowed_labels=(0, 1)
    )
    assert array.shape == (8, 9, 10)  # float64 is the largest accepted scalar


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lambda h: struct.pack_into("<i", h, 0, 123), "sizeof_hdr is neither 348 nor 540"),
        (lambda h: struct.pack_into("<h", h, 40, 9), r"dim\[0\] = 9"),
        (lambda h: struct.pack_into("<h", h, 42, -4), "must all be at least 1"),
        (lambda h: struct.pack_into("<h", h, 70, 999), "unknown datatype code 999"),
        (lambda h: struct.pack_into("<h", h, 72, 64), "bitpix 64 does not match datatype 2"),
        (lambda h: h.__setitem__(slice(344, 348), b"xyz\0"), "magic"),
    ],
)
def test_nifti_header_fields_are_checked(tmp_path, patch, message):
    path = tmp_path / "s.nii"
    sitk.WriteImage(sitk.Image(4, 4, 4, sitk.sitkUInt8), str(path))
    header = bytearray(path.read_bytes())
    patch(header)
    path.write_bytes(bytes(header))
    with pytest.raises(HeaderError, match=message):
        read_nifti_header(path)


def test_big_endian_and_gzip_headers_read(tmp_path):
    path = tmp_path / "s.nii.gz"
    sitk.WriteImage(sitk.Image(5, 6, 7, sitk.sitkInt16), str(path))
    header = read_nifti_header(path)
    assert header.size == (5, 6, 7) and header.bytes_per_component == 2 and header.components == 1
    raw = bytearray(gzip.decompress(path.read_bytes())[:348])
    swapped = bytearray(raw)
    struct.pack_into(">i", swapped, 0, 348)
    struct.pack_into(">8h", swapped, 40, *struct.unpack_from("<8h", raw, 40))
    struct.pack_into(">2h", swapped, 70, *struct.unpack_from("<2h", raw, 70))
    (tmp_path / "b.nii").write_bytes(bytes(swapped))
    assert read_nifti_header(tmp_path / "b.nii").size == (5, 6, 7)


def test_linked_prediction_files_are_not_followed(segmentation_case, tmp_path):
    reference, folder = segmentation_case
    target = tmp_path / "elsewhere.nii.gz"
    sitk.WriteImage(reference, str(target))
    (folder / "segmentation.nii.gz").symlink_to(target)
    with pytest.raises(PredictionError, match="is a symbolic link"):
        formats.load_predictions("metastatic-body-ct", folder.parent, case_ids=["m1"])


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_a_header_naming_another_file_is_refused(segmentation_case, tmp_path, suffix):
    """MetaImage `ElementDataFile = /path` and NRRD `data file:` would make the server read a file of the attacker's
    choosing as the prediction; on b6644e4 its byte values came back in 'unexpected label value(s) [...]'."""
    reference, folder = segmentation_case
    secret = tmp_path / "secret.raw"
    secret.write_bytes(bytes([7, 9, 42]) * 240)  # 720 bytes: exactly the reference grid as uint8
    if suffix == ".mha":
        header = (
            "ObjectType = Image\nNDims = 3\nBinaryData = True\nDimSize = 10 9 8\nElementType = MET_UCHAR\n"
            f"ElementDataFile = {secret}\n"
        )
    else:
        header = f"NRRD0004\ntype: unsigned char\ndimension: 3\nsizes: 10 9 8\nencoding: raw\ndata file: {secret}\n\n"
    path = folder / f"segmentation{suffix}"
    path.write_text(header)
    with pytest.raises(PredictionError, match="names a separate data file") as raised:
        formats.read_segmentation(path, case_id="m1", reference=reference, allowed_labels=(0, 1))
    assert "42" not in str(raised.value)
    sitk.WriteImage(reference, str(path))  # the same format with its voxels inside is read
    assert formats.read_segmentation(path, case_id="m1", reference=reference, allowed_labels=(0, 1)).shape == (8, 9, 10)


CRASH_PROBE = """
import sys, numpy as np, SimpleITK as sitk
from evaluators import formats
reference = sitk.GetImageFromArray(np.zeros((8, 9, 10), dtype=np.uint8))
try:
    formats.read_segmentation(sys.argv[1], case_id="m1", reference=reference, allowed_labels=(0, 1))
except formats.PredictionError as error:
    print("refused:", error)
"""


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("NDims = -1\nDimSize = 10 9 8\nElementType = MET_UCHAR\n", "NDims '-1' must hold 1 numbers of at least 1"),
        (
            "NDims = 3\nDimSize = 10 9 8\nElementType = MET_UCHAR\nElementNumberOfChannels = -2\n",
            "ElementNumberOfChannels",
        ),
        ("NDims = 3\nDimSize = 10 9\nElementType = MET_UCHAR\n", "DimSize '10 9' must hold 3 numbers"),
        ("NDims = 3\nDimSize = 10 9 8\nElementType = MET_NONE\n", "unknown ElementType 'MET_NONE'"),
        (
            "NDims = 3\nDimSize = 10 9 8\nElementType = MET_UCHAR\nHeaderSize = -7\n",
            "HeaderSize = -7 must be at least -1",
        ),
    ],
    ids=["ndims-minus-one", "channels", "dimsize", "element-type", "header-size"],
)
def test_metaimage_fields_that_hang_or_crash_itk_are_refused_first(tmp_path, fields, message):
    """On b6644e4 a 200-byte segmentation.mha with `NDims = -1` made SimpleITK's reader hang or crash the scoring
    process (a segmentation fault: the worker dies, the message is redelivered, the next worker dies too). Run in a
    child process so a regression fails this test instead of killing the test session."""
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "segmentation.mha"
    path.write_bytes(f"ObjectType = Image\n{fields}ElementDataFile = LOCAL\n".encode() + bytes(720))
    root = Path(__file__).resolve().parents[2]
    probe = subprocess.run(
        [sys.executable, "-c", CRASH_PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.startswith("refused:") and message in probe.stdout, probe.stdout
