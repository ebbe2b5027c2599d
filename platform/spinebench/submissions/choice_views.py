"""The page where a participant picks which of their succeeded submissions represent them (selection `chosen`)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render

from spinebench.access import can_choose_submissions, get_visible_phase

from .selection import choosable_submissions, choose_submissions


class ChoiceForm(forms.Form):
    submissions = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Tick the submissions that represent you; the best of them is ranked.",
    )

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["submissions"].choices = choices


def _label(submission) -> str:
    evaluation = getattr(submission, "evaluation", None)
    rank = f", rank {evaluation.rank}" if evaluation is not None and evaluation.rank else ""
    name = f" {submission.method_name}" if submission.method_name else ""
    return f"#{submission.pk}{name} ({submission.created:%Y-%m-%d %H:%M}{rank})"


@login_required
def choose_page(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    if not can_choose_submissions(phase, request.user):
        raise Http404
    candidates = list(choosable_submissions(phase=phase, user=request.user))
    form = ChoiceForm(
        request.POST or None,
        choices=[(submission.pk, _label(submission)) for submission in candidates],
        initial={"submissions": [submission.pk for submission in candidates if submission.chosen]},
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                choose_submissions(phase=phase, user=request.user, submission_pks=form.cleaned_data["submissions"])
            except ValidationError as error:
                for message in error.message_dict.get("submissions", error.messages):
                    form.add_error("submissions", message)
            else:
                messages.success(request, "Your choice is saved; the leaderboard shows the best of it.")
                return redirect("submissions:choose", challenge=phase.challenge.slug, phase=phase.slug)
        status = 400
    return render(
        request,
        "submissions/choose.html",
        status=status,
        context={"form": form, "phase": phase, "challenge": phase.challenge, "candidates": candidates},
    )
