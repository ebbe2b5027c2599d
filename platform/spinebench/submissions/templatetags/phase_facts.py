"""`{% phase_facts phase %}`: the panel the phase page and the upload page share, saying plainly what to upload, the
limits, the submission window and what the visitor may still submit (submissions.quota, the same rule the upload
refusal applies)."""

from django import template

from spinebench.challenges.browse import phase_window
from spinebench.submissions.quota import submission_quota

register = template.Library()

#: Header of the one predictions CSV per task (docs/formats.md, "Predictions"; read by evaluators.formats).
CSV_HEADERS = {
    "aasce-cobb": "case_id,pt,mt,tl",
    "fracture-ct": "case_id,vertebra,probability",
    "vertebra-labelling-xr": "case_id,vertebra,x,y",
}


@register.inclusion_tag("submissions/_phase_facts.html", takes_context=True)
def phase_facts(context, phase):
    user = context["request"].user
    window = phase_window(phase)
    is_participant = phase.challenge.is_participant(user)
    if phase.submission_kind == "algorithm":
        upload = "algorithm"
    elif phase.takes_csv:
        upload = "csv"
    else:
        upload = "zip"
    return {
        "phase": phase,
        "challenge": phase.challenge,
        "window": window,
        "upload": upload,
        "csv_header": CSV_HEADERS.get(phase.task, ""),
        "quota": submission_quota(phase=phase, user=user, now=window.now) if is_participant else None,
        "is_participant": is_participant,
        "user": user,
        "request": context["request"],
    }
