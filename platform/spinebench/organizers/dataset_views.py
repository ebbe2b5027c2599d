"""The console's datasets section: the challenge's datasets and which phase uses each, the upload of a dataset zip
(checked in the background; its page polls the job with htmx and shows the report), attaching a checked upload to a
phase, the phases' dataset choices (attach, replace, detach) and discarding an upload never attached. Thin views over
organizers.dataset_uploads, which the API (dataset_api) uses too."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from spinebench.access import get_managed_challenge, get_managed_phase
from spinebench.challenges import registry
from spinebench.uploads.handlers import refusal_of
from spinebench.uploads.limits import UploadRefused
from spinebench.uploads.models import StoredUpload

from . import dataset_uploads
from .forms import DatasetAttachForm, DatasetUploadForm, PhaseDatasetsForm, add_errors
from .models import DatasetUpload


def _upload_form(data=None, files=None) -> DatasetUploadForm:
    return DatasetUploadForm(data, files, layouts=dataset_uploads.layouts(), tasks=registry.task_ids())


def _phase_forms(challenge) -> list:
    forms = []
    for phase in challenge.phases.all():
        initial = {"dataset": phase.dataset, "training_dataset": phase.training_dataset}
        forms.append((phase, PhaseDatasetsForm(initial=initial, challenge=challenge, prefix=f"phase-{phase.pk}")))
    return forms


def _page(request, challenge, *, form=None, status: int = 200):
    datasets = challenge.datasets.prefetch_related("scored_phase_links__phase", "training_phase_links__phase")
    return render(request, "organizers/datasets.html", {
        "challenge": challenge, "section": "datasets", "form": form or _upload_form(),
        "datasets": datasets, "uploads": challenge.dataset_uploads.all()[:50], "phase_forms": _phase_forms(challenge),
        "chunked_kind": StoredUpload.Kind.DATASET, "chunk_bytes": settings.SPINEBENCH_PAGE_CHUNK_BYTES,
    }, status=status)


@login_required
def datasets(request, slug):
    """The list, and the upload form (POST)."""
    challenge = get_managed_challenge(request.user, slug)
    if request.method != "POST":
        return _page(request, challenge)
    form = _upload_form(request.POST, request.FILES)
    refusal = refusal_of(request)
    if refusal is not None:
        form.add_error("archive", str(refusal))
    elif form.is_valid():
        values = form.cleaned_data
        try:
            job = dataset_uploads.start_dataset_upload(
                challenge=challenge, actor=request.user, slug=values["slug"], title=values["title"],
                layout=values["layout"], task=values["task"], split=values["split"], upload=values["archive"],
                session_id=values["upload"],
            )
        except ValidationError as error:
            add_errors(form, error)
        except UploadRefused as refused:
            form.add_error("archive", str(refused))
        else:
            return redirect("organizers:dataset-upload", slug=slug, pk=job.pk)
    return _page(request, challenge, form=form, status=400)


def _job(request, slug, pk) -> DatasetUpload:
    challenge = get_managed_challenge(request.user, slug)
    return get_object_or_404(DatasetUpload.objects.select_related("challenge", "dataset"), challenge=challenge, pk=pk)


def _job_page(request, job: DatasetUpload, *, form=None, status: int = 200):
    template = "organizers/_dataset_upload_status.html" if request.htmx else "organizers/dataset_upload.html"
    return render(request, template, {
        "challenge": job.challenge, "section": "datasets", "job": job,
        "form": form or DatasetAttachForm(challenge=job.challenge),
    }, status=status)


@login_required
def dataset_upload(request, slug, pk):
    """The job's progress, then its report and the attach form; htmx polls the status block while it runs."""
    return _job_page(request, _job(request, slug, pk))


@login_required
@require_POST
def dataset_attach(request, slug, pk):
    job = _job(request, slug, pk)
    form = DatasetAttachForm(request.POST, challenge=job.challenge)
    if form.is_valid():
        phase = form.cleaned_data["phase"]
        try:
            dataset_uploads.attach_upload(job=job, actor=request.user, phase=phase, role=form.cleaned_data["role"])
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{job.slug} is now the {dataset_uploads.ROLE_LABELS[form.cleaned_data['role']]}"
                                      f" of {phase.title}.")
            return redirect("organizers:datasets", slug=slug)
    return _job_page(request, job, form=form, status=400)


@login_required
@require_POST
def dataset_discard(request, slug, pk):
    job = _job(request, slug, pk)
    try:
        dataset_uploads.discard_upload(job=job, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"The upload {job.slug} was discarded.")
    return redirect("organizers:datasets", slug=slug)


@login_required
@require_POST
def phase_datasets(request, slug, pk):
    """Attach, replace or detach a phase's datasets (any dataset of the challenge)."""
    phase = get_managed_phase(request.user, slug, pk)
    challenge = phase.challenge
    form = PhaseDatasetsForm(request.POST, challenge=challenge, prefix=f"phase-{phase.pk}")
    if form.is_valid():
        try:
            # Only the fields the request carries: a form left out keeps that link as it is.
            changes = {field: value for field, value in form.cleaned_data.items()
                       if form.add_prefix(field) in request.POST}
            dataset_uploads.set_phase_datasets(phase=phase, actor=request.user, changes=changes)
        except ValidationError as error:
            messages.error(request, f"{phase.title}: " + " ".join(error.messages))
            return redirect("organizers:datasets", slug=slug)
        messages.success(request, f"Datasets of {phase.title} saved.")
        return redirect("organizers:datasets", slug=slug)
    messages.error(request, f"{phase.title}: " + " ".join(str(text) for texts in form.errors.values()
                                                          for text in texts))
    return redirect("organizers:datasets", slug=slug)
