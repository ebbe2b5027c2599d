"""Team pages: a challenge's teams (create one, your invitations, the organizers' cap), a team's page (members,
invite, leave, hand leadership on) and the answers to an invitation. Each action is a POST that redirects back with a
message saying what happened or, for a refusal, why."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

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
from .forms import InviteForm, TeamCapForm, TeamCreateForm, TransferForm
from .models import Invitation, Team

ANSWERS = ("accept", "decline", "withdraw")


def _challenge(request, slug):
    return get_object_or_404(visible_challenges(request.user), slug=slug)


def _team(request, pk) -> Team:
    team = get_object_or_404(Team.objects.select_related("challenge", "leader"), pk=pk)
    if not can_view_team(team, request.user):
        raise Http404
    return team


def _refused(request, error: services.TeamError) -> None:
    messages.error(request, str(error))


def challenge_teams(request, slug):
    challenge = _challenge(request, slug)
    user = request.user
    context = {
        "challenge": challenge,
        "teams": Team.objects.filter(challenge=challenge).prefetch_related("memberships__user"),
        "my_team": services.team_of(challenge=challenge, user=user),
        "is_participant": challenge.is_participant(user),
        "invitations": (
            Invitation.objects.filter(invitee=user, team__challenge=challenge, status=Invitation.Status.PENDING)
            .select_related("team", "invited_by") if user.is_authenticated else []
        ),
        "max_team_size": services.max_team_size(challenge),
        "create_form": TeamCreateForm(),
        "cap_form": TeamCapForm(initial={"max_team_size": services.max_team_size(challenge)})
        if can_set_team_cap(challenge, user) else None,
    }
    return render(request, "teams/list.html", context)


@login_required
@require_POST
def team_create(request, slug):
    challenge = _challenge(request, slug)
    form = TeamCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("name", ["Give the team a name."])))
        return redirect("teams:list", slug=challenge.slug)
    try:
        team = services.create_team(challenge=challenge, user=request.user, name=form.cleaned_data["name"])
    except services.TeamError as error:
        _refused(request, error)
        return redirect("teams:list", slug=challenge.slug)
    messages.success(request, f"Team {team.name} created; invite your team mates here.")
    return redirect(team)


@login_required
@require_POST
def team_cap(request, slug):
    challenge = _challenge(request, slug)
    if not can_set_team_cap(challenge, request.user):
        raise Http404
    form = TeamCapForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("max_team_size", ["Give a whole number of 1 or more."])))
        return redirect("teams:list", slug=challenge.slug)
    size = form.cleaned_data["max_team_size"]
    services.set_max_team_size(challenge=challenge, size=size, actor=request.user)
    messages.success(request, f"Teams of {challenge.title}: at most {size} members." if size else
                     f"Teams of {challenge.title}: no cap on their size.")
    return redirect("teams:list", slug=challenge.slug)


def team_detail(request, pk):
    team = _team(request, pk)
    user = request.user
    context = {
        "team": team,
        "challenge": team.challenge,
        "memberships": team.memberships.select_related("user"),
        "is_member": is_team_member(team, user),
        "is_leader": can_lead_team(team, user),
        "invitations": (
            team.invitations.filter(status=Invitation.Status.PENDING).select_related("invitee")
            if can_see_team_invitations(team, user) else []
        ),
        "max_team_size": services.max_team_size(team.challenge),
        "invite_form": InviteForm(),
        "transfer_form": TransferForm(),
    }
    return render(request, "teams/detail.html", context)


@login_required
@require_POST
def team_invite(request, pk):
    team = _team(request, pk)
    if not can_lead_team(team, request.user):
        raise Http404
    form = InviteForm(request.POST)
    try:
        if not form.is_valid():
            raise services.TeamError("Name the user to invite (a username or an email address).", field="who")
        invitation = services.invite(team=team, by=request.user, who=form.cleaned_data["who"])
    except services.TeamError as error:
        _refused(request, error)
    else:
        messages.success(request, f"{invitation.invitee.get_username()} is invited.")
    return redirect(team)


@login_required
@require_POST
def team_leave(request, pk):
    team = _team(request, pk)
    if not is_team_member(team, request.user):
        raise Http404
    try:
        services.leave(team=team, user=request.user)
    except services.TeamError as error:
        _refused(request, error)
        return redirect(team)
    messages.success(request, f"You left team {team.name}.")
    return redirect("teams:list", slug=team.challenge.slug)


@login_required
@require_POST
def team_transfer(request, pk):
    team = _team(request, pk)
    if not can_lead_team(team, request.user):
        raise Http404
    try:
        team = services.transfer_leadership(team=team, to=request.POST.get("to", ""))
    except services.TeamError as error:
        _refused(request, error)
    else:
        messages.success(request, f"{team.leader.get_username()} now leads {team.name}.")
    return redirect(team)


@login_required
@require_POST
def invitation_answer(request, pk, answer):
    """accept / decline (the invitee) or withdraw (the team's leader)."""
    invitation = get_object_or_404(Invitation.objects.select_related("team__challenge"), pk=pk)
    allowed = can_lead_team(invitation.team, request.user) if answer == "withdraw" else (
        can_answer_invitation(invitation, request.user))
    if answer not in ANSWERS or not allowed:
        raise Http404
    try:
        if answer == "accept":
            services.accept(invitation=invitation)
            messages.success(request, f"You joined team {invitation.team.name}.")
            return redirect(invitation.team)
        getattr(services, answer)(invitation=invitation)
        messages.success(request, f"Invitation {'declined' if answer == 'decline' else 'withdrawn'}.")
    except services.TeamError as error:
        _refused(request, error)
    return redirect("teams:list", slug=invitation.team.challenge.slug)
