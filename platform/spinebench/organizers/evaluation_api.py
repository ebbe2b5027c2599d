"""REST API of organizers' scoring control (the same services as the pages):

- `/api/rescore-jobs/`: list one's challenges' re-score jobs (`?phase=<id>`), start one (POST `{"phase", "note"}`),
  poll one (`scored` of `total`, `status`, `error_message` naming a failed submission).
- `/api/monitor/submissions/?challenge=<slug>`: the submission monitor (filters `phase`, `status`, `participant`,
  `since`, `until`, `baseline`), one submission with its evaluation history and container logs, and the actions
  `hide` (`{"reason"}`), `restore` and `rerun`. Cancelling is the one `POST /api/submissions/{id}/cancel/`.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spinebench.access import (
    can_moderate_submission,
    can_monitor_submissions,
    can_rescore_phase,
    can_reveal_scores,
)
from spinebench.challenges.models import Challenge, Phase
from spinebench.challenges.visibility import RevealRefused, reveal_scores
from spinebench.evaluation.models import PastEvaluation, RescoreJob
from spinebench.evaluation.rescoring import RescoreRefused, start_rescore
from spinebench.submissions.models import Submission
from spinebench.submissions.moderation import (
    ModerationRefused,
    hide_submission,
    rerun_submission,
    restore_submission,
)

from .monitor import MonitorFilter, container_logs, evaluation_history, monitored_submissions


def _organized_phases(user) -> QuerySet[Phase]:
    phases = Phase.objects.select_related("challenge")
    if user.is_superuser:
        return phases
    return phases.filter(challenge__organizers=user)


class OrganizedPhaseField(serializers.PrimaryKeyRelatedField):
    """A phase of a challenge the caller organizes (any other id: "does not exist", never saying more)."""

    def get_queryset(self):
        return _organized_phases(self.context["request"].user)


class RescoreJobSerializer(serializers.ModelSerializer):
    phase = OrganizedPhaseField()
    requested_by = serializers.CharField(source="requested_by.get_username", read_only=True, default="")
    failed_submission = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = RescoreJob
        fields = [
            "id", "phase", "note", "status", "from_version", "to_version", "scored", "total", "error_message",
            "failed_submission", "requested_by", "created", "started_at", "finished_at",
        ]
        read_only_fields = [
            "status", "from_version", "to_version", "scored", "total", "error_message", "created", "started_at",
            "finished_at",
        ]


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("phase", int, description="Only this phase's jobs.")],
        responses={200: RescoreJobSerializer(many=True), 400: OpenApiResponse(description="`phase` is no id.")},
        description="Re-score jobs of the phases of challenges you organize, newest first.",
    ),
    retrieve=extend_schema(parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH)]),
    create=extend_schema(
        description="Start re-scoring a phase: every succeeded submission is evaluated again in the background; when "
        "all are done the phase switches to the next evaluation version at once. Refused (400, key `phase`) while "
        "another re-score of the phase is active. Answers 201 with the job; poll it for `scored` of `total`."
    ),
)
class RescoreJobViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = RescoreJobSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        jobs = RescoreJob.objects.filter(phase__in=_organized_phases(self.request.user)).select_related(
            "requested_by"
        )
        phase = self.request.query_params.get("phase", "")
        if self.action == "list" and phase:
            if not phase.isdigit():
                raise ValidationError({"phase": ["A phase id (a whole number)."]})
            jobs = jobs.filter(phase_id=int(phase))
        return jobs.order_by("-created", "-pk")

    def perform_create(self, serializer):
        phase = serializer.validated_data["phase"]
        if not can_rescore_phase(phase, self.request.user):
            raise ValidationError({"phase": ["You do not organize this phase's challenge."]})
        try:
            serializer.instance = start_rescore(
                phase=phase, actor=self.request.user, note=serializer.validated_data.get("note", "")
            )
        except RescoreRefused as refusal:
            raise ValidationError({refusal.field: [str(refusal)]}) from None


class PastEvaluationSerializer(serializers.ModelSerializer):
    aggregates = serializers.DictField(read_only=True)

    class Meta:
        model = PastEvaluation
        fields = ["version", "part", "aggregates", "rank", "evaluated", "replaced"]


class MonitoredSubmissionSerializer(serializers.ModelSerializer):
    phase_slug = serializers.CharField(source="phase.slug", read_only=True)
    participant = serializers.CharField(source="participant_name", read_only=True)
    evaluation = serializers.SerializerMethodField()
    private_evaluation = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = [
            "id", "phase", "phase_slug", "participant", "is_baseline", "baseline_method", "status", "error_message",
            "comment", "created", "started_at", "finished_at", "hidden_from_leaderboard", "hidden_reason", "rerun_of",
            "evaluation", "private_evaluation",
        ]
        read_only_fields = fields

    def get_evaluation(self, submission) -> dict | None:
        """The current evaluation: its version, rank, whether it is published, and its aggregate scores."""
        evaluation = getattr(submission, "evaluation", None)
        if evaluation is None:
            return None
        return {
            "version": evaluation.version,
            "part": evaluation.part,
            "rank": evaluation.rank,
            "published": evaluation.published,
            "aggregates": evaluation.aggregates,
        }

    def get_private_evaluation(self, submission) -> dict | None:
        """A split phase's private part: its version, rank on the final leaderboard and aggregate scores."""
        evaluation = getattr(submission, "private_evaluation", None)
        if evaluation is None:
            return None
        return {"version": evaluation.version, "rank": evaluation.rank, "aggregates": evaluation.aggregates}


