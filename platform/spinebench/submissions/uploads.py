"""Platform-level checks of an uploaded predictions file, before the evaluator reads it: size, emptiness, encoding,
and for per-case phases a sound zip of case folders; plus the phase's upload limit for the streaming handler
(spinebench.uploads) and the unpacking of a stored zip for scoring. Row-level checks (columns, cases, numbers) are
the evaluators' (`evaluators.formats.load_predictions`)."""

from __future__ import annotations

import codecs
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from spinebench.uploads.limits import UploadLimit, human_size
from spinebench.uploads.local_cache import CacheError, local_copy
from spinebench.uploads.zips import ZipLimits, ZipRefused, check_zip, extract_zip

CHUNK = 1 << 16


class UploadError(ValueError):
    """The upload itself is unusable; the message names the problem and is safe to show."""


def phase_limit(phase) -> UploadLimit:
    return UploadLimit(bytes=phase.max_upload_bytes, owner="this phase's")


def phase_limit_for_url(request, **url_kwargs) -> UploadLimit | None:
    """`upload_limit` resolver of the submission views: the phase named by the URL (`pk`, or `challenge` and `phase`
    slugs); None when there is no such phase (the view answers 404 itself)."""
    from spinebench.challenges.models import Phase

    if "pk" in url_kwargs:
        lookup = {"pk": url_kwargs["pk"]} if str(url_kwargs["pk"]).isdigit() else None
    else:
        lookup = {"challenge__slug": url_kwargs.get("challenge"), "slug": url_kwargs.get("phase")}
    limit = Phase.objects.filter(**lookup).values_list("max_upload_bytes", flat=True).first() if lookup else None
    return None if limit is None else UploadLimit(bytes=limit, owner="this phase's")


def zip_limits(phase) -> ZipLimits:
    return ZipLimits(max_entries=settings.SPINEBENCH_ZIP_MAX_ENTRIES, max_total_bytes=phase.output_limit_mb * 1024**2)


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


def display_name(uploaded, default: str) -> str:
    """The uploader's file name as messages quote it: the last path part, at most 80 characters."""
    name = (getattr(uploaded, "name", "") or default).replace("\\", "/").rsplit("/", 1)[-1]
    return name if len(name) <= 80 else name[:80] + "…"


def check_predictions_csv(uploaded, *, limit: int) -> None:
    """`uploaded`: a Django File/UploadedFile. Raises UploadError with a specific message."""
    name = display_name(uploaded, "predictions")
    check_size(uploaded.size, limit=limit, name=name)
    uploaded.seek(0)
    check_utf8_text(uploaded.chunks(CHUNK), name=name)
    uploaded.seek(0)


def check_predictions_zip(uploaded, *, limit: int, limits: ZipLimits) -> None:
    """A zip of per-case folders (`<case_id>/segmentation.nii.gz`, ...) for tasks whose predictions are files per
    case: sound enough that unpacking it for scoring cannot fail (spinebench.uploads.zips.check_zip decompresses
    every member, bounded by `limits`)."""
    name = display_name(uploaded, "predictions.zip")
    check_size(uploaded.size, limit=limit, name=name)
    uploaded.seek(0)
    try:
        check_zip(uploaded, name=name, limits=limits)
    except ZipRefused as problem:
        message = str(problem)
        if message.endswith("not a zip archive"):
            message += "; upload a .zip with one folder per case"
        raise UploadError(message) from None
    uploaded.seek(0)


@contextmanager
def predictions_location(submission):
    """The stored predictions as a path the evaluator reads: the CSV file, or a zipped per-case folder unpacked
    into a fresh temporary directory (spinebench.uploads.zips.extract_zip: bounded, nothing written outside it).
    A zip that cannot be unpacked raises UploadError with the reason, for the caller to fail the submission."""
    try:
        stored = local_copy(submission.predictions_file)
    except CacheError as problem:
        raise UploadError(str(problem)) from None
    if stored.suffix != ".zip":
        yield stored
        return
    with tempfile.TemporaryDirectory(prefix="spinebench-predictions-") as tmp:
        try:
            with stored.open("rb") as handle:
                root = extract_zip(handle, Path(tmp), name="predictions.zip", limits=zip_limits(submission.phase))
        except ZipRefused as problem:
            raise UploadError(str(problem)) from None
        yield root
