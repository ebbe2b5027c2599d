"""Platform-level checks of an uploaded predictions file, before the evaluator reads it: size, emptiness and
encoding. Row-level checks (columns, cases, numbers) are the evaluators' (`evaluators.formats.load_predictions`)."""

from __future__ import annotations

import codecs

CHUNK = 1 << 16


class UploadError(ValueError):
    """The upload itself is unusable; the message names the problem and is safe to show."""


def human_size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"


def check_size(size: int, *, limit: int, name: str) -> None:
    if size == 0:
        raise UploadError(f"{name}: the file is empty")
    if size > limit:
        raise UploadError(f"{name}: the file is {human_size(size)}, over this phase's limit of {human_size(limit)}")


def check_utf8_text(chunks, *, name: str) -> None:
    """Decode the whole file incrementally; name the line and byte of the first invalid sequence."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line, has_content = 0, 1, False
    for chunk in chunks:
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as error:
            position = offset + error.start
            line += chunk[: error.start].count(b"\n")
            raise UploadError(
                f"{name}: not UTF-8 text: byte 0x{chunk[error.start]:02x} at line {line} (byte offset {position}) "
                "cannot be decoded; save the CSV as UTF-8"
            ) from None
        has_content = has_content or bool(text.strip())
        line += chunk.count(b"\n")
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise UploadError(f"{name}: not UTF-8 text: the file ends inside a multi-byte character") from None
    if not has_content:
        raise UploadError(f"{name}: the file contains only whitespace")


def check_predictions_csv(uploaded, *, limit: int) -> None:
    """`uploaded`: a Django File/UploadedFile. Raises UploadError with a specific message."""
    name = getattr(uploaded, "name", "predictions") or "predictions"
    name = name.rsplit("/", 1)[-1]
    check_size(uploaded.size, limit=limit, name=name)
    uploaded.seek(0)
    check_utf8_text(uploaded.chunks(CHUNK), name=name)
    uploaded.seek(0)


def check_predictions_zip(uploaded, *, limit: int, unpacked_limit: int) -> None:
    """A zip of per-case folders (`<case_id>/segmentation.nii.gz`, ...) for tasks whose predictions are files per
    case: a readable zip, no member escaping the archive or being a link, unpacked size under `unpacked_limit`."""
    import stat
    import zipfile
    from pathlib import PurePosixPath

    name = (getattr(uploaded, "name", "") or "predictions.zip").rsplit("/", 1)[-1]
    check_size(uploaded.size, limit=limit, name=name)
    uploaded.seek(0)
    try:
        archive = zipfile.ZipFile(uploaded)
    except zipfile.BadZipFile:
        raise UploadError(f"{name}: not a zip archive; upload a .zip with one folder per case") from None
    total = 0
    for member in archive.infolist():
        path = PurePosixPath(member.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
            raise UploadError(f"{name}: member {member.filename!r} points outside the archive")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise UploadError(f"{name}: member {member.filename!r} is a symbolic link; links are not accepted")
        total += member.file_size
        if total > unpacked_limit:
            raise UploadError(f"{name}: unpacks to more than {human_size(unpacked_limit)}")
    if not archive.infolist():
        raise UploadError(f"{name}: the archive is empty")
    uploaded.seek(0)
