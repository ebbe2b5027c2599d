"""The dashboard's API: your submissions across challenges with the facts the dashboard shows (status, position and
score where the phase shows them, remaining submissions and when the next frees up, links)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.response import Response

from spinebench.access import scores_visible

from .dashboard import SUBMISSIONS_SHOWN, my_submissions


class DashboardQuotaSerializer(serializers.Serializer):
    limit = serializers.IntegerField(allow_null=True, help_text="Submissions per window; null: no limit.")
    used = serializers.IntegerField(help_text="Counted submissions in the window (your team's, in a team).")
    remaining = serializers.IntegerField(allow_null=True)
    exhausted = serializers.BooleanField()
    period_hours = serializers.IntegerField()
    next_frees_at = serializers.DateTimeField(allow_null=True)


class MySubmissionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    challenge = serializers.CharField(help_text="The challenge's slug.")
    phase = serializers.IntegerField()
    phase_title = serializers.CharField()
    team = serializers.IntegerField(allow_null=True, help_text="The team the submission belongs to.")
    status = serializers.CharField()
    is_final = serializers.BooleanField(help_text="succeeded, failed or cancelled: the status changes no more.")
    created = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    scores_shown = serializers.BooleanField(help_text="false: the phase withholds scores and positions for now.")
    position = serializers.IntegerField(
        allow_null=True, help_text="Rank on the latest leaderboard when this submission is your (team's) entry."
    )
    score = serializers.FloatField(allow_null=True, help_text="The phase's ranking metric.")
    quota = DashboardQuotaSerializer()
    url = serializers.CharField()
    logs_url = serializers.CharField(allow_null=True, help_text="The container runs and their logs.")
    resubmit_url = serializers.CharField(allow_null=True, help_text="The upload page, while the phase is open.")


class MySubmissionViewSet(viewsets.ViewSet):
    """Your newest submissions across challenges, newest first."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = MySubmissionSerializer

    @extend_schema(
        responses=MySubmissionSerializer(many=True),
        parameters=[OpenApiParameter("active", bool, description="Only submissions whose status is not final.")],
    )
    def list(self, request, format=None):
        facts = my_submissions(user=request.user, scores_visible=scores_visible, limit=SUBMISSIONS_SHOWN)
        if request.query_params.get("active") in ("1", "true"):
            facts = [item for item in facts if not item.is_final]
        return Response([item.as_dict() for item in facts])
