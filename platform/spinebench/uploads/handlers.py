"""The one way uploaded bytes enter the server: a Django upload handler that counts and hashes every byte while the
request streams in, writes it only to a quarantine temporary file, and stops the upload the moment the count passes
the request's limit (the strictest of the site's SPINEBENCH_MAX_UPLOAD_BYTES and the view's own, e.g. the phase's
`max_upload_bytes`). A refused upload leaves nothing behind: its temporary file is closed, which deletes it.

A body whose declared Content-Length is already over the limit (plus room for the form's other fields) is refused
without reading it at all (by the middleware, and here again for requests that bypass it).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

from .limits import UploadLimit, UploadRefused, human_size

#: Room for the multipart boundaries and the small text fields (a comment) around the file in a request body.
FORM_OVERHEAD_BYTES = 64 * 1024


def site_limit() -> UploadLimit:
    return UploadLimit(bytes=settings.SPINEBENCH_MAX_UPLOAD_BYTES, owner="the site's")


class QuarantinedUpload(TemporaryUploadedFile):
    """An uploaded file held in a temporary file (deleted when closed) until a service validates and stores it;
    `sha256` is the digest of its bytes, computed while they arrived."""

    sha256: str = ""


def refusal_of(request) -> UploadRefused | None:
    """The refusal the upload handler recorded on this request (None when the upload was accepted or absent)."""
    return getattr(request, "upload_refusal", None)


class LimitedUploadHandler(FileUploadHandler):
    chunk_size = 64 * 1024

    def __init__(self, request=None, *, limit: UploadLimit | None = None):
        super().__init__(request)
        self.limit = limit or site_limit()
        self.received = 0  # file bytes of the whole request, all file fields together
        self.digest = None

    def _refuse(self, message: str) -> None:
        refusal = UploadRefused(message, code="too_large", limit_bytes=self.limit.bytes)
        if self.request is not None:
            request: Any = self.request  # HttpRequest declares no upload_refusal: refusal_of() reads it back
            request.upload_refusal = refusal

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.limit.bytes + FORM_OVERHEAD_BYTES:
            self._refuse(
                f"The upload is {human_size(content_length)}, over {self.limit.describe()}; nothing was stored."
            )
            return QueryDict(encoding=encoding), MultiValueDict()  # the body is never read
        return None

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.file = QuarantinedUpload(self.file_name, self.content_type, 0, self.charset, self.content_type_extra)
        self.digest = hashlib.sha256()

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit.bytes:
            name = self.file_name if len(self.file_name) <= 80 else self.file_name[:80] + "…"
            self._refuse(
                f"{name}: the upload passed {human_size(self.limit.bytes)} while it was received, over "
                f"{self.limit.describe()}; nothing was stored."
            )
            # The parser closes (so deletes) self.file and reads on without keeping anything: at most the declared
            # length's form overhead remains, and the form's other fields (the CSRF token) are still read.
            raise SkipFile
        self.file.write(raw_data)
        self.digest.update(raw_data)
        # no later handler keeps a second copy

    def file_complete(self, file_size):
        self.file.seek(0)
        self.file.size = file_size
        self.file.sha256 = self.digest.hexdigest()
        return self.file
