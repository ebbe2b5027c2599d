"""The organizers' console pages: thin views that ask the access policy, call a service and render. Every page under
`/challenges/<slug>/manage/` answers 404 to anyone who does not manage the challenge (spinebench.access)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from spinebench.access import (
    can_create_challenge,
    can_view_bundle_import,
    get_managed_challenge,
    get_managed_phase,
    managed_challenges,
)
from spinebench.challenges import registry
from spinebench.challenges.bundle_schema import BundleError
from spinebench.challenges.models import Registration
from spinebench.challenges.templatetags.spinebench import markdown
from spinebench.challenges.terms import current_terms
from spinebench.submissions.parts import phase_parts
from spinebench.uploads.handlers import refusal_of
from spinebench.uploads.limits import UploadRefused
from spinebench.uploads.zips import ZipRefused

from . import announcements as announcement_services
from . import phases as phase_services
from . import questions as question_services
from . import services
from .bundle_imports import start_bundle_import
from .forms import (
    AnnouncementForm,
    AuditFilterForm,
    BundleUploadForm,
    ChallengeForm,
    OrganizerInviteForm,
    PhaseForm,
    QuestionForm,
    RegistrationDecisionForm,
    TermsForm,
    add_errors,
)
from .models import BundleImport
from .registrations import decide_registrations, participants_csv, registration_table

AUDIT_PAGE_SIZE = 50


def _console(request, challenge, section: str, template: str, context: dict, status: int = 200):
    context = {"challenge": challenge, "section": section, **context}
    return render(request, template, context, status=status)


@login_required
def index(request):
    """The challenges the user manages, and the way to create one."""
    return render(request, "organizers/index.html", {
        "challenges": managed_challenges(request.user).order_by("title"),
        "can_create": can_create_challenge(request.user),
    })


@login_required
def preview(request):
    """The markdown description as the challenge page will show it (raw HTML stripped); htmx posts the text area."""
    return render(request, "organizers/_preview.html", {"html": markdown(request.POST.get("description", ""))})


@login_required
def challenge_create(request):
    if not can_create_challenge(request.user):
        raise PermissionDenied("Creating challenges is limited to a group of users on this site.")
    form = ChallengeForm(request.POST or None, request.FILES or None, preview_url=reverse("organizers:preview"))
    if request.method == "POST" and form.is_valid():
        try:
            challenge = services.create_challenge(
                creator=request.user, data=form.service_data(), logo=form.cleaned_data["logo"]
            )
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"Challenge {challenge.title} created; you are its organizer.")
            return redirect("organizers:overview", slug=challenge.slug)
    return render(request, "organizers/challenge_create.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def bundle_import(request):
    """Create (or update one of one's own) challenges from a bundle zip; the import runs in the background."""
    if not can_create_challenge(request.user):
        raise PermissionDenied("Creating challenges is limited to a group of users on this site.")
    form = BundleUploadForm(request.POST or None, request.FILES or None)
    refusal = refusal_of(request)
    if refusal is not None:
        form.add_error("bundle", str(refusal))
    elif request.method == "POST" and form.is_valid():
        try:
            job = start_bundle_import(upload=form.cleaned_data["bundle"], uploader=request.user)
        except (BundleError, ZipRefused, UploadRefused) as error:
            form.add_error("bundle", str(error))
        else:
            return redirect("organizers:import-status", pk=job.pk)
    return render(request, "organizers/import.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def bundle_import_status(request, pk):
    """The job's progress; htmx polls the status block while it runs."""
    job = get_object_or_404(BundleImport, pk=pk)
    if not can_view_bundle_import(job, request.user):
        raise Http404
    template = "organizers/_import_status.html" if request.htmx else "organizers/import_status.html"
    return render(request, template, {"job": job})


@login_required
def overview(request, slug):
    challenge = get_managed_challenge(request.user, slug)
    return _console(request, challenge, "overview", "organizers/overview.html", {
        "phases": challenge.phases.all(),
        "pending": challenge.registrations.filter(status=Registration.Status.PENDING).count(),
        "registrations": challenge.registrations.count(),
        "recent": challenge.audit_events.all()[:10],
    })


@login_required
def challenge_edit(request, slug):
    challenge = get_managed_challenge(request.user, slug)
    form = ChallengeForm(
        request.POST or None, request.FILES or None, instance=challenge, preview_url=reverse("organizers:preview")
    )
    if request.method == "POST" and form.is_valid():
        try:
            challenge = services.update_challenge(
                challenge=challenge, actor=request.user, data=form.service_data(), logo=form.cleaned_data["logo"],
                remove_logo=form.cleaned_data.get("remove_logo", False),
            )
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, "Challenge saved.")
            return redirect("organizers:challenge", slug=challenge.slug)
    challenge.refresh_from_db()  # the form may have written unsaved values onto the instance
    return _console(request, challenge, "challenge", "organizers/challenge_edit.html", {"form": form},
                    status=400 if form.errors else 200)


@login_required
def organizers(request, slug):
    challenge = get_managed_challenge(request.user, slug)
    form = OrganizerInviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.add_organizer(challenge=challenge, actor=request.user, identifier=form.cleaned_data["user"])
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{user.get_username()} is now an organizer.")
            return redirect("organizers:organizers", slug=slug)
    return _console(request, challenge, "challenge", "organizers/organizers.html", {
        "form": form, "organizers": challenge.organizers.order_by("username"),
    }, status=400 if form.errors else 200)


@login_required
@require_POST
def organizer_remove(request, slug, user_pk):
    challenge = get_managed_challenge(request.user, slug)
    user = get_object_or_404(get_user_model(), pk=user_pk)
    try:
        services.remove_organizer(challenge=challenge, actor=request.user, user=user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{user.get_username()} is no longer an organizer.")
    if user == request.user and not challenge.is_organizer(request.user):
        return redirect("organizers:index")
    return redirect("organizers:organizers", slug=slug)


@login_required
def phase_list(request, slug):
    challenge = get_managed_challenge(request.user, slug)
    return _console(request, challenge, "phases", "organizers/phases.html", {"phases": challenge.phases.all()})


def _phase_form_page(request, challenge, form, phase=None):
    task = form["task"].value() or (phase.task if phase else "")
    metrics = registry.metric_keys(task) if task in registry.task_ids() else []
    parts = phase_parts(phase) if phase is not None and phase.dataset is not None else None
    public_part = parts["public"] if parts else None
    return _console(request, challenge, "phases", "organizers/phase_edit.html", {
        "form": form, "phase": phase, "metrics": metrics, "public_part": public_part,
    }, status=400 if form.errors else 200)


@login_required
def phase_create(request, slug):
    challenge = get_managed_challenge(request.user, slug)
    form = PhaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            phase = phase_services.create_phase(challenge=challenge, actor=request.user, data=form.service_data())
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"Phase {phase.title} created.")
            return redirect("organizers:phases", slug=slug)
    return _phase_form_page(request, challenge, form)


@login_required
def phase_edit(request, slug, pk):
    phase = get_managed_phase(request.user, slug, pk)
    form = PhaseForm(request.POST or None, instance=phase)
    if request.method == "POST" and form.is_valid():
        try:
            phase = phase_services.update_phase(phase=phase, actor=request.user, data=form.service_data())
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"Phase {phase.title} saved.")
            return redirect("organizers:phases", slug=slug)
    phase.refresh_from_db()
    return _phase_form_page(request, phase.challenge, form, phase)


