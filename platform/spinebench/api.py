"""REST API (DRF): challenges, phases, leaderboards, registration, submissions by upload, polling, training data.
Token auth (`Authorization: Token <secret>` or `Bearer <secret>`, from POST /api/auth/token/; spinebench.accounts)
or the browser session. Worker tokens are refused here: only views with accounts' IsWorkerToken accept them."""

from dataclasses import asdict

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import get_object_or_404  # a malformed id is a 404 here, not a 500
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from spinebench.access import (
    can_cancel_submission,
    can_choose_submissions,
    can_download_dataset,
    can_download_phase_inputs,
    can_edit_method_card,
    can_see_scores,
    can_view_phase,
    can_view_submission,
    visible_challenges,
)
from spinebench.challenges.models import Phase
from spinebench.challenges.serializers import (
    AnnouncementSerializer,
    ChallengeSerializer,
    PhaseSerializer,
    RegistrationRequestSerializer,
    RegistrationSerializer,
    TermsSerializer,
)
from spinebench.challenges.services import register
from spinebench.challenges.terms import accept_current_terms, current_terms
from spinebench.datasets.byte_ranges import ranged_file_response
from spinebench.datasets.models import Dataset
from spinebench.datasets.services import inputs_archive, training_archive
from spinebench.leaderboards.history import leaderboard_at, parse_moment, phase_history
from spinebench.leaderboards.part_choice import FINAL_PART, LIVE_PART, PartRefused, requested_kind
from spinebench.leaderboards.serializers import HistorySerializer, LeaderboardSerializer
from spinebench.leaderboards.services import export_records, read_leaderboard
from spinebench.submissions.card_edits import edit_method_card
from spinebench.submissions.compare_views import comparable_submission, comparison_for
from spinebench.submissions.comparison import NotComparable
from spinebench.submissions.method_cards import FIELDS as METHOD_CARD_FIELDS
from spinebench.submissions.method_cards import MethodCard
from spinebench.submissions.models import Submission
from spinebench.submissions.quota import submission_quota
from spinebench.submissions.selection import choosable_submissions, choose_submissions
from spinebench.submissions.serializers import (
    CancelSerializer,
    MethodCardSerializer,
    SubmissionCreateSerializer,
    SubmissionSerializer,
)
from spinebench.submissions.services import CancelRefused, SubmissionRefused, cancel_submission, create_submission
from spinebench.submissions.uploads import phase_limit_for_url
from spinebench.uploads.handlers import refusal_of
from spinebench.uploads.middleware import upload_limit

# Multipart only (a file cannot travel in a urlencoded form); the part's file name tells a CSV from an archive.
UPLOAD_REQUEST = OpenApiRequest(
    SubmissionCreateSerializer,
    encoding={"file": {"headers": {"Content-Disposition": {
        "schema": {"type": "string"}, "example": 'form-data; name="file"; filename="predictions.csv"',
        "description": "Name the part `*.csv` for predictions, `*.tar`/`*.tar.gz` for an algorithm archive.",
    }}}},
)
#: A 400 answer: the field at fault -> its messages (`{"at": ["..."]}`).
FIELD_ERRORS = OpenApiResponse(OpenApiTypes.OBJECT, description="The field at fault and why: {field: [message]}.")
REFUSAL_STATUS = {
    "not_authenticated": 401, "not_participant": 403, "terms": 403, "hidden": 403, "closed": 409, "limit": 429,
    "too_large": 413, "quota": 413, "no_worker": 503, "bad_upload": 400,
}



PART_PARAMETER = OpenApiParameter(
    "part", str, enum=[LIVE_PART, FINAL_PART],
    description="live (default): the live leaderboard, ranked on the public part of a split phase; final: a split "
    "phase's final leaderboard, ranked on its private part (403 until its organizers reveal it, except to them).",
)


