"""The console's REST API under /api/organizers/: the same services as the pages, the same access rules
(spinebench.access). A challenge the caller does not manage answers 404, as on the pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiRequest, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from spinebench.access import can_create_challenge, get_managed_challenge, managed_challenges
from spinebench.challenges.bundle_schema import BundleError
from spinebench.challenges.models import Announcement, Challenge, Phase, RegistrationQuestion
from spinebench.uploads.handlers import refusal_of
from spinebench.uploads.limits import UploadRefused
from spinebench.uploads.zips import ZipRefused

from . import announcements as announcement_services
from . import phases as phase_services
from . import questions as question_services
from . import services
from .bundle_imports import start_bundle_import
from .images import reencode_image
from .models import BundleImport
from .questions import QUESTION_FIELDS
from .registrations import decide_registrations, participants_csv
from .serializers import (
    AuditEventSerializer,
    BundleImportSerializer,
    BundleUploadSerializer,
    ManagedAnnouncementSerializer,
    ManagedChallengeSerializer,
    ManagedPhaseSerializer,
    ManagedQuestionSerializer,
    ManagedRegistrationSerializer,
    MoveSerializer,
    OrganizerInviteSerializer,
    RegistrationDecisionSerializer,
    TermsPublishSerializer,
    TermsVersionSerializer,
)
from .services import CHALLENGE_FIELDS

#: Multipart only; the part must be a file (with a file name), as a browser's file input sends it.
BUNDLE_REQUEST = OpenApiRequest(
    BundleUploadSerializer,
    encoding={"bundle": {"headers": {"Content-Disposition": {
        "schema": {"type": "string"}, "example": 'form-data; name="bundle"; filename="bundle.zip"',
    }}}},
)


def _service(call: Callable[[], Any]) -> Any:
    """Run a service; its ValidationError becomes DRF's 400 with the messages keyed by field."""
    try:
        return call()
    except DjangoValidationError as error:
        detail = error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
        raise serializers.ValidationError(detail) from None


def _logo(payload: dict) -> Any:
    upload = payload.get("logo")
    return _service(lambda: reencode_image(upload)) if upload else None


