"""The "How to submit a container" page (wired at /algorithms/ by the platform's URL map) and the permissions of a
submission's container page."""

import pytest
from django.urls import reverse

from evaluators.tasks import TASKS
from spinebench.algorithms.io_layout import TASK_INPUTS
from spinebench.submissions.models import Submission

pytestmark = pytest.mark.django_db


def test_howto_page_lists_every_task_layout(client):
    response = client.get("/algorithms/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "How to submit a container" in page and "docker save" in page
    assert set(TASK_INPUTS) == set(TASKS)
    for task in TASKS.values():
        assert f"<code>{task.id}</code>" in page
        for name in task.output_files:
            assert f"<code>{name}</code>" in page


def test_container_page_is_private_to_creator_and_organizers(
    client, algorithm_phase, algorithm_participant, algorithm_organizer, django_user_model
):
    submission = Submission.objects.create(
        phase=algorithm_phase, creator=algorithm_participant, error_message="case x: boom"
    )
    url = reverse("algorithms:submission", kwargs={"pk": submission.pk})
    assert client.get(url).status_code == 404  # anonymous
    client.force_login(django_user_model.objects.create_user("stranger", password="correct-horse-battery"))
    assert client.get(url).status_code == 404
    for user in (algorithm_participant, algorithm_organizer):
        client.force_login(user)
        page = client.get(url)
        assert page.status_code == 200 and "case x: boom" in page.content.decode()
