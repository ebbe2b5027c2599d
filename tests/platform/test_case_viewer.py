"""The AASCE case viewer: reference Cobb lines on a labelled radiograph, the numbers beside them, and never a hidden
test case. Landmarks are drawn by hand as tilted rectangles, so the Cobb angle and its end vertebrae are known."""

import math

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from evaluators.cobb import cobb_angles, cobb_end_vertebrae
from evaluators.layout import CaseEntry, Manifest, write_manifest
from spinebench.datasets.services import register_dataset
from spinebench.submissions.models import Submission
from spinebench.submissions.services import create_submission

from .conftest import csv_upload
from .factories import ChallengeFactory, PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db

#: Tilt of each vertebra T1..L5 in degrees: up to +10 at T6, down to -15 at T12, back to 0 at L5.
TILTS = [0, 2, 4, 6, 8, 10, 6, 2, -2, -6, -10, -15, -10, -6, -3, -1, 0]


def rectangle_landmarks(tilts) -> np.ndarray:
    points = []
    for v, tilt in enumerate(tilts):
        c, s = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
        centre = np.array([50.0, 12.0 + 10.0 * v])
        for dx, dy in ((-8, -3), (8, -3), (-8, 3), (8, 3)):  # top-left, top-right, bottom-left, bottom-right
            points.append(centre + [c * dx - s * dy, s * dx + c * dy])
    return np.array(points)


def landmark_dataset(folder, cases: dict) -> None:
    for case_id in cases:
        (folder / "inputs" / case_id).mkdir(parents=True, exist_ok=True)
        Image.new("L", (100, 190), color=90).save(folder / "inputs" / case_id / "image.png")
    gt = folder / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    header = ["case_id", "image_height", "image_width"] + [f"x{i}" for i in range(1, 69)] + [f"y{i}" for i in range(1, 69)]
    rows = [",".join(header)]
    angle_rows = ["case_id,pt,mt,tl"]
    for case_id, points in cases.items():
        rows.append(",".join([case_id, "190", "100", *map(str, points[:, 0]), *map(str, points[:, 1])]))
        angle_rows.append(",".join([case_id, *(f"{value:.6f}" for value in cobb_angles(points, 190))]))
    (gt / "landmarks.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (gt / "angles.csv").write_text("\n".join(angle_rows) + "\n", encoding="utf-8")
    write_manifest(folder, Manifest(task="aasce-cobb", split=folder.name, domain="test", seed=None,
                                    cases=tuple(CaseEntry(id=case_id) for case_id in cases)))


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
    challenge, user, made = viewer_world
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