class ManagedChallengeViewSet(viewsets.GenericViewSet):
    """Challenges you organize: create (you become the organizer), read, edit; their organizers, phases,
    registrations and audit trail."""

    serializer_class = ManagedChallengeSerializer
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    lookup_field = "slug"
    queryset = Challenge.objects.none()  # for the schema; get_object() asks the access policy

    def get_queryset(self):
        return managed_challenges(self.request.user).order_by("slug")

    def get_object(self):
        return get_managed_challenge(self.request.user, self.kwargs["slug"])

    def list(self, request, format=None):
        return Response(self.get_serializer(self.get_queryset(), many=True).data)

    def create(self, request, format=None):
        if not can_create_challenge(request.user):
            raise PermissionDenied("Creating challenges is limited to a group of users on this site.")
        payload = self.get_serializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = {name: payload.validated_data[name] for name in CHALLENGE_FIELDS if name in payload.validated_data}
        logo = _logo(payload.validated_data)
        challenge = _service(lambda: services.create_challenge(creator=request.user, data=data, logo=logo))
        return Response(self.get_serializer(challenge).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, slug=None, format=None):
        return Response(self.get_serializer(self.get_object()).data)

    def partial_update(self, request, slug=None, format=None):
        challenge = self.get_object()
        payload = self.get_serializer(challenge, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = {name: payload.validated_data[name] for name in CHALLENGE_FIELDS if name in payload.validated_data}
        logo = _logo(payload.validated_data)
        challenge = _service(lambda: services.update_challenge(
            challenge=challenge, actor=request.user, data=data, logo=logo,
            remove_logo=payload.validated_data.get("remove_logo", False),
        ))
        return Response(self.get_serializer(challenge).data)

    @extend_schema(request=OrganizerInviteSerializer, responses={200: ManagedChallengeSerializer})
    @action(detail=True, methods=["post"], url_path="organizers")
    def add_organizer(self, request, slug=None, format=None):
        """Add a co-organizer by username or email."""
        challenge = self.get_object()
        payload = OrganizerInviteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        _service(lambda: services.add_organizer(
            challenge=challenge, actor=request.user, identifier=payload.validated_data["user"]
        ))
        return Response(self.get_serializer(challenge).data)

    @extend_schema(request=None, responses={200: ManagedChallengeSerializer})
    @action(detail=True, methods=["post"], url_path=r"organizers/(?P<username>[^/]+)/remove")
    def remove_organizer(self, request, slug=None, username=None, format=None):
        """Remove an organizer (never the last one)."""
        challenge = self.get_object()
        user = get_object_or_404(challenge.organizers.all(), username=username)
        _service(lambda: services.remove_organizer(challenge=challenge, actor=request.user, user=user))
        return Response(self.get_serializer(challenge).data)

    @extend_schema(methods=["GET"], request=None, responses={200: ManagedPhaseSerializer(many=True)})
    @extend_schema(methods=["POST"], request=ManagedPhaseSerializer, responses={201: ManagedPhaseSerializer})
    @action(detail=True, methods=["get", "post"], serializer_class=ManagedPhaseSerializer)
    def phases(self, request, slug=None, format=None):
        """The challenge's phases in order, every setting included (hidden ones too); POST adds one at the end."""
        challenge = self.get_object()
        if request.method == "GET":
            return Response(ManagedPhaseSerializer(challenge.phases.all(), many=True).data)
        payload = ManagedPhaseSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        phase = _service(lambda: phase_services.create_phase(
            challenge=challenge, actor=request.user, data=dict(payload.validated_data)
        ))
        return Response(ManagedPhaseSerializer(phase).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ManagedRegistrationSerializer(many=True)}, parameters=[
        OpenApiParameter("status", str, description="Only registrations with this status (pending, approved, ...)."),
    ])
    @action(detail=True, methods=["get"])
    def registrations(self, request, slug=None, format=None):
        rows = self.get_object().registrations.select_related("user").prefetch_related("answers__question")
        rows = rows.order_by("-created")
        if request.query_params.get("status"):
            rows = rows.filter(status=request.query_params["status"])
        return Response(ManagedRegistrationSerializer(rows, many=True).data)

    @extend_schema(request=RegistrationDecisionSerializer, responses={200: ManagedRegistrationSerializer(many=True)})
    @action(detail=True, methods=["post"], url_path="registrations/decide")
    def decide_registrations(self, request, slug=None, format=None):
        """Approve or reject several registrations at once, with an optional message sent with the notice."""
        challenge = self.get_object()
        payload = RegistrationDecisionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        decided = _service(lambda: decide_registrations(
            challenge=challenge, actor=request.user, registration_pks=payload.validated_data["registrations"],
            decision=payload.validated_data["decision"], message=payload.validated_data["message"],
        ))
        return Response(ManagedRegistrationSerializer(decided, many=True).data)

    @extend_schema(methods=["GET"], request=None, responses={200: TermsVersionSerializer(many=True)})
    @extend_schema(methods=["POST"], request=TermsPublishSerializer, responses={201: TermsVersionSerializer})
    @action(detail=True, methods=["get", "post"], url_path="terms")
    def terms(self, request, slug=None, format=None):
        """The versions of the terms, newest first, with how many accepted each; POST publishes a new version (every
        participant accepts it again before downloading or submitting)."""
        challenge = self.get_object()
        if request.method == "GET":
            versions = challenge.terms_versions.annotate(accepted=Count("acceptances")).order_by("-version")
            return Response(TermsVersionSerializer(versions, many=True).data)
        payload = TermsPublishSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        terms = _service(lambda: services.publish_challenge_terms(
            challenge=challenge, actor=request.user, text=payload.validated_data["text"]
        ))
        terms.accepted = 0
        return Response(TermsVersionSerializer(terms).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "text/csv"): bytes})
    @action(detail=True, methods=["get"], url_path="registrations/export")
    def export_registrations(self, request, slug=None, format=None):
        """The participant list as CSV (username, email, status, registered_at, decision_message); cells that a
        spreadsheet would read as a formula start with an apostrophe."""
        challenge = self.get_object()
        response = HttpResponse(participants_csv(challenge), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{challenge.slug}-participants.csv"'
        return response

    @extend_schema(methods=["GET"], request=None, responses={200: ManagedQuestionSerializer(many=True)})
    @extend_schema(methods=["POST"], request=ManagedQuestionSerializer, responses={201: ManagedQuestionSerializer})
    @action(detail=True, methods=["get", "post"], serializer_class=ManagedQuestionSerializer)
    def questions(self, request, slug=None, format=None):
        """The registration questions in order (removed ones too, with `removed_at`: their answers are kept); POST
        adds one at the end."""
        challenge = self.get_object()
        if request.method == "GET":
            rows = challenge.registration_questions.order_by("removed_at", "order", "pk")
            return Response(ManagedQuestionSerializer(rows, many=True).data)
        payload = ManagedQuestionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = {name: payload.validated_data[name] for name in QUESTION_FIELDS if name in payload.validated_data}
        question = _service(lambda: question_services.create_question(
            challenge=challenge, actor=request.user, data=data
        ))
        return Response(ManagedQuestionSerializer(question).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], request=None, responses={200: ManagedAnnouncementSerializer(many=True)})
    @extend_schema(methods=["POST"], request=ManagedAnnouncementSerializer,
                   responses={201: ManagedAnnouncementSerializer})
    @action(detail=True, methods=["get", "post"], serializer_class=ManagedAnnouncementSerializer)
    def announcements(self, request, slug=None, format=None):
        """The announcements, newest first; POST posts one (with `email_participants`: every approved participant is
        notified once, in the background, by email as their preferences allow)."""
        challenge = self.get_object()
        if request.method == "GET":
            rows = challenge.announcements.select_related("challenge", "author")
            return Response(ManagedAnnouncementSerializer(rows, many=True).data)
        payload = ManagedAnnouncementSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        announcement = _service(lambda: announcement_services.post_announcement(
            challenge=challenge, actor=request.user,
            data={name: payload.validated_data[name] for name in ("title", "body")},
            email_participants=payload.validated_data.get("email_participants", False),
        ))
        return Response(ManagedAnnouncementSerializer(announcement).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: AuditEventSerializer(many=True)}, parameters=[
        OpenApiParameter("action", str, description="Only events of this action, e.g. phase.update."),
    ])
    @action(detail=True, methods=["get"])
    def audit(self, request, slug=None, format=None):
        """The challenge's audit trail, newest first (at most 500 events)."""
        events = self.get_object().audit_events.all()
        if request.query_params.get("action"):
            events = events.filter(action=request.query_params["action"])
        return Response(AuditEventSerializer(events[:500], many=True).data)


