from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from spinebench.access import can_see_case_results, can_see_private_details, can_see_scores

from .models import Submission


class SubmissionSerializer(serializers.ModelSerializer):
    phase = serializers.PrimaryKeyRelatedField(read_only=True)
    participant = serializers.CharField(source="participant_name", read_only=True)
    comment = serializers.SerializerMethodField()
    error_message = serializers.SerializerMethodField()
    rank = serializers.SerializerMethodField()
    aggregates = serializers.SerializerMethodField()
    case_metrics = serializers.SerializerMethodField()
    hidden_reason = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = [
            "id", "phase", "participant", "is_baseline", "baseline_method", "comment", "status", "error_message",
            "created", "started_at", "finished_at", "rank", "aggregates", "case_metrics", "hidden_reason",
        ]

    def _user(self):
        return self.context["request"].user

    def get_comment(self, submission) -> str:
        """The submitter's private note: for them and the challenge's organizers only (the page hides it too)."""
        return submission.comment if can_see_private_details(submission, self._user()) else ""

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
    file = UploadField()
    comment = serializers.CharField(max_length=500, required=False, allow_blank=True)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="Shown to the submitter with the cancelled status."
    )
