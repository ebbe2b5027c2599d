"""Serving a stored archive with HTTP range requests (RFC 9110 section 14), so an interrupted download resumes.

One range only: `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` (the last n bytes) answers 206 with `Content-Range:
bytes a-b/size`; a range starting at or past the end answers 416 with `Content-Range: bytes */size`; anything else
(several ranges, another unit, a malformed header) is ignored and the whole file sent with 200, as the RFC allows.
`If-Range` with a different ETag (the archive was rebuilt) also sends the whole file. The ETag names the stored
archive (built once per dataset version) and its size.

The archive is read through the storage API (spinebench.uploads.stored_files.iter_bytes): from the local disk, or
from an object store with one ranged GET per request, streamed, never downloaded whole first."""

from __future__ import annotations

import re
from pathlib import Path

from django.core.files.storage import default_storage
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from spinebench.uploads.stored_files import iter_bytes

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """(first, last) byte positions, inclusive; None: send everything; "unsatisfiable": 416."""
    match = _RANGE.match(header.strip())
    if match is None or not (match.group(1) or match.group(2)):
        return None
    start, end = match.group(1), match.group(2)
    if not start:  # suffix: the last `end` bytes
        length = int(end)
        if length == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    first = int(start)
    last = min(int(end), size - 1) if end else size - 1
    if first >= size:
        return "unsatisfiable"
    if end and int(end) < first:
        return None  # an invalid range is ignored
    return first, last


def etag_of(name: str, size: int) -> str:
    return f'"{Path(name).stem}-{size}"'


def ranged_file_response(request, name: str, *, filename: str) -> HttpResponse | StreamingHttpResponse:
    """The stored file `name` (default storage) as an attachment, answering a single byte range with 206."""
    size = default_storage.size(name)
    etag = etag_of(name, size)
    wanted = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range", "")
    chosen = parse_range(wanted, size) if wanted and (not if_range or if_range == etag) else None
    response: HttpResponse | StreamingHttpResponse
    if chosen == "unsatisfiable":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    else:
        first, last = chosen if isinstance(chosen, tuple) else (0, size - 1)
        response = StreamingHttpResponse(
            iter_bytes(name, first=first, last=last), status=206 if chosen else 200, content_type="application/zip"
        )
        if chosen:
            response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(last - first + 1)
        response["Content-Disposition"] = content_disposition_header(True, filename) or "attachment"
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    return response
