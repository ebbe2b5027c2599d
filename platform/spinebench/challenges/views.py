"""Public challenge pages (no account needed), registration and the organizers' approval of registrations."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from spinebench.access import can_download_phase_inputs, visible_challenges, visible_phases

from .browse import ChallengeFilters, browse_challenges, challenge_badges, listed_tasks, phase_window
from .forms import RegistrationForm
from .models import Registration
from .services import register
from .tabs import tab_context
from .templatetags.spinebench import summary
from .terms import accept_current_terms, current_terms, has_accepted_current_terms

TABS = [
    ("overview", "Overview"),
    ("phases", "Phases"),
    ("data", "Data"),
    ("leaderboards", "Leaderboards"),
    ("baselines", "Baselines"),
]
#: How many announcements the challenge page shows (the announcements page has them all).
RECENT_ANNOUNCEMENTS = 3
ANNOUNCEMENTS_PAGE_SIZE = 20


def challenge_list(request):
    """Search and filters as GET parameters (the page works without JavaScript); an htmx request gets only the
    results block, so typing in the search box filters live."""
    filters = ChallengeFilters.from_params(request.GET)
    now = timezone.now()
    cards = [
        {
            "title": challenge.title,
            "url": challenge.get_absolute_url(),
            "text": challenge.summary or summary(challenge.description),
            "badges": challenge_badges(challenge, challenge.listed_phases, now=now),
            "links": [(phase.title, phase.get_absolute_url()) for phase in challenge.listed_phases],
        }
        for challenge in browse_challenges(challenges=visible_challenges(request.user), filters=filters, now=now)
    ]
    context = {"cards": cards, "filters": filters, "tasks": listed_tasks(challenges=visible_challenges(request.user))}
    template = "challenges/_results.html" if request.htmx else "challenges/list.html"
    return render(request, template, context)


def _challenge(request, slug):
    return get_object_or_404(visible_challenges(request.user), slug=slug)


def challenge_detail(request, slug):
    challenge = _challenge(request, slug)
    tab = request.GET.get("tab") if request.GET.get("tab") in dict(TABS) else "overview"
    registration = (
        challenge.registrations.filter(user=request.user).first() if request.user.is_authenticated else None
    )
    is_organizer = challenge.is_organizer(request.user)
    phases = list(visible_phases(challenge, request.user).select_related("dataset_link__dataset", "challenge"))
    now = timezone.now()
    context = {
        "challenge": challenge,
        "tabs": TABS,
        "tab": tab,
        "phases": phases,
        "phase_windows": [(phase, phase_window(phase, now=now)) for phase in phases],
        "badges": challenge_badges(challenge, [phase for phase in phases if phase.is_public], now=now),
        "registration": registration,
        "is_organizer": is_organizer,
        "is_participant": challenge.is_participant(request.user),
        "pending": challenge.registrations.filter(status=Registration.Status.PENDING) if is_organizer else [],
        "datasets": challenge.datasets.filter(split="train", training_phase_links__isnull=False).distinct(),
        "terms_pending": request.user.is_authenticated and not has_accepted_current_terms(challenge, request.user),
        "registration_form": (
            RegistrationForm(challenge=challenge) if request.user.is_authenticated and registration is None else None
        ),
        "announcements": challenge.announcements.all()[:RECENT_ANNOUNCEMENTS],
        "announcement_count": challenge.announcements.count(),
    }
    if tab == "data":
        context["input_phases"] = [phase for phase in phases if can_download_phase_inputs(phase, request.user)]
    else:
        context.update(tab_context(tab, request=request, challenge=challenge, phases=phases))
    return render(request, "challenges/detail.html", context)


@login_required
def challenge_register(request, slug):
    """The registration form (the challenge's questions, if any); POST registers with the answers, or shows the form
    again with each refused answer's reason."""
    challenge = _challenge(request, slug)
    if challenge.registrations.filter(user=request.user).exists():
        return redirect(challenge)
    form = RegistrationForm(request.POST if request.method == "POST" else None, challenge=challenge)
    if request.method != "POST" or not form.is_valid():
        return render(request, "challenges/register.html", {"challenge": challenge, "form": form},
                      status=400 if form.errors else 200)
    try:
        registration = register(challenge, request.user, answers=form.cleaned_data)
    except ValidationError as error:
        form.add_service_errors(error)
        return render(request, "challenges/register.html", {"challenge": challenge, "form": form}, status=400)
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


def challenge_announcements(request, slug):
    """Every announcement of the challenge, newest first, a page at a time."""
    challenge = _challenge(request, slug)
    page = Paginator(challenge.announcements.all(), ANNOUNCEMENTS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "challenges/announcements.html", {"challenge": challenge, "page": page})


def challenge_logo(request, slug):
    """The challenge's logo (a PNG the site re-encoded itself), for whoever may see the challenge."""
    challenge = _challenge(request, slug)
    if not challenge.logo:
        raise Http404
    response = FileResponse(challenge.logo.open("rb"), content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    return response


def challenge_terms(request, slug):
    """The terms in force (anyone who may see the challenge may read them); a signed-in user accepts them with POST,
    recorded with the version and the time."""
    challenge = _challenge(request, slug)
    terms = current_terms(challenge)
    if terms is None:
        raise Http404
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{settings.LOGIN_URL}?next={request.path}")
        accept_current_terms(challenge, request.user)
        messages.success(request, f"You accepted version {terms.version} of the terms of {challenge.title}.")
        return redirect(challenge)
    accepted = request.user.is_authenticated and terms.acceptances.filter(user=request.user).first()
    return render(request, "challenges/terms.html", {"challenge": challenge, "terms": terms, "accepted": accepted})
