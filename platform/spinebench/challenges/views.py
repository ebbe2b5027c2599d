"""Public challenge pages (no account needed), registration and the organizers' approval of registrations."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from spinebench.access import visible_challenges, visible_phases

from .models import Registration
from .services import register


def challenge_list(request):
    return render(request, "challenges/list.html", {"challenges": visible_challenges(request.user)})


def _challenge(request, slug):
    return get_object_or_404(visible_challenges(request.user), slug=slug)


def challenge_detail(request, slug):
    challenge = _challenge(request, slug)
    registration = (
        challenge.registrations.filter(user=request.user).first() if request.user.is_authenticated else None
    )
    is_organizer = challenge.is_organizer(request.user)
    return render(
        request,
        "challenges/detail.html",
        {
            "challenge": challenge,
            "phases": visible_phases(challenge, request.user),
            "registration": registration,
            "is_organizer": is_organizer,
            "is_participant": challenge.is_participant(request.user),
            "pending": challenge.registrations.filter(status=Registration.Status.PENDING) if is_organizer else [],
            "datasets": challenge.datasets.filter(split="train"),
        },
    )


@login_required
@require_POST
def challenge_register(request, slug):
    challenge = _challenge(request, slug)
    registration = register(challenge, request.user)
    if registration.status == Registration.Status.APPROVED:
        messages.success(request, f"You are registered for {challenge.title}.")
    else:
        messages.info(request, f"Your registration for {challenge.title} waits for an organizer's approval.")
    return redirect(challenge)


@login_required
@require_POST
def registration_decide(request, slug, pk, decision):
    challenge = _challenge(request, slug)
    if not challenge.is_organizer(request.user):
        raise Http404
    registration = get_object_or_404(challenge.registrations, pk=pk)
    registration.status = Registration.Status.APPROVED if decision == "approve" else Registration.Status.REJECTED
    registration.save(update_fields=["status"])
    messages.success(request, f"{registration.user} {registration.status}.")
    return redirect(challenge)
