"""The AASCE case viewer: reference Cobb lines on a labelled radiograph, the numbers beside them, and never a hidden
test case. Landmarks are drawn by hand as tilted rectangles, so the Cobb angle and its end vertebrae are known."""

import pytest
from django.urls import reverse

from evaluators.cobb import cobb_angles, cobb_end_vertebrae
from spinebench.datasets.services import register_dataset
from spinebench.submissions.services import create_submission

from .aasce_landmarks import TILTS, landmark_dataset, rectangle_landmarks
from .conftest import csv_upload
from .factories import ChallengeFactory, PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_end_vertebrae_of_the_largest_angle():
    points = rectangle_landmarks(TILTS)
    pairs = cobb_end_vertebrae(points, 190)
    assert pairs[0] == (5, 11)  # T6 (+10) and T12 (-15)
    assert cobb_angles(points, 190)[0] == pytest.approx(25.0, abs=1e-6)
    for (upper, lower), angle in zip(pairs, cobb_angles(points, 190)):
        assert upper <= lower and abs(TILTS[upper] - TILTS[lower]) == pytest.approx(angle, abs=1e-6)


@pytest.fixture
def viewer_world(settings, eager_tasks, django_capture_on_commit_callbacks):
    challenge = ChallengeFactory()
    cases = {"case_a": rectangle_landmarks(TILTS), "case_b": rectangle_landmarks([t / 2 for t in TILTS])}
    datasets = {}
    for split in ("train", "test"):
        folder = settings.DATASETS_ROOT / challenge.slug / split
        landmark_dataset(folder, cases)
        datasets[split] = register_dataset(challenge=challenge, slug=split, folder=folder)
    training = PhaseFactory(challenge=challenge, slug="training", dataset=datasets["train"],
                            training_dataset=datasets["train"], show_case_results=True)
    test = PhaseFactory(challenge=challenge, slug="test", dataset=datasets["test"],
                        training_dataset=datasets["train"], show_case_results=True)
    user = RegistrationFactory(challenge=challenge).user
    guesses = {"case_a": (24.0, 9.0, 14.0), "case_b": (12.0, 5.0, 7.0)}
    made = {}
    for phase in (training, test):
        with django_capture_on_commit_callbacks(execute=True):
            made[phase.slug] = create_submission(phase=phase, user=user, upload=csv_upload(guesses))
        made[phase.slug].refresh_from_db()
        assert made[phase.slug].status == "succeeded", made[phase.slug].error_message
    return challenge, user, made


def test_training_case_page_shows_reference_lines_and_numbers(client, viewer_world):
    _, user, made = viewer_world
    submission = made["training"]
    client.force_login(user)
    detail = client.get(submission.get_absolute_url()).content.decode()
    url = reverse("submissions:case", args=[submission.pk, "case_a"])
    assert f'href="{url}"' in detail
    page = client.get(url).content.decode()
    assert "<th scope=\"row\">PT</th><td class=\"num\">25.0</td><td class=\"num\">24.0</td><td>T6–T12</td>" in page
    assert reverse("submissions:case-image", args=[submission.pk, "case_a"]) in page and "rel=\"next\"" in page
    image = client.get(reverse("submissions:case-image", args=[submission.pk, "case_a"]))
    body = b"".join(image.streaming_content)
    assert image.status_code == 200 and body.startswith(b"\x89PNG")
    assert client.get(reverse("submissions:case", args=[submission.pk, "case_zz"])).status_code == 404


def test_hidden_test_case_is_404_for_participants_and_shown_to_organizers(client, viewer_world):
    challenge, user, made = viewer_world
    submission = made["test"]
    page_url = reverse("submissions:case", args=[submission.pk, "case_a"])
    image_url = reverse("submissions:case-image", args=[submission.pk, "case_a"])
    client.force_login(user)
    assert 'href="' + page_url not in client.get(submission.get_absolute_url()).content.decode()
    assert client.get(page_url).status_code == 404 and client.get(image_url).status_code == 404
    client.logout()
    assert client.get(page_url).status_code == 404 and client.get(image_url).status_code == 404
    organizer = UserFactory()
    challenge.organizers.add(organizer)
    client.force_login(organizer)
    assert client.get(page_url).status_code == 200 and client.get(image_url).status_code == 200
