from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from spinebench.access import can_see_case_results, can_see_private_details, can_see_scores

from .method_cards import validate_web_url
from .models import Submission


class SubmissionSerializer(serializers.ModelSerializer):
    phase = serializers.PrimaryKeyRelatedField(read_only=True)
    participant = serializers.CharField(source="participant_name", read_only=True)
    comment = serializers.SerializerMethodField()
    error_message = serializers.SerializerMethodField()
    rank = serializers.SerializerMethodField()
    aggregates = serializers.SerializerMethodField()
    case_metrics = serializers.SerializerMethodField()
    chosen = serializers.SerializerMethodField()
    hidden_reason = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = [
            "id", "phase", "participant", "is_baseline", "baseline_method", "comment", "status", "error_message",
            "created", "started_at", "finished_at", "rank", "aggregates", "case_metrics", "hidden_reason",
            "method_name", "method_description", "paper_url", "code_url", "chosen",
        ]

    def _user(self):
        return self.context["request"].user

    def get_comment(self, submission) -> str:
        """The submitter's private note: for them and the challenge's organizers only (the page hides it too)."""
        return submission.comment if can_see_private_details(submission, self._user()) else ""

    def get_chosen(self, submission) -> bool:
        """Whether the submitter chose it to represent them (selection `chosen`): theirs and the organizers' to know."""
        return submission.chosen and can_see_private_details(submission, self._user())

    def get_error_message(self, submission) -> str:
        return submission.error_message if can_see_private_details(submission, self._user()) else ""

    def get_hidden_reason(self, submission) -> str:
        """Why the organizers took the submission off the leaderboard (empty: it is not hidden); for the submitter
        and the organizers."""
        if not submission.hidden_from_leaderboard or not can_see_private_details(submission, self._user()):
            return ""
        return submission.hidden_reason

    def _evaluation(self, submission):
        """The evaluation, for those who may see its scores (a blind phase's participants see only the status)."""
        if not can_see_scores(submission.phase, self._user()):
            return None
        return getattr(submission, "evaluation", None)

    def get_rank(self, submission) -> int | None:
        evaluation = self._evaluation(submission)
        return evaluation.rank if evaluation else None

    def get_aggregates(self, submission) -> dict | None:
        evaluation = self._evaluation(submission)
        return evaluation.aggregates if evaluation else None

    def get_case_metrics(self, submission) -> dict | None:
        evaluation = self._evaluation(submission)
        if evaluation is None or not can_see_case_results(submission, self._user()):
            return None
        return evaluation.case_metrics


@extend_schema_field({"type": "string", "format": "binary"})
class UploadField(serializers.FileField):
    """A file sent as a multipart part. Documented as binary: drf-spectacular's default for a FileField (a URI, what
    a response would hold) made clients and schemathesis send a URL string, which the API rightly refuses."""


class SubmissionCreateSerializer(serializers.Serializer):
    file = UploadField(required=False)  # the file itself, in this request (small files)
    upload = serializers.UUIDField(
        required=False,
        help_text="Instead of `file`: the id of your finished chunked upload (POST /api/uploads/, for large files).",
    )
    comment = serializers.CharField(max_length=500, required=False, allow_blank=True)
    method_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    method_description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    paper_url = serializers.URLField(max_length=500, required=False, allow_blank=True, validators=[validate_web_url])
    code_url = serializers.URLField(max_length=500, required=False, allow_blank=True, validators=[validate_web_url])

    def validate(self, attrs):
        if ("file" in attrs) == ("upload" in attrs):
            raise serializers.ValidationError({"file": ["Send either `file` or `upload` (not both)."]})
        return attrs


class MethodCardSerializer(serializers.Serializer):
    """PATCH /api/submissions/{id}/: the method card fields to change; the ones left out keep their values and an
    empty string clears one. Links are http(s) only."""

    method_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    method_description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    paper_url = serializers.URLField(max_length=500, required=False, allow_blank=True, validators=[validate_web_url])
    code_url = serializers.URLField(max_length=500, required=False, allow_blank=True, validators=[validate_web_url])

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields)) if hasattr(self.initial_data, "keys") else []
        if unknown:  # a typo or a read-only field must not look like a successful edit
            raise serializers.ValidationError({key: ["Only the method card can be changed here."] for key in unknown})
        return attrs


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="Shown to the submitter with the cancelled status."
    )