class ManagedPhaseViewSet(viewsets.GenericViewSet):
    """One phase of a challenge you organize: read, edit (PATCH any subset of fields), move in the order."""

    serializer_class = ManagedPhaseSerializer
    permission_classes = [permissions.IsAuthenticated]
    queryset = Phase.objects.none()  # for the schema

    def get_object(self):
        phase = get_object_or_404(Phase.objects.select_related("challenge"), pk=self.kwargs["pk"])
        get_managed_challenge(self.request.user, phase.challenge.slug)  # 404 unless managed
        return phase

    def retrieve(self, request, pk=None, format=None):
        return Response(self.get_serializer(self.get_object()).data)

    def partial_update(self, request, pk=None, format=None):
        phase = self.get_object()
        payload = self.get_serializer(phase, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        phase = _service(lambda: phase_services.update_phase(
            phase=phase, actor=request.user, data=dict(payload.validated_data)
        ))
        return Response(self.get_serializer(phase).data)

    @extend_schema(request=MoveSerializer, responses={200: ManagedPhaseSerializer(many=True)})
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None, format=None):
        """Move the phase one place up or down; answers the challenge's phases in their new order."""
        phase = self.get_object()
        payload = MoveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        phase_services.move_phase(phase=phase, actor=request.user,
                                  offset=-1 if payload.validated_data["direction"] == "up" else 1)
        return Response(self.get_serializer(phase.challenge.phases.all(), many=True).data)


