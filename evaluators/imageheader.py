"""Reading an image's header — grid size, components, bytes per voxel — without reading its voxels, so a
prediction can be refused before a decompression bomb is unpacked (a 1 MiB .nii.gz can declare 512 M voxels).

NIfTI-1 and NIfTI-2 headers (.nii, .nii.gz) are parsed here from their first bytes (gzip is read incrementally, only
as far as the header): every field is checked before anything trusts it, so a hostile header never reaches ITK's
reader. MetaImage and NRRD headers are text and are read by SimpleITK's header-only `ReadImageInformation`, after a
check that they keep their voxels in the file itself: both formats may name a separate data file (`ElementDataFile =
/any/path`, NRRD `data file:`), which would make the server read a file of its own choosing as the prediction and
quote its values back in an error message.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

NIFTI1_SIZE, NIFTI2_SIZE = 348, 540
#: NIfTI datatype code -> (bytes per component, components per voxel)
NIFTI_DATATYPES = {
    2: (1, 1), 4: (2, 1), 8: (4, 1), 16: (4, 1), 32: (4, 2), 64: (8, 1), 128: (1, 3), 256: (1, 1), 512: (2, 1),
    768: (4, 1), 1024: (8, 1), 1280: (8, 1), 1536: (16, 1), 1792: (8, 2), 2048: (16, 2), 2304: (1, 4),
}
MAX_DIMENSIONS = 7
TEXT_HEADER_MAX_BYTES = 64 * 1024


class HeaderError(ValueError):
    """The header is unreadable or describes no sensible image; the message says which field."""


@dataclass(frozen=True)
class ImageHeader:
    size: tuple[int, ...]  # voxels per axis, x first (SimpleITK order)
    components: int
    bytes_per_component: int

    @property
    def voxels(self) -> int:
        return math.prod(self.size)

    @property
    def data_bytes(self) -> int:
        return self.voxels * self.components * self.bytes_per_component


def _head(path: Path, count: int) -> bytes:
    with path.open("rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as stream:
                return stream.read(count)
        except (OSError, EOFError, zlib.error) as problem:
            raise HeaderError(f"damaged gzip data ({problem})") from None
    with path.open("rb") as raw:
        return raw.read(count)


def read_nifti_header(path) -> ImageHeader:
    """The grid of a NIfTI-1/-2 file from its header alone; HeaderError names the first field that makes no sense."""
    head = _head(Path(path), NIFTI2_SIZE)
    if len(head) < NIFTI1_SIZE:
        raise HeaderError(f"{len(head)} bytes is too short for a NIfTI header")
    for order in "<>":
        sizeof_hdr = struct.unpack_from(f"{order}i", head)[0]
        if sizeof_hdr == NIFTI1_SIZE:
            dims = struct.unpack_from(f"{order}8h", head, 40)
            datatype, bitpix = struct.unpack_from(f"{order}2h", head, 70)
            magic = head[344:348]
            break
        if sizeof_hdr == NIFTI2_SIZE and len(head) >= NIFTI2_SIZE:
            datatype, bitpix = struct.unpack_from(f"{order}2h", head, 12)
            dims = struct.unpack_from(f"{order}8q", head, 16)
            magic = head[4:8]
            break
    else:
        raise HeaderError("not a NIfTI header (sizeof_hdr is neither 348 nor 540)")
    if magic[:3] not in (b"n+1", b"ni1", b"n+2", b"ni2"):
        raise HeaderError(f"not a NIfTI header (magic {magic!r})")
    rank = dims[0]
    if not 1 <= rank <= MAX_DIMENSIONS:
        raise HeaderError(f"dim[0] = {rank}; expected 1 to {MAX_DIMENSIONS} dimensions")
    extents = tuple(int(value) for value in dims[1 : rank + 1])
    if any(value < 1 for value in extents):
        raise HeaderError(f"dimensions {extents} must all be at least 1")
    if datatype not in NIFTI_DATATYPES:
        raise HeaderError(f"unknown datatype code {datatype}")
    width, components = NIFTI_DATATYPES[datatype]
    if bitpix != 8 * width * components:
        raise HeaderError(f"bitpix {bitpix} does not match datatype {datatype}")
    # NIfTI axes: 1-3 space, 4 time, 5 and up the components of a vector voxel (as ITK reads them).
    size = extents[:3] + tuple(value for value in extents[3:4] if value > 1)
    components *= math.prod(extents[4:])
    return ImageHeader(size=size, components=components, bytes_per_component=width)


def check_self_contained(path) -> None:
    """Refuse a MetaImage or NRRD header that names a separate data file (see the module docstring)."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(TEXT_HEADER_MAX_BYTES)
    if path.name.endswith(".mha"):
        for line in head.split(b"\n"):
            key, _, value = line.partition(b"=")
            if key.strip() == b"ElementDataFile":
                if value.strip() != b"LOCAL":
                    raise HeaderError("the header names a separate data file (ElementDataFile); keep the voxels in "
                                      "the .mha file (ElementDataFile = LOCAL)")
                return
        raise HeaderError(f"no 'ElementDataFile = LOCAL' line in the first {TEXT_HEADER_MAX_BYTES} bytes")
    if not head.startswith(b"NRRD"):
        raise HeaderError("not a NRRD header (it must start with 'NRRD')")
    for line in head.split(b"\n")[1:]:
        if not line.strip():
            return  # the blank line that ends the header
        key = line.split(b":", 1)[0].strip().lower()
        if key in (b"data file", b"datafile") and not line.startswith(b"#"):
            raise HeaderError("the header names a separate data file ('data file:'); keep the voxels in the .nrrd file")
    raise HeaderError(f"the header does not end within its first {TEXT_HEADER_MAX_BYTES} bytes")


def read_image_header(path) -> ImageHeader:
    """The grid of any supported image file (.nii, .nii.gz, .mha, .nrrd) without reading its voxels."""
    path = Path(path)
    if path.name.endswith((".nii", ".nii.gz")):
        return read_nifti_header(path)
    check_self_contained(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise HeaderError("the image header could not be read") from None
    width = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    bytes_per_component = {"8": 1, "16": 2, "32": 4, "64": 8}.get("".join(ch for ch in width if ch.isdigit()) or "64", 8)
    return ImageHeader(
        size=tuple(int(value) for value in reader.GetSize()),
        components=int(reader.GetNumberOfComponents()),
        bytes_per_component=bytes_per_component,
    )