@login_required
@require_POST
def phase_move(request, slug, pk, direction):
    phase = get_managed_phase(request.user, slug, pk)
    offsets = {"up": -1, "down": 1}
    if direction not in offsets:
        messages.error(request, "A phase moves up or down.")
    else:
        phase_services.move_phase(phase=phase, actor=request.user, offset=offsets[direction])
    return redirect("organizers:phases", slug=slug)


@login_required
def registrations(request, slug):
    challenge = get_managed_challenge(request.user, slug)
    form = RegistrationDecisionForm(request.POST or None, challenge=challenge)
    if request.method == "POST" and form.is_valid():
        try:
            decided = decide_registrations(
                challenge=challenge, actor=request.user,
                registration_pks=[registration.pk for registration in form.cleaned_data["registrations"]],
                decision=form.cleaned_data["decision"], message=form.cleaned_data["message"],
            )
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{len(decided)} registration{'s' if len(decided) != 1 else ''} updated.")
            return redirect("organizers:registrations", slug=slug)
    questions, rows = registration_table(challenge)
    return _console(request, challenge, "registrations", "organizers/registrations.html", {
        "form": form, "rows": rows, "questions": questions,
    }, status=400 if form.errors else 200)


@login_required
def terms(request, slug):
    challenge = get_managed_challenge(request.user, slug)
    current = current_terms(challenge)
    form = TermsForm(request.POST or None, initial={"text": current.text if current else ""})
    if request.method == "POST" and form.is_valid():
        try:
            published = services.publish_challenge_terms(
                challenge=challenge, actor=request.user, text=form.cleaned_data["text"]
            )
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"Version {published.version} of the terms is in force.")
            return redirect("organizers:terms", slug=slug)
    versions = challenge.terms_versions.annotate(accepted=Count("acceptances")).order_by("-version")
    return _console(request, challenge, "registrations", "organizers/terms.html", {
        "form": form, "current": current, "versions": versions,
    }, status=400 if form.errors else 200)


