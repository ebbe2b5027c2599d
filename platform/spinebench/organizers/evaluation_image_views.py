"""The organizers' page of a phase's evaluation: the metric declaration (one metric per line) and the upload of an
evaluation image, with the images uploaded so far and the latest runs (their errors and logs are for organizers
only). The same services serve the API (evaluation_image_api)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from spinebench.access import can_manage_phase_evaluation
from spinebench.algorithms.evaluation_images import upload_evaluation_image
from spinebench.challenges.models import Phase
from spinebench.evaluation.declarations import declare_metrics
from spinebench.evaluation.images import CustomEvaluation, DeclaredMetric, EvaluationImage, EvaluationImageRun

SCOPES = ", ".join(DeclaredMetric.Scope.values)


class DeclarationForm(forms.Form):
    metrics = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text=f"One metric per line: key, label, higher|lower, {SCOPES}, and `primary` on the line of the "
        "metric that ranks the leaderboard. Example: abs_error, Absolute error (mm), lower, case, primary",
    )
    predictions_format = forms.ChoiceField(choices=CustomEvaluation.PredictionsFormat.choices)
    output_files = forms.CharField(
        required=False, help_text="Algorithm phases: the files an algorithm writes to /output, separated by commas.",
    )

    def clean_metrics(self) -> list[dict]:
        declared = []
        for number, line in enumerate(self.cleaned_data["metrics"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split(",")]
            if len(parts) not in (4, 5) or (len(parts) == 5 and parts[4] != "primary"):
                raise ValidationError(f"line {number}: expected key, label, direction, scope[, primary]")
            key, label, direction, scope = parts[:4]
            declared.append({"key": key, "label": label, "direction": direction, "scope": scope,
                             "primary": len(parts) == 5})
        return declared

    def clean_output_files(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["output_files"].split(",") if name.strip()]


class ImageUploadForm(forms.Form):
    archive = forms.FileField(help_text="`docker save` of the image (.tar, .tar.gz, .tar.bz2 or .tar.xz).")


def _managed_phase(request: HttpRequest, challenge: str, phase: str) -> Phase:
    found = get_object_or_404(Phase.objects.select_related("challenge"), challenge__slug=challenge, slug=phase)
    if not can_manage_phase_evaluation(found, request.user):
        raise Http404
    return found


def _declaration_initial(phase: Phase) -> dict:
    lines = [
        ", ".join([m.key, m.label, m.direction, m.scope] + (["primary"] if m.primary else []))
        for m in DeclaredMetric.objects.filter(phase=phase)
    ]
    custom = CustomEvaluation.objects.filter(phase=phase).first()
    return {
        "metrics": "\n".join(lines),
        "predictions_format": custom.predictions_format if custom else CustomEvaluation.PredictionsFormat.CSV,
        "output_files": ", ".join(custom.output_files) if custom else "",
    }


def _render(request, phase: Phase, *, declaration_form=None, upload_form=None, status: int = 200) -> HttpResponse:
    custom = CustomEvaluation.objects.select_related("image").filter(phase=phase).first()
    return render(request, "organizers/evaluation_image.html", {
        "challenge": phase.challenge,
        "phase": phase,
        "declaration_form": declaration_form or DeclarationForm(initial=_declaration_initial(phase)),
        "upload_form": upload_form or ImageUploadForm(),
        "images": EvaluationImage.objects.filter(phase=phase),
        "current": custom.image if custom else None,
        "runs": EvaluationImageRun.objects.filter(image__phase=phase).select_related("image")[:20],
    }, status=status)


@login_required
def evaluation_page(request: HttpRequest, challenge: str, phase: str) -> HttpResponse:
    return _render(request, _managed_phase(request, challenge, phase))


@login_required
@require_POST
def declare(request: HttpRequest, challenge: str, phase: str) -> HttpResponse:
    found = _managed_phase(request, challenge, phase)
    form = DeclarationForm(request.POST)
    if form.is_valid():
        try:
            declare_metrics(phase=found, actor=request.user, metrics=form.cleaned_data["metrics"],
                            predictions_format=form.cleaned_data["predictions_format"],
                            output_files=form.cleaned_data["output_files"])
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, "Metric declaration saved.")
            return redirect("evaluation_images:page", challenge=challenge, phase=phase)
    return _render(request, found, declaration_form=form, status=400)


@login_required
@require_POST
def upload(request: HttpRequest, challenge: str, phase: str) -> HttpResponse:
    found = _managed_phase(request, challenge, phase)
    form = ImageUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            image = upload_evaluation_image(phase=found, actor=request.user, upload=form.cleaned_data["archive"])
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, f"Evaluation image {image.image_id[:19]} is now this phase's evaluation.")
            return redirect("evaluation_images:page", challenge=challenge, phase=phase)
    return _render(request, found, upload_form=form, status=400)
