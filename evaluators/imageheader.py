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


def read_nifti_header(path: str | Path) -> ImageHeader:
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


METAIMAGE_TYPES = {  # ElementType -> bytes per component
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4, "MET_LONG": 4,
    "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8,
}
NRRD_TYPES = {  # type -> bytes per component
    "signed char": 1, "int8": 1, "int8_t": 1, "uchar": 1, "unsigned char": 1, "uint8": 1, "uint8_t": 1,
    "short": 2, "short int": 2, "signed short": 2, "signed short int": 2, "int16": 2, "int16_t": 2, "ushort": 2,
    "unsigned short": 2, "unsigned short int": 2, "uint16": 2, "uint16_t": 2, "int": 4, "signed int": 4, "int32": 4,
    "int32_t": 4, "uint": 4, "unsigned int": 4, "uint32": 4, "uint32_t": 4, "longlong": 8, "long long": 8,
    "long long int": 8, "signed long long": 8, "signed long long int": 8, "int64": 8, "int64_t": 8, "ulonglong": 8,
    "unsigned long long": 8, "unsigned long long int": 8, "uint64": 8, "uint64_t": 8, "float": 4, "double": 8,
}
NRRD_ENCODINGS = {"raw", "gzip", "gz", "bzip2", "bz2", "ascii", "text", "txt"}


def _text_header(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(TEXT_HEADER_MAX_BYTES)


def _positive_ints(text: str, *, field: str, count: int | None = None) -> tuple[int, ...]:
    try:
        values = tuple(int(value) for value in text.split())
    except ValueError:
        raise HeaderError(f"{field} {text[:40]!r} is not a list of whole numbers") from None
    if not values or any(value < 1 for value in values) or (count is not None and len(values) != count):
        raise HeaderError(f"{field} {text[:40]!r} must hold {count or 'some'} numbers of at least 1")
    return values


def read_metaimage_header(path: str | Path) -> ImageHeader:
    """The grid of a MetaImage (.mha) from its text header, every field checked (ITK's own reader hangs on some,
    e.g. `NDims = -1`), and only with its voxels in the file itself (`ElementDataFile = LOCAL`)."""
    fields: dict[str, str] = {}
    for line in _text_header(Path(path)).split(b"\n"):
        key, separator, value = line.decode("latin-1").partition("=")
        if not line.strip():
            continue
        if not separator:
            raise HeaderError("a header line without '=' before ElementDataFile")
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            break
    else:
        raise HeaderError(f"no 'ElementDataFile = LOCAL' line in the first {TEXT_HEADER_MAX_BYTES} bytes")
    if fields["ElementDataFile"] != "LOCAL":
        raise HeaderError("the header names a separate data file (ElementDataFile); keep the voxels in the .mha file "
                          "(ElementDataFile = LOCAL)")
    rank = _positive_ints(fields.get("NDims", ""), field="NDims", count=1)[0]
    if rank > MAX_DIMENSIONS:
        raise HeaderError(f"NDims = {rank}; expected 1 to {MAX_DIMENSIONS} dimensions")
    size = _positive_ints(fields.get("DimSize", ""), field="DimSize", count=rank)
    if fields.get("ElementType") not in METAIMAGE_TYPES:
        raise HeaderError(f"unknown ElementType {fields.get('ElementType', '')[:40]!r}")
    channels = _positive_ints(fields.get("ElementNumberOfChannels", "1"), field="ElementNumberOfChannels", count=1)[0]
    for field, smallest in (("HeaderSize", -1), ("CompressedDataSize", 0)):  # HeaderSize -1: data at the end
        try:
            number = int(fields.get(field, "0"))
        except ValueError:
            raise HeaderError(f"{field} {fields[field][:40]!r} is not a whole number") from None
        if number < smallest:
            raise HeaderError(f"{field} = {number} must be at least {smallest}")
    return ImageHeader(size=size, components=channels, bytes_per_component=METAIMAGE_TYPES[fields["ElementType"]])


def read_nrrd_header(path: str | Path) -> ImageHeader:
    """The grid of a NRRD file from its text header (fields checked as for MetaImage); detached data refused."""
    lines = _text_header(Path(path)).split(b"\n")
    if not lines[0].startswith(b"NRRD"):
        raise HeaderError("not a NRRD header (it must start with 'NRRD')")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        text = line.decode("latin-1").rstrip("\r")
        if not text.strip():
            break
        if text.startswith("#") or ":=" in text:
            continue
        key, separator, value = text.partition(":")
        if not separator:
            raise HeaderError(f"header line {text[:40]!r} has no ':'")
        fields[key.strip().lower()] = value.strip()
    else:
        raise HeaderError(f"the header does not end within its first {TEXT_HEADER_MAX_BYTES} bytes")
    if "data file" in fields or "datafile" in fields:
        raise HeaderError("the header names a separate data file ('data file:'); keep the voxels in the .nrrd file")
    rank = _positive_ints(fields.get("dimension", ""), field="dimension", count=1)[0]
    if rank > MAX_DIMENSIONS:
        raise HeaderError(f"dimension {rank}; expected 1 to {MAX_DIMENSIONS}")
    size = _positive_ints(fields.get("sizes", ""), field="sizes", count=rank)
    kind = " ".join(fields.get("type", "").split())
    if kind not in NRRD_TYPES:
        raise HeaderError(f"unknown type {kind[:40]!r}")
    if fields.get("encoding") not in NRRD_ENCODINGS:
        raise HeaderError(f"unsupported encoding {fields.get('encoding', '')[:40]!r}")
    return ImageHeader(size=size, components=1, bytes_per_component=NRRD_TYPES[kind])


def read_image_header(path: str | Path) -> ImageHeader:
    """The grid of any supported image file (.nii, .nii.gz, .mha, .nrrd) from its header alone, every field checked
    here before ITK's reader sees the file; ITK's header-only read must then agree."""
    path = Path(path)
    if path.name.endswith((".nii", ".nii.gz")):
        return read_nifti_header(path)
    header = read_metaimage_header(path) if path.name.endswith(".mha") else read_nrrd_header(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise HeaderError("the image header could not be read") from None
    if math.prod(reader.GetSize()) * reader.GetNumberOfComponents() != header.voxels * header.components:
        raise HeaderError("the header is ambiguous (ITK reads another grid from it)")
    return header
