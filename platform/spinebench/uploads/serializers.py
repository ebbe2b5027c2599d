"""What the chunked upload API reads and answers (spinebench.uploads.api)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.reverse import reverse

from .chunked import SESSION_KINDS, chunk_cap
from .models import UploadSession


class UploadSessionCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=sorted(SESSION_KINDS),
        help_text="What the file is: `algorithm_archive` (a `docker save` tar), `predictions_zip` (case folders), "
        "`dataset` (a dataset zip) or `evaluation_image`.",
    )
    size = serializers.IntegerField(min_value=1, help_text="The file's size in bytes.")
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$", help_text="SHA-256 of the whole file (hex); finalise refuses other bytes."
    )
    filename = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                     help_text="Your file's name (shown only; never a path on the server).")


class UploadSessionSerializer(serializers.ModelSerializer):
    upload_url = serializers.SerializerMethodField(help_text="Where chunks go (PUT) and the session is read (GET).")
    finalise_url = serializers.SerializerMethodField()
    chunk_max_bytes = serializers.SerializerMethodField(help_text="The largest chunk one PUT may carry.")
    deduplicated = serializers.SerializerMethodField(
        help_text="True when the file was already stored for your account: nothing more needs to be sent."
    )
    stored_upload = serializers.IntegerField(source="stored_id", read_only=True, allow_null=True)

    class Meta:
        model = UploadSession
        fields = ["id", "kind", "size", "sha256", "original_name", "offset", "status", "error", "expires_at",
                  "created", "stored_upload", "deduplicated", "chunk_max_bytes", "upload_url", "finalise_url"]
        read_only_fields = fields

    def _url(self, name: str, session: UploadSession) -> str:
        return reverse(name, kwargs={"pk": str(session.pk)}, request=self.context.get("request"))

    def get_upload_url(self, session: UploadSession) -> str:
        return self._url("upload-session-detail", session)

    def get_finalise_url(self, session: UploadSession) -> str:
        return self._url("upload-session-finalise", session)

    def get_chunk_max_bytes(self, session: UploadSession) -> int:
        return chunk_cap()

    def get_deduplicated(self, session: UploadSession) -> bool:
        return session.status == UploadSession.Status.COMPLETE and not session.stored_here


class UploadErrorSerializer(serializers.Serializer):
    """A refused upload request. Besides these, the message is repeated under the field or header it is about
    (e.g. `Upload-Chunk-SHA256`, `offset`, `sha256`)."""

    detail = serializers.CharField()
    code = serializers.CharField(help_text="e.g. `offset_mismatch`, `chunk_checksum`, `chunk_too_large`, "
                                 "`sha256_mismatch`, `incomplete`, `expired`, `too_large`, `quota`.")
    upload_offset = serializers.IntegerField(required=False, help_text="Where to resume (also `Upload-Offset`).")
    limit_bytes = serializers.IntegerField(required=False, help_text="The limit a `too_large` or `quota` refusal "
                                           "applied.")