class ContainerLogSerializer(serializers.Serializer):
    case_id = serializers.CharField()
    status = serializers.CharField()
    exit_code = serializers.IntegerField(allow_null=True)
    error_message = serializers.CharField()
    log_tail = serializers.CharField()


class MonitoredSubmissionDetailSerializer(MonitoredSubmissionSerializer):
    history = serializers.SerializerMethodField()
    logs = serializers.SerializerMethodField()

    class Meta(MonitoredSubmissionSerializer.Meta):
        fields = [*MonitoredSubmissionSerializer.Meta.fields, "history", "logs"]
        read_only_fields = fields

    @extend_schema_field(PastEvaluationSerializer(many=True))
    def get_history(self, submission) -> list:
        return PastEvaluationSerializer(evaluation_history(submission), many=True).data

    @extend_schema_field(ContainerLogSerializer(many=True))
    def get_logs(self, submission) -> list:
        return ContainerLogSerializer(container_logs(submission), many=True).data


class RevealSerializer(serializers.ModelSerializer):
    class Meta:
        model = Phase
        fields = ["id", "score_visibility", "scores_revealed_at"]
        read_only_fields = fields


class HideSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Shown to the submitter.")


MONITOR_FILTERS = [
    OpenApiParameter("challenge", str, required=True, description="The challenge's slug."),
    OpenApiParameter("phase", str, description="A phase's slug."),
    OpenApiParameter("status", str, description="One status of the state machine."),
    OpenApiParameter("participant", str, description="Part of the username."),
    OpenApiParameter("since", str, description="Created on or after this day (YYYY-MM-DD)."),
    OpenApiParameter("until", str, description="Created on or before this day (YYYY-MM-DD)."),
    OpenApiParameter("baseline", str, enum=["yes", "no"], description="Baselines only, or participants only."),
]