class ManagedQuestionViewSet(viewsets.GenericViewSet):
    """One registration question of a challenge you organize: read, edit (answers already given are kept; an
    answered question keeps its kind), remove (an answered one is archived with its answers), move."""

    serializer_class = ManagedQuestionSerializer
    permission_classes = [permissions.IsAuthenticated]
    queryset = RegistrationQuestion.objects.none()  # for the schema

    def get_object(self):
        question = get_object_or_404(RegistrationQuestion.objects.select_related("challenge"), pk=self.kwargs["pk"])
        get_managed_challenge(self.request.user, question.challenge.slug)  # 404 unless managed
        return question

    def retrieve(self, request, pk=None, format=None):
        return Response(self.get_serializer(self.get_object()).data)

    def partial_update(self, request, pk=None, format=None):
        question = self.get_object()
        payload = self.get_serializer(question, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = {name: payload.validated_data[name] for name in QUESTION_FIELDS if name in payload.validated_data}
        question = _service(lambda: question_services.update_question(question=question, actor=request.user,
                                                                      data=data))
        return Response(self.get_serializer(question).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None, format=None):
        _service(lambda: question_services.remove_question(question=self.get_object(), actor=request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=MoveSerializer, responses={200: ManagedQuestionSerializer(many=True)})
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None, format=None):
        """Move the question one place up or down; answers the asked questions in their new order."""
        question = self.get_object()
        payload = MoveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        question_services.move_question(question=question, actor=request.user,
                                        offset=-1 if payload.validated_data["direction"] == "up" else 1)
        rows = question.challenge.registration_questions.filter(removed_at__isnull=True).order_by("order", "pk")
        return Response(self.get_serializer(rows, many=True).data)


class ManagedAnnouncementViewSet(viewsets.GenericViewSet):
    """One announcement of a challenge you organize: read, edit (participants are not notified again), delete."""

    serializer_class = ManagedAnnouncementSerializer
    permission_classes = [permissions.IsAuthenticated]
    queryset = Announcement.objects.none()  # for the schema

    def get_object(self):
        announcement = get_object_or_404(
            Announcement.objects.select_related("challenge", "author"), pk=self.kwargs["pk"]
        )
        get_managed_challenge(self.request.user, announcement.challenge.slug)  # 404 unless managed
        return announcement

    def retrieve(self, request, pk=None, format=None):
        return Response(self.get_serializer(self.get_object()).data)

    def partial_update(self, request, pk=None, format=None):
        announcement = self.get_object()
        payload = self.get_serializer(announcement, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        if payload.validated_data.get("email_participants", announcement.email_participants) \
                != announcement.email_participants:
            raise ValidationError({"email_participants": ["Chosen when the announcement is posted; an edit never "
                                                          "notifies (post a new announcement to tell participants)."]})
        data = {name: payload.validated_data[name] for name in ("title", "body") if name in payload.validated_data}
        announcement = _service(lambda: announcement_services.update_announcement(
            announcement=announcement, actor=request.user, data=data
        ))
        return Response(self.get_serializer(announcement).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None, format=None):
        announcement_services.delete_announcement(announcement=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BundleImportStatusViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One of your bundle imports: status, stage, progress (0-100), the error of a failed one, the challenge."""

    serializer_class = BundleImportSerializer
    permission_classes = [permissions.IsAuthenticated]
    queryset = BundleImport.objects.none()  # for the schema; get_queryset() keeps the caller's own

    def get_queryset(self):
        user = self.request.user
        jobs = BundleImport.objects.select_related("challenge")
        return jobs if user.is_superuser else jobs.filter(uploader=user)


class BundleImportViewSet(viewsets.GenericViewSet):
    """Create a challenge from a bundle zip (`POST /api/challenges/import/`, multipart field `bundle`): checked at
    once under the untrusted profile (400 with the key at fault), then imported in the background (202 with the
    job); poll `GET /api/organizers/imports/{id}/` for its progress. You become the challenge's organizer."""

    serializer_class = BundleImportSerializer
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser]
    queryset = BundleImport.objects.none()

    @extend_schema(request={"multipart/form-data": BUNDLE_REQUEST}, responses={202: BundleImportSerializer})
    def create(self, request, format=None):
        if not can_create_challenge(request.user):
            raise PermissionDenied("Creating challenges is limited to a group of users on this site.")
        refusal = refusal_of(request)
        if refusal is not None:
            return Response(refusal.as_dict(), status=refusal.status)
        payload = BundleUploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            job = start_bundle_import(upload=payload.validated_data["bundle"], uploader=request.user)
        except UploadRefused as refused:
            return Response(refused.as_dict(), status=refused.status)
        except (BundleError, ZipRefused) as error:
            raise serializers.ValidationError({"bundle": [str(error)]}) from None
        return Response(BundleImportSerializer(job).data, status=status.HTTP_202_ACCEPTED)
