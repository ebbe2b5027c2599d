"""The AASCE 2019 bundle's container phase: imported from the shipped bundle (small generated radiographs), the
example algorithm uploaded through the API is run on the hidden test split and ranked on that phase's leaderboard.
Plus the bundle's `container:` mapping and its errors."""


import csv
import json

import pytest
from rest_framework.test import APIClient

from spinebench.algorithms import execution
from spinebench.algorithms.bundles import apply_container_config
from spinebench.algorithms.models import ContainerConfig
from spinebench.challenges.models import Phase
from spinebench.datasets.bundles import BundleError, ImportOptions, import_bundle
from spinebench.submissions.models import Submission
from tests.platform.aasce_data import smape

from .conftest import EXAMPLE_IMAGE, REPO_ROOT

BUNDLE = REPO_ROOT / "platform" / "spinebench" / "bundles" / "aasce-2019"


@pytest.mark.docker
@pytest.mark.django_db
def test_example_algorithm_ranked_on_the_aasce_container_phase(saved_images, eager_tasks,
                                                               django_capture_on_commit_callbacks, django_user_model):
    challenge = import_bundle(BUNDLE, ImportOptions(small=True, max_cases=3, progress=False))
    phase = Phase.objects.get(challenge=challenge, slug="test-containers")
    assert phase.submission_kind == Phase.SubmissionKind.ALGORITHM and phase.dataset.is_hidden
    config = ContainerConfig.objects.get(phase=phase)
    assert (config.mode, config.log_lines) == ("per-case", 50)
    user = django_user_model.objects.create_user("alice", password="correct-horse-battery")
    api = APIClient()
    api.force_authenticate(user)
    assert api.post(f"/api/challenges/{challenge.slug}/register/").status_code in (200, 201)
    with django_capture_on_commit_callbacks(execute=True), open(saved_images(EXAMPLE_IMAGE), "rb") as handle:
        response = api.post(f"/api/phases/{phase.pk}/submissions/", {"file": handle}, format="multipart")
    assert response.status_code == 201, response.content
    submission = Submission.objects.get(pk=response.json()["id"])
    assert submission.status == "succeeded", submission.error_message
    assert submission.algorithm_run.jobs.count() == phase.dataset.cases.count() == 3
    board = api.get(f"/api/phases/{phase.pk}/leaderboard/").json()
    assert board["rows"][0]["submission"] == submission.pk and board["rows"][0]["rank"] == 1
    # the leaderboard's SMAPE recomputed from the container outputs and the hidden angles
    with open(phase.dataset.root / "ground_truth" / "angles.csv", newline="") as handle:
        truth = {row["case_id"]: tuple(float(row[k]) for k in ("pt", "mt", "tl")) for row in csv.DictReader(handle)}
    predicted = {
        case: tuple(json.loads((execution.predictions_dir(submission.pk) / case / "angles.json").read_text())["angles"])
        for case in truth
    }
    assert board["rows"][0]["smape"] == pytest.approx(smape(truth, predicted), abs=10 ** -phase.decimal_places)


@pytest.mark.django_db
def test_container_mapping_errors_name_the_key(tmp_path):
    from spinebench.challenges.models import Challenge

    phase = Phase.objects.create(challenge=Challenge.objects.create(slug="c", title="C"), slug="p", title="P",
                                 task="aasce-cobb", submission_kind=Phase.SubmissionKind.ALGORITHM)
    with pytest.raises(BundleError, match=r"phases\[0\].container: unknown key 'memory' \(allowed: mode, "):
        apply_container_config(phase, {"memory": 5}, where="phases[0].container")
    with pytest.raises(BundleError, match=r"phases\[0\].container.mode: Value 'sideways' is not a valid choice"):
        apply_container_config(phase, {"mode": "sideways"}, where="phases[0].container")
    config = apply_container_config(phase, {"mode": "batch", "log_lines": 5}, where="phases[0].container")
    assert ContainerConfig.for_phase(phase) == config and config.limits(cases=4).wall_clock_s == 4 * 300
