"""The chunked upload API (the protocol is spinebench.uploads.chunked's):

    POST   /api/uploads/                 {kind, size, sha256, filename}  -> 201 the session (offset 0, or complete
                                         at once when your account already stores these bytes)
    PUT    /api/uploads/{id}/            one chunk, raw bytes; where it starts: `Content-Range: bytes S-E/TOTAL` or
                                         `?offset=S`; its SHA-256 in `Upload-Chunk-SHA256` -> 200 the new offset
    GET    /api/uploads/{id}/ (or HEAD)  the session; `Upload-Offset` header: where to resume
    POST   /api/uploads/{id}/finalise/   checks the whole sha256, stores the file -> 200 the complete session
    DELETE /api/uploads/{id}/            gives up: the partial bytes are deleted

Then pass the session's id as `upload` where a file is expected (POST /api/phases/{id}/submissions/). Only the
session's owner reaches it (others get 404); worker tokens are refused like on every participant endpoint."""

from __future__ import annotations

import re

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from spinebench.access import can_use_upload_session

from . import chunked
from .limits import UploadRefused
from .models import UploadSession
from .serializers import UploadErrorSerializer, UploadSessionCreateSerializer, UploadSessionSerializer

REFUSALS = {code: UploadErrorSerializer for code in (400, 409, 410, 413)}
CONTENT_RANGE = re.compile(r"^bytes (\d{1,19})-(\d{1,19})/(\d{1,19}|\*)$")
CHUNK_PARAMETERS = [
    OpenApiParameter("offset", int, OpenApiParameter.QUERY, required=False,
                     description="Where the chunk starts (instead of Content-Range)."),
    OpenApiParameter("Content-Range", str, OpenApiParameter.HEADER, required=False,
                     description="`bytes START-END/TOTAL` (END inclusive; TOTAL the declared size or `*`)."),
    OpenApiParameter("Upload-Chunk-SHA256", str, OpenApiParameter.HEADER, required=True,
                     description="SHA-256 of this chunk's bytes (hex); a chunk that does not match is refused."),
]


def _offset_header(response: Response, offset: int | None) -> Response:
    if offset is not None:
        response["Upload-Offset"] = str(offset)
    return response


def _error(error: chunked.SessionError) -> Response:
    return _offset_header(Response(error.as_dict(), status=error.status), error.offset)


def chunk_start(request, *, size: int, length: int | None) -> int | None:
    """Where the chunk starts, from Content-Range or ?offset= (both given: they must agree); None when neither."""
    starts = []
    header = request.headers.get("Content-Range", "").strip()
    if header:
        match = CONTENT_RANGE.match(header)
        if match is None:
            raise chunked.SessionError("Content-Range must read `bytes START-END/TOTAL`.", code="invalid",
                                       field="Content-Range")
        first, last, total = int(match[1]), int(match[2]), match[3]
        if last < first or (length is not None and last - first + 1 != length):
            raise chunked.SessionError("Content-Range does not match the chunk's Content-Length.", code="invalid",
                                       field="Content-Range")
        if total != "*" and int(total) != size:
            raise chunked.SessionError(f"Content-Range's total must be the declared size, {size}.", code="invalid",
                                       field="Content-Range")
        starts.append(first)
    raw = request.query_params.get("offset")
    if raw is not None:
        if not raw.isdigit() or len(raw) > 19:
            raise chunked.SessionError("offset must be a whole number of bytes.", code="invalid", field="offset")
        starts.append(int(raw))
    if len(set(starts)) > 1:
        raise chunked.SessionError("Content-Range and ?offset= disagree.", code="invalid", field="offset")
    return starts[0] if starts else None


def _content_length(request) -> int | None:
    raw = request.META.get("CONTENT_LENGTH") or ""
    return int(raw) if raw.isdigit() else None


class UploadSessionViewSet(viewsets.GenericViewSet):
    serializer_class = UploadSessionSerializer
    permission_classes = [permissions.IsAuthenticated]
    queryset = UploadSession.objects.none()  # every lookup goes through get_object's owner rule

    def get_object(self) -> UploadSession:
        session = get_object_or_404(UploadSession.objects.select_related("stored"), pk=self.kwargs["pk"])
        if not can_use_upload_session(session, self.request.user):
            raise Http404
        return session

    def _session_response(self, session: UploadSession, *, status_code: int = 200) -> Response:
        data = UploadSessionSerializer(session, context={"request": self.request}).data
        return _offset_header(Response(data, status=status_code), session.offset)

    @extend_schema(request=UploadSessionCreateSerializer,
                   responses={201: UploadSessionSerializer, 413: UploadErrorSerializer})
    def create(self, request, format=None):
        """Start a resumable upload: its kind, size and sha256. The kind's size cap and your storage quota are
        checked now (413), before any byte is sent."""
        payload = UploadSessionCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        values = payload.validated_data
        try:
            session = chunked.open_session(
                owner=request.user, kind=values["kind"], size=values["size"], sha256=values["sha256"],
                original_name=values.get("filename", ""),
            )
        except chunked.SessionError as error:
            return _error(error)
        except UploadRefused as refusal:
            return Response(refusal.as_dict(), status=refusal.status)
        response = self._session_response(session, status_code=status.HTTP_201_CREATED)
        response["Location"] = response.data["upload_url"]
        return response

    @extend_schema(responses={200: UploadSessionSerializer})
    def retrieve(self, request, pk=None, format=None):
        """The session; its `offset` (also the `Upload-Offset` header, and on HEAD) is where to resume."""
        return self._session_response(self.get_object())

    @extend_schema(request={"application/octet-stream": OpenApiTypes.BINARY}, parameters=CHUNK_PARAMETERS,
                   responses={200: UploadSessionSerializer, **REFUSALS})
    def update(self, request, pk=None, format=None):
        """One chunk at the session's current offset. Refused: another offset (409, with the offset to resume
        from), a chunk over the chunk cap or past the declared size (413), a checksum mismatch (400; nothing kept)."""
        session = self.get_object()
        length = _content_length(request)
        try:
            start = chunk_start(request, size=session.size, length=length)
            stream = request.stream
            chunked.write_chunk(session=session, offset=start, length=length,
                                chunk_sha256=request.headers.get("Upload-Chunk-SHA256", ""),
                                read=stream.read if stream is not None else (lambda size: b""))
        except chunked.SessionError as error:
            return _error(error)
        return self._session_response(session)

    @extend_schema(request=None, responses={200: UploadSessionSerializer, **REFUSALS})
    @action(detail=True, methods=["post"])
    def finalise(self, request, pk=None, format=None):
        """Check the whole file against the declared sha256 and store it (once: the same bytes already stored for
        your account are reused). A mismatch fails the session and deletes its bytes (400)."""
        try:
            session = chunked.finalise(session=self.get_object())
        except chunked.SessionError as error:
            return _error(error)
        except UploadRefused as refusal:
            return Response(refusal.as_dict(), status=refusal.status)
        return self._session_response(session)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, pk=None, format=None):
        """Give up an upload: an unfinished session's bytes are deleted at once."""
        chunked.abort(session=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