def _requested_kind(phase: Phase, request) -> str | None:
    try:
        return requested_kind(phase, request.user, request.query_params.get("part"))
    except PartRefused as refused:
        if refused.hidden:
            raise PermissionDenied(str(refused)) from None
        raise ValidationError({"part": [str(refused)]}) from None


class ChallengeViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ChallengeSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return visible_challenges(self.request.user)

    @extend_schema(request=RegistrationRequestSerializer, responses={201: RegistrationSerializer, 400: FIELD_ERRORS})
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAuthenticated])
    def register(self, request, slug=None, format=None):
        """Register for the challenge, answering its `registration_questions` in `answers` (a refused answer: 400
        with `{"answers": {field_name: [message]}}`, nothing registered). Registering again returns the existing
        registration unchanged."""
        challenge = self.get_object()
        payload = RegistrationRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            registration = register(challenge, request.user, answers=payload.validated_data["answers"])
        except DjangoValidationError as error:
            raise serializers.ValidationError({"answers": error.message_dict}) from None
        return Response(RegistrationSerializer(registration).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: AnnouncementSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def announcements(self, request, slug=None, format=None):
        """The challenge's announcements, newest first (body in markdown and rendered with raw HTML stripped)."""
        rows = self.get_object().announcements.select_related("challenge")
        return Response(AnnouncementSerializer(rows, many=True).data)

    @extend_schema(request=None, responses={200: TermsSerializer})
    @action(detail=True, methods=["get"])
    def terms(self, request, slug=None, format=None):
        """The terms / data-use agreement in force (404 when the challenge has none), and whether you accepted it."""
        challenge = self.get_object()
        terms = current_terms(challenge)
        if terms is None:
            raise Http404
        return Response(TermsSerializer(terms, context={"request": request}).data)

    @extend_schema(request=None, responses={200: TermsSerializer})
    @action(detail=True, methods=["post"], url_path="terms/accept", permission_classes=[permissions.IsAuthenticated])
    def accept_terms(self, request, slug=None, format=None):
        """Accept the terms in force (needed before downloading training data or submitting); kept with the version
        and the time. A new version must be accepted again."""
        challenge = self.get_object()
        terms = current_terms(challenge)
        if terms is None:
            raise Http404
        accept_current_terms(challenge, request.user)
        return Response(TermsSerializer(terms, context={"request": request}).data)


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("challenge", str, description="Only the phases of the challenge with this slug."),
]))
class PhaseViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = PhaseSerializer
    queryset = Phase.objects.none()  # for the schema; get_queryset() filters by visibility

    def get_queryset(self):
        phases = Phase.objects.select_related("challenge").filter(
            challenge__in=visible_challenges(self.request.user)
        )
        if self.request.query_params.get("challenge"):
            phases = phases.filter(challenge__slug=self.request.query_params["challenge"])
        return [phase for phase in phases if can_view_phase(phase, self.request.user)]

    def get_object(self):
        phase = get_object_or_404(Phase.objects.select_related("challenge"), pk=self.kwargs["pk"])
        if not can_view_phase(phase, self.request.user):
            raise Http404
        return phase

    @extend_schema(responses={200: LeaderboardSerializer, 400: FIELD_ERRORS}, parameters=[OpenApiParameter(
        "at", str, description="The leaderboard as it was at this date (YYYY-MM-DD: the end of that day) or ISO "
        "date-time; 404 when the phase had no leaderboard yet.",
    ), PART_PARAMETER])
    @action(detail=True, methods=["get"])
    def leaderboard(self, request, pk=None, format=None):
        phase = self.get_object()
        if not can_see_scores(phase, request.user):
            raise PermissionDenied("This phase's leaderboard is blind until its organizers reveal it.")
        kind = _requested_kind(phase, request)
        if "at" not in request.query_params:
            board = read_leaderboard(phase, kind)
            return Response({"phase": phase.pk, "part": board.snapshot.kind, "metrics": phase.leaderboard_metrics,
                             "rows": export_records(phase, board)})
        try:
            moment = parse_moment(request.query_params["at"])
        except ValueError as error:
            return Response({"at": [str(error)]}, status=400)
        at = leaderboard_at(phase, moment, kind)
        if at is None:
            return Response({"detail": "The phase had no leaderboard yet at that time."}, status=404)
        return Response({
            "phase": phase.pk, "part": at.snapshot.kind, "metrics": [metric["key"] for metric in at.snapshot.metrics],
            "rows": export_records(phase, at), "as_of": at.snapshot.created,
        })

    @extend_schema(responses={200: HistorySerializer, 400: FIELD_ERRORS}, parameters=[PART_PARAMETER])
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None, format=None):
        """Every entry's rank and ranking-metric value at each version of the phase's leaderboard, oldest first (a
        blind phase's history is as withheld as its leaderboard until the reveal, a split phase's final one too)."""
        phase = self.get_object()
        if not can_see_scores(phase, request.user):
            raise PermissionDenied("This phase's leaderboard is blind until its organizers reveal it.")
        history = phase_history(phase, kind=_requested_kind(phase, request))
        return Response({
            "metric": history.metric,
            "direction": history.direction,
            "times": history.times,
            "series": [
                {
                    "participant": series.participant,
                    "is_baseline": series.is_baseline,
                    "points": [
                        {"time": p.time, "rank": p.rank, "value": p.value, "submission": p.submission}
                        for p in series.points
                    ],
                }
                for series in history.series
            ],
        })

    @extend_schema(responses={(200, "application/zip"): bytes})
    @action(detail=True, methods=["get"], permission_classes=[permissions.IsAuthenticated])
    def inputs(self, request, pk=None, format=None):
        """Zip of the inputs of the cases this CSV phase scores (`cases.csv` + `inputs/<case_id>/...`, no labels), for
        registered participants: what predictions are made from."""
        phase = self.get_object()
        if not can_download_phase_inputs(phase, request.user):
            if phase.submission_kind != Phase.SubmissionKind.CSV or phase.dataset is None:
                raise Http404
            return Response({"detail": "Register for the challenge to download the phase's inputs."}, status=403)
        if not phase.dataset.exists():
            raise Http404
        return ranged_file_response(
            request, inputs_archive(phase.dataset), filename=f"{phase.challenge.slug}-{phase.slug}-inputs.zip"
        )

    @extend_schema(
        responses=inline_serializer(
            "Quota",
            {
                "limit": serializers.IntegerField(allow_null=True, help_text="Submissions per window; null: no limit."),
                "used": serializers.IntegerField(help_text="Counted submissions in the current window."),
                "remaining": serializers.IntegerField(allow_null=True, help_text="null: no limit."),
                "exhausted": serializers.BooleanField(),
                "period_hours": serializers.IntegerField(help_text="Length of the rolling window."),
                "next_frees_at": serializers.DateTimeField(
                    allow_null=True, help_text="When the oldest counted submission leaves the window."
                ),
                "total_limit": serializers.IntegerField(
                    allow_null=True, help_text="Submissions over the whole phase; null: no total limit."
                ),
                "total_used": serializers.IntegerField(help_text="Counted submissions over the whole phase."),
            },
        )
    )
    @action(detail=True, methods=["get"], permission_classes=[permissions.IsAuthenticated])
    def quota(self, request, pk=None, format=None):
        """How many submissions you may still make on this phase in the current window, and when the next frees up
        (the same rule the upload refusal applies)."""
        return Response(submission_quota(phase=self.get_object(), user=request.user).as_dict())

    @extend_schema(request={"multipart/form-data": UPLOAD_REQUEST, "application/json": SubmissionCreateSerializer},
                   responses={201: SubmissionSerializer})
    @action(
        detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser, JSONParser],
        permission_classes=[permissions.IsAuthenticated], serializer_class=SubmissionCreateSerializer,
    )
    @upload_limit(phase_limit_for_url)
    def submissions(self, request, pk=None, format=None):
        phase = self.get_object()
        data = request.data  # streamed through spinebench.uploads' handler with this phase's limit
        too_large = refusal_of(request)
        if too_large is not None:
            return Response(too_large.as_dict(), status=too_large.status)
        payload = SubmissionCreateSerializer(data=data)
        payload.is_valid(raise_exception=True)
        try:
            submission = create_submission(
                phase=phase, user=request.user, upload=payload.validated_data.get("file"),
                upload_session=payload.validated_data.get("upload"), comment=payload.validated_data.get("comment", ""),
                method_card=MethodCard(**{key: payload.validated_data.get(key, "") for key in METHOD_CARD_FIELDS}),
            )
        except SubmissionRefused as refusal:
            body = {"detail": str(refusal), "code": refusal.code}
            if refusal.code == "bad_upload":  # field-keyed: the `upload` session id was the problem
                body["upload"] = [str(refusal)]
            return Response(body, status=REFUSAL_STATUS.get(refusal.code, 400))
        submission.refresh_from_db()
        return Response(SubmissionSerializer(submission, context={"request": request}).data, status=201)


    @extend_schema(
        request=inline_serializer("ChosenSubmissionsRequest", {
            "submissions": serializers.ListField(
                child=serializers.IntegerField(), help_text="Ids of your succeeded submissions; [] clears the choice."
            ),
        }),
        responses={200: inline_serializer("ChosenSubmissions", {
            "max_chosen": serializers.IntegerField(help_text="How many you may choose."),
            "chosen": serializers.ListField(child=serializers.IntegerField()),
            "choosable": serializers.ListField(
                child=serializers.IntegerField(), help_text="Your succeeded submissions on this phase."
            ),
        }), 400: FIELD_ERRORS},
    )
    @action(detail=True, methods=["get", "post"], permission_classes=[permissions.IsAuthenticated])
    def chosen(self, request, pk=None, format=None):
        """Selection `chosen`: which of your succeeded submissions represent you (the best of them is ranked; none
        chosen: your best counts). POST replaces the choice; an unknown, failed or someone else's submission is a
        400 keyed by `submissions` that changes nothing."""
        phase = self.get_object()
        if not can_choose_submissions(phase, request.user):
            raise Http404
        if request.method == "POST":
            payload = ChosenRequest(data=request.data)
            payload.is_valid(raise_exception=True)
            try:
                choose_submissions(phase=phase, user=request.user, submission_pks=payload.validated_data["submissions"])
            except DjangoValidationError as error:
                return Response(error.message_dict, status=400)
        candidates = choosable_submissions(phase=phase, user=request.user).order_by("pk")
        return Response({
            "max_chosen": phase.max_chosen,
            "chosen": [submission.pk for submission in candidates if submission.chosen],
            "choosable": [submission.pk for submission in candidates],
        })