@login_required
def registrations_csv(request, slug):
    challenge = get_managed_challenge(request.user, slug)
    response = HttpResponse(participants_csv(challenge), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{challenge.slug}-participants.csv"'
    return response


@login_required
def audit(request, slug):
    challenge = get_managed_challenge(request.user, slug)
    events = challenge.audit_events.all()
    actions = sorted(set(events.values_list("action", flat=True)))
    form = AuditFilterForm(request.GET or None, actions=actions)
    if form.is_valid() and form.cleaned_data["action"]:
        events = events.filter(action=form.cleaned_data["action"])
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return _console(request, challenge, "audit", "organizers/audit.html", {"form": form, "page": page})


def _submitted(request, form, save) -> tuple[bool, object]:
    """(True, what `save` returned) after a valid POST of `form` that the service (`save`, called with nothing)
    accepted; (False, None) when nothing was posted, the form is invalid, or the service refused it (its errors are
    then on the form, for the page to show with status 400)."""
    if request.method != "POST" or not form.is_valid():
        return False, None
    try:
        return True, save()
    except ValidationError as error:
        add_errors(form, error)
        return False, None


@login_required
def questions(request, slug):
    """The registration questions in the order they are asked, and the form that adds one."""
    challenge = get_managed_challenge(request.user, slug)
    form = QuestionForm(request.POST or None)
    saved, question = _submitted(request, form, lambda: question_services.create_question(
        challenge=challenge, actor=request.user, data=form.service_data()))
    if saved:
        messages.success(request, f"Question “{question.label}” added.")
        return redirect("organizers:questions", slug=slug)
    listed = challenge.registration_questions.annotate(answer_count=Count("answers")).order_by("order", "pk")
    return _console(request, challenge, "registrations", "organizers/questions.html", {
        "form": form, "asked": [q for q in listed if q.removed_at is None],
        "archived": [q for q in listed if q.removed_at is not None],
    }, status=400 if form.errors else 200)


def _managed_question(request, slug, pk):
    challenge = get_managed_challenge(request.user, slug)
    return get_object_or_404(challenge.registration_questions.select_related("challenge"), pk=pk)


@login_required
def question_edit(request, slug, pk):
    question = _managed_question(request, slug, pk)
    form = QuestionForm(request.POST or None, instance=question)
    saved, _ = _submitted(request, form, lambda: question_services.update_question(
        question=question, actor=request.user, data=form.service_data()))
    if saved:
        messages.success(request, "Question saved; stored answers are kept as they were given.")
        return redirect("organizers:questions", slug=slug)
    question.refresh_from_db()
    return _console(request, question.challenge, "registrations", "organizers/question_edit.html", {
        "form": form, "question": question,
    }, status=400 if form.errors else 200)


@login_required
@require_POST
def question_remove(request, slug, pk):
    question = _managed_question(request, slug, pk)
    try:
        deleted = question_services.remove_question(question=question, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Question deleted." if deleted else
                         "Question removed from the form; its answers are kept in the list and the export.")
    return redirect("organizers:questions", slug=slug)


@login_required
@require_POST
def question_move(request, slug, pk, direction):
    question = _managed_question(request, slug, pk)
    offsets = {"up": -1, "down": 1}
    if direction not in offsets:
        messages.error(request, "A question moves up or down.")
    else:
        question_services.move_question(question=question, actor=request.user, offset=offsets[direction])
    return redirect("organizers:questions", slug=slug)


@login_required
def announcements(request, slug):
    """The challenge's announcements, newest first, and the form that posts one."""
    challenge = get_managed_challenge(request.user, slug)
    form = AnnouncementForm(request.POST or None)
    saved, _ = _submitted(request, form, lambda: announcement_services.post_announcement(
        challenge=challenge, actor=request.user,
        data={"title": form.cleaned_data["title"], "body": form.cleaned_data["body"]},
        email_participants=form.cleaned_data["email_participants"]))
    if saved:
        notified = form.cleaned_data["email_participants"]
        messages.success(request, "Announcement posted on the challenge page."
                         + (" The approved participants are being notified." if notified else ""))
        return redirect("organizers:announcements", slug=slug)
    return _console(request, challenge, "announcements", "organizers/announcements.html", {
        "form": form, "announcements": challenge.announcements.select_related("author"),
    }, status=400 if form.errors else 200)


def _managed_announcement(request, slug, pk):
    challenge = get_managed_challenge(request.user, slug)
    return get_object_or_404(challenge.announcements.select_related("challenge"), pk=pk)


@login_required
def announcement_edit(request, slug, pk):
    announcement = _managed_announcement(request, slug, pk)
    form = AnnouncementForm(request.POST or None, instance=announcement)
    saved, _ = _submitted(request, form, lambda: announcement_services.update_announcement(
        announcement=announcement, actor=request.user,
        data={"title": form.cleaned_data["title"], "body": form.cleaned_data["body"]}))
    if saved:
        messages.success(request, "Announcement saved (participants are not notified again).")
        return redirect("organizers:announcements", slug=slug)
    announcement.refresh_from_db()
    return _console(request, announcement.challenge, "announcements", "organizers/announcement_edit.html", {
        "form": form, "announcement": announcement,
    }, status=400 if form.errors else 200)


@login_required
@require_POST
def announcement_delete(request, slug, pk):
    announcement = _managed_announcement(request, slug, pk)
    announcement_services.delete_announcement(announcement=announcement, actor=request.user)
    messages.success(request, "Announcement deleted.")
    return redirect("organizers:announcements", slug=slug)