@extend_schema_view(
    list=extend_schema(
        parameters=MONITOR_FILTERS,
        responses={
            200: MonitoredSubmissionSerializer(many=True),
            400: OpenApiResponse(description="A filter's value is wrong (keyed by the filter)."),
            404: OpenApiResponse(description="No challenge you organize has this slug."),
        },
        description="The submission monitor of a challenge you organize.",
    ),
    retrieve=extend_schema(description="One submission with its evaluation history and container logs."),
)
class MonitoredSubmissionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [permissions.IsAuthenticated]

    def get_serializer_class(self):
        return MonitoredSubmissionDetailSerializer if self.action != "list" else MonitoredSubmissionSerializer

    def get_queryset(self):
        if self.action != "list":
            return Submission.objects.select_related("phase__challenge", "creator", "evaluation")
        slug = self.request.query_params.get("challenge", "")
        if not slug:
            raise ValidationError({"challenge": ["Name the challenge (its slug)."]})
        challenge = Challenge.objects.filter(slug=slug).first()
        if challenge is None or not can_monitor_submissions(challenge, self.request.user):
            raise NotFound("No challenge you organize has this slug.")
        form = MonitorFilter(self.request.query_params, challenge=challenge)
        if not form.is_valid():
            raise ValidationError(form.errors)
        return monitored_submissions(challenge=challenge, filters=form.cleaned_data)

    def get_object(self):
        submission = get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])
        if not can_moderate_submission(submission, self.request.user):
            raise NotFound
        return submission

    def _answer(self, request: Request, submission: Submission, code: int = status.HTTP_200_OK) -> Response:
        submission.refresh_from_db()
        return Response(MonitoredSubmissionDetailSerializer(submission, context={"request": request}).data, code)

    @extend_schema(request=HideSerializer, responses={200: MonitoredSubmissionDetailSerializer},
                   description="Take the submission off the leaderboard; the reason is shown to the submitter.")
    @action(detail=True, methods=["post"])
    def hide(self, request, pk=None, format=None):
        submission = self.get_object()
        serializer = HideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            hide_submission(submission=submission, reason=serializer.validated_data["reason"], actor=request.user)
        except ModerationRefused as refusal:
            raise ValidationError({refusal.field: [str(refusal)]}) from None
        return self._answer(request, submission)

    @extend_schema(request=None, responses={200: MonitoredSubmissionDetailSerializer},
                   description="Put a hidden submission back on the leaderboard.")
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None, format=None):
        submission = self.get_object()
        try:
            restore_submission(submission=submission, actor=request.user)
        except ModerationRefused as refusal:
            raise ValidationError({refusal.field: [str(refusal)]}) from None
        return self._answer(request, submission)

    @extend_schema(request=None, responses={201: MonitoredSubmissionDetailSerializer},
                   description="Run a finished submission's upload again as a new submission of the same "
                   "participant (not counted against their limit); answers the new submission.")
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None, format=None):
        submission = self.get_object()
        try:
            rerun = rerun_submission(submission=submission, actor=request.user)
        except ModerationRefused as refusal:
            raise ValidationError({refusal.field: [str(refusal)]}) from None
        return self._answer(request, rerun, status.HTTP_201_CREATED)


class PhaseRevealView(APIView):
    """`POST /api/phases/{id}/reveal/`: reveal a blind phase's leaderboard (its organizers; audited)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={
            200: RevealSerializer,
            409: OpenApiResponse(
                description="The phase is neither blind nor split, or its leaderboard is revealed already."
            ),
        },
        description="Reveal a blind phase's leaderboard, or a split phase's final (private part) leaderboard: from "
        "then on everyone who sees the phase sees those scores and ranks. One audited action that cannot be undone; "
        "409 when the phase is neither blind nor split, or already revealed.",
    )
    def post(self, request: Request, pk: int, format=None) -> Response:
        phase = get_object_or_404(_organized_phases(request.user), pk=pk)
        if not can_reveal_scores(phase, request.user):
            raise NotFound
        try:
            phase = reveal_scores(phase=phase, actor=request.user)
        except RevealRefused as refusal:
            return Response({"detail": str(refusal), "code": "not_blind"}, status=status.HTTP_409_CONFLICT)
        return Response(RevealSerializer(phase).data)
