"""The teams API: teams of the challenges you see (create, invite, leave, hand leadership on), your invitations
(accept, decline; the leader withdraws) and the organizers' team-size cap. The same services and access rules as the
pages; a refusal is a 400 naming the field at fault (`{"who": ["..."], "code": "in_other_team"}`)."""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from spinebench.access import (
    can_answer_invitation,
    can_lead_team,
    can_see_team_invitations,
    can_set_team_cap,
    can_view_team,
    is_team_member,
    visible_challenges,
)

from . import services
from .models import Invitation, Team


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    joined = serializers.DateTimeField()


class TeamSerializer(serializers.ModelSerializer):
    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    leader = serializers.SlugRelatedField(slug_field="username", read_only=True)
    members = MemberSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = Team
        fields = ["id", "challenge", "name", "leader", "members", "created"]
        read_only_fields = fields


class TeamCreateSerializer(serializers.Serializer):
    challenge = serializers.SlugField(help_text="The challenge's slug.")
    name = serializers.CharField(max_length=100)


class InviteSerializer(serializers.Serializer):
    who = serializers.CharField(max_length=254, help_text="A username or an email address.")


class TransferSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=150, help_text="The username of the member who becomes the leader.")


class InvitationSerializer(serializers.ModelSerializer):
    team = serializers.PrimaryKeyRelatedField(read_only=True)
    team_name = serializers.CharField(source="team.name", read_only=True)
    challenge = serializers.CharField(source="team.challenge.slug", read_only=True)
    invitee = serializers.SlugRelatedField(slug_field="username", read_only=True)
    invited_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "team", "team_name", "challenge", "invitee", "invited_by", "status", "created", "responded_at"]
        read_only_fields = fields


class TeamCapSerializer(serializers.Serializer):
    max_team_size = serializers.IntegerField(min_value=1, allow_null=True, help_text="null: no cap.")


#: A refusal: the field at fault (or `__all__`) to its messages, and the reason's code.
REFUSAL = inline_serializer(
    "TeamRefusal",
    {"code": serializers.CharField(required=False, help_text="Why, e.g. in_other_team, team_full, email_unverified.")},
)


def _refusal(error: services.TeamError) -> Response:
    return Response(error.as_dict(), status=status.HTTP_400_BAD_REQUEST)