class ChosenRequest(serializers.Serializer):
    submissions = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=100)


class SubmissionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your own submissions (list); any submission you may see (detail): poll `status`, then read the results; PATCH
    edits the method card of your (or your team's) submission."""

    serializer_class = SubmissionSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    def get_queryset(self):
        if self.action == "list":
            if not self.request.user.is_authenticated:
                return Submission.objects.none()
            return Submission.objects.filter(creator=self.request.user).select_related("evaluation", "creator")
        return Submission.objects.select_related("phase__challenge", "evaluation", "creator")

    def get_object(self):
        submission = get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])
        if not can_view_submission(submission, self.request.user):
            raise Http404
        return submission

    @extend_schema(
        request=MethodCardSerializer,
        responses={200: SubmissionSerializer, 400: FIELD_ERRORS, 403: None, 404: None},
        description="Edit the method card (name, description, paper and code URLs; http(s) only) of your submission "
        "or your team's, also after the phase has closed. Fields left out keep their values. The leaderboard, its "
        "exports and this API show the new card at once; scores and ranks do not change.",
    )
    def partial_update(self, request, pk=None, format=None):
        submission = self.get_object()
        if not can_edit_method_card(submission, request.user):
            raise PermissionDenied("Only the submitter and their team mates may edit a submission's method card.")
        payload = MethodCardSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            edit_method_card(submission=submission, changes=dict(payload.validated_data))
        except DjangoValidationError as error:
            return Response(error.message_dict, status=400)
        submission.refresh_from_db()
        return Response(SubmissionSerializer(submission, context={"request": request}).data)

    @extend_schema(
        request=CancelSerializer,
        responses={200: SubmissionSerializer, 403: None, 404: None, 409: None},
        description="Cancel an unfinished submission (its creator or the challenge's organizers): final status "
        "`cancelled` with the reason in `error_message`; a running container is stopped. Cancelling a cancelled "
        "submission again answers 200 and changes nothing; a succeeded or failed one answers 409.",
    )
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAuthenticated])
    def cancel(self, request, pk=None, format=None):
        submission = self.get_object()
        if not can_cancel_submission(submission, request.user):
            raise PermissionDenied("Only the submitter and the challenge's organizers may cancel a submission.")
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            cancel_submission(submission, reason=serializer.validated_data.get("reason", ""), actor=request.user)
        except CancelRefused as refusal:
            return Response({"detail": str(refusal), "code": "finished"}, status=status.HTTP_409_CONFLICT)
        submission.refresh_from_db()
        return Response(SubmissionSerializer(submission, context={"request": request}).data)


    @extend_schema(
        parameters=[
            OpenApiParameter("with", int, required=True, description="Id of the other submission of the phase."),
            OpenApiParameter("metric", str, description="Per-case metric (default: the leaderboard's first one)."),
        ],
        responses={400: FIELD_ERRORS, 200: inline_serializer("Comparison", {
            "metric": serializers.CharField(), "direction": serializers.CharField(),
            "cases": serializers.ListField(child=serializers.CharField()),
            "first": serializers.ListField(child=serializers.FloatField()),
            "second": serializers.ListField(child=serializers.FloatField()),
            "differences": serializers.ListField(child=serializers.FloatField(), help_text="first - second"),
            "mean_difference": serializers.FloatField(allow_null=True),
            "first_better": serializers.IntegerField(), "second_better": serializers.IntegerField(),
            "p_value": serializers.FloatField(help_text="Two-sided Wilcoxon signed-rank p-value."),
            "metrics": serializers.ListField(child=serializers.CharField()),
        })},
    )
    @action(detail=True, methods=["get"])
    def compare(self, request, pk=None, format=None):
        """Per-case paired differences with another submission of the same phase and one Wilcoxon signed-rank
        p-value; only where the phase's labels are public, or for its organizers (404 otherwise)."""
        first = comparable_submission(pk, request.user)
        try:
            comparison = comparison_for(
                first, other=request.query_params.get("with", ""), metric=request.query_params.get("metric", ""),
                user=request.user,
            )
        except NotComparable as problem:
            return Response({problem.field: [str(problem)]}, status=400)
        return Response({**asdict(comparison), "mean_difference": comparison.mean_difference})


class DatasetViewSet(viewsets.GenericViewSet):
    queryset = Dataset.objects.select_related("challenge")
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={(200, "application/zip"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None, format=None):
        """Zip of a training dataset folder, labels included (approved participants). Test splits: 404."""
        dataset = get_object_or_404(Dataset.objects.select_related("challenge"), pk=pk)
        if dataset.is_hidden or dataset.challenge is None or not dataset.training_phase_links.exists():
            raise Http404  # a test split, or a training split no phase offers (any more): nothing to download
        if not can_download_dataset(dataset, request.user):
            return Response({"detail": "Register for the challenge to download its training data."}, status=403)
        if not dataset.exists():
            raise Http404
        return ranged_file_response(
            request, training_archive(dataset), filename=f"{dataset.challenge.slug}-{dataset.slug}.zip"
        )
