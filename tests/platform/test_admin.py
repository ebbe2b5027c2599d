"""Organizers: every model is editable in the Django admin; unpublished results stay off the leaderboard until an
organizer publishes them."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from spinebench.submissions.admin import EvaluationAdmin
from spinebench.submissions.models import Evaluation
from spinebench.submissions.services import create_submission

from .conftest import csv_upload
from .factories import PhaseFactory, RegistrationFactory

pytestmark = pytest.mark.django_db


def test_every_platform_model_has_working_admin_pages(
    client, phase, participant, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        create_submission(phase=phase, user=participant, upload=csv_upload())
    superuser = get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    client.force_login(superuser)
    platform_models = [
        m for m in admin.site._registry if m._meta.app_label in ("challenges", "datasets", "submissions")
    ]
    assert {m.__name__ for m in platform_models} >= {
        "Challenge",
        "Registration",
        "Phase",
        "Dataset",
        "Case",
        "Submission",
        "Evaluation",
    }
    for model in platform_models:
        opts = model._meta
        assert client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code == 200
        instance = model.objects.first()
        assert (
            client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])).status_code
            == 200
        )


def test_unpublished_results_wait_for_an_organizer(eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory(auto_publish=False)
    user = RegistrationFactory(challenge=phase.challenge).user
    with django_capture_on_commit_callbacks(execute=True):
        submission = create_submission(phase=phase, user=user, upload=csv_upload())
    evaluation = Evaluation.objects.get(submission=submission)
    assert not evaluation.published and evaluation.rank is None
    EvaluationAdmin(Evaluation, admin.site).publish(None, Evaluation.objects.filter(pk=evaluation.pk))
    evaluation.refresh_from_db()
    assert evaluation.published and evaluation.rank == 1