def _forbidden(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_403_FORBIDDEN)


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("challenge", str, description="Only the teams of the challenge with this slug."),
    OpenApiParameter("mine", bool, description="Only the teams you are in."),
]))
class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Teams of the challenges you may see, with their members."""

    serializer_class = TeamSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    queryset = Team.objects.none()  # for the schema; get_queryset() limits to visible challenges

    def get_queryset(self):
        teams = Team.objects.filter(challenge__in=visible_challenges(self.request.user)).select_related(
            "challenge", "leader"
        ).prefetch_related("memberships__user")
        params = self.request.query_params
        if params.get("challenge"):
            teams = teams.filter(challenge__slug=params["challenge"])
        if params.get("mine") in ("1", "true") and self.request.user.is_authenticated:
            teams = teams.filter(memberships__user=self.request.user)
        return teams

    def get_object(self) -> Team:
        team = get_object_or_404(Team.objects.select_related("challenge", "leader"), pk=self.kwargs["pk"])
        if not can_view_team(team, self.request.user):
            raise Http404
        return team

    @extend_schema(request=TeamCreateSerializer, responses={201: TeamSerializer, 400: REFUSAL})
    def create(self, request, format=None):
        """Create a team of a challenge you take part in; you become its leader and only member."""
        payload = TeamCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        challenge = visible_challenges(request.user).filter(slug=payload.validated_data["challenge"]).first()
        if challenge is None:
            return Response({"challenge": ["No such challenge."], "code": "unknown_challenge"}, status=400)
        try:
            team = services.create_team(challenge=challenge, user=request.user, name=payload.validated_data["name"])
        except services.TeamError as error:
            return _refusal(error)
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=InviteSerializer, responses={201: InvitationSerializer, 400: REFUSAL})
    @action(detail=True, methods=["post"])
    def invite(self, request, pk=None, format=None):
        """Invite a user by username or email (the leader)."""
        team = self.get_object()
        if not can_lead_team(team, request.user):
            return _forbidden("Only the team's leader invites.")
        payload = InviteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            invitation = services.invite(team=team, by=request.user, who=payload.validated_data["who"])
        except services.TeamError as error:
            return _refusal(error)
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=InvitationSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="invitations", permission_classes=[permissions.IsAuthenticated])
    def invitations(self, request, pk=None, format=None):
        """The team's pending invitations (its members and the challenge's organizers)."""
        team = self.get_object()
        if not can_see_team_invitations(team, request.user):
            return _forbidden("Only the team's members see its invitations.")
        pending = team.invitations.filter(status=Invitation.Status.PENDING).select_related("invitee", "invited_by")
        return Response(InvitationSerializer(pending, many=True).data)

    @extend_schema(request=None, responses={204: None, 400: REFUSAL})
    @action(detail=True, methods=["post"])
    def leave(self, request, pk=None, format=None):
        """Leave the team (the leader hands leadership on first while others remain)."""
        team = self.get_object()
        if not is_team_member(team, request.user):
            return _forbidden("You are not in this team.")
        try:
            services.leave(team=team, user=request.user)
        except services.TeamError as error:
            return _refusal(error)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=TransferSerializer, responses={200: TeamSerializer, 400: REFUSAL})
    @action(detail=True, methods=["post"])
    def transfer(self, request, pk=None, format=None):
        """Make another member the leader (the leader)."""
        team = self.get_object()
        if not can_lead_team(team, request.user):
            return _forbidden("Only the team's leader hands leadership on.")
        payload = TransferSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            team = services.transfer_leadership(team=team, to=payload.validated_data["to"])
        except services.TeamError as error:
            return _refusal(error)
        return Response(TeamSerializer(team).data)


class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Invitations you received or sent (as a team's leader); accept or decline yours, withdraw your team's."""

    serializer_class = InvitationSerializer
    permission_classes = [permissions.IsAuthenticated]
    queryset = Invitation.objects.none()  # for the schema; get_queryset() limits to the caller's

    def get_queryset(self):
        user = self.request.user
        return Invitation.objects.filter(Q(invitee=user) | Q(team__leader=user)).select_related(
            "team__challenge", "invitee", "invited_by"
        )

    def _answer(self, request, answer: str, allowed) -> Response:
        invitation = self.get_object()
        if not allowed(invitation, request.user):
            return _forbidden("This invitation is not yours to answer.")
        try:
            getattr(services, answer)(invitation=invitation)
        except services.TeamError as error:
            return _refusal(error)
        invitation.refresh_from_db()
        return Response(InvitationSerializer(invitation).data)

    @extend_schema(request=None, responses={200: InvitationSerializer, 400: REFUSAL})
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None, format=None):
        """Join the team (needs a verified email address and an approved registration)."""
        return self._answer(request, "accept", can_answer_invitation)

    @extend_schema(request=None, responses={200: InvitationSerializer, 400: REFUSAL})
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None, format=None):
        return self._answer(request, "decline", can_answer_invitation)

    @extend_schema(request=None, responses={200: InvitationSerializer, 400: REFUSAL})
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None, format=None):
        """Withdraw an invitation of your team (the leader)."""
        return self._answer(request, "withdraw", lambda invitation, user: can_lead_team(invitation.team, user))


SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The challenge's slug.")


class TeamCapViewSet(viewsets.ViewSet):
    """A challenge's cap on team size: anyone who sees the challenge reads it; its organizers set it."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    lookup_field = "slug"
    serializer_class = TeamCapSerializer

    def _challenge(self, slug):
        return get_object_or_404(visible_challenges(self.request.user), slug=slug)

    @extend_schema(parameters=[SLUG], responses=TeamCapSerializer)
    def retrieve(self, request, slug=None, format=None):
        return Response({"max_team_size": services.max_team_size(self._challenge(slug))})

    @extend_schema(parameters=[SLUG], request=TeamCapSerializer, responses=TeamCapSerializer)
    def update(self, request, slug=None, format=None):
        challenge = self._challenge(slug)
        if not can_set_team_cap(challenge, request.user):
            return _forbidden("Only the challenge's organizers set the team size.")
        payload = TeamCapSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.set_max_team_size(challenge=challenge, size=payload.validated_data["max_team_size"],
                                   actor=request.user)
        return Response({"max_team_size": services.max_team_size(challenge)})
