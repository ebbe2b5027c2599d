"""Figures on the pages: fracture-ct ROC curves stored with the Evaluation and drawn from it, the leaderboard ROC
overlay, AASCE Bland-Altman plots on phases with public labels only, and who may fetch each PNG."""

from __future__ import annotations

import numpy as np
import pytest
from django.conf import settings
from django.urls import reverse

from evaluators.layout import CaseEntry, Manifest, write_manifest
from spinebench.datasets.services import register_dataset
from spinebench.submissions.models import Submission

from .aasce_data import TRAIN_ANGLES, predictions_csv
from .conftest import csv_upload
from .factories import ChallengeFactory, PhaseFactory, RegistrationFactory, UserFactory, aasce_dataset

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Four patients with two vertebrae each; case_1 and case_3 are fractured (some grade >= 1).
FRACTURE_GRADES = {
    "case_1": {"L1": 2, "L2": 0},
    "case_2": {"L1": 0, "L2": 0},
    "case_3": {"L1": 0, "L2": 1},
    "case_4": {"L1": 0, "L2": 0},
}
PATIENT_SCORES = {"case_1": 0.9, "case_2": 0.8, "case_3": 0.3, "case_4": 0.2}
VERTEBRA_SCORES = {
    "case_1": {"L1": 0.95, "L2": 0.1}, "case_2": {"L1": 0.6, "L2": 0.2},
    "case_3": {"L1": 0.3, "L2": 0.7}, "case_4": {"L1": 0.05, "L2": 0.4},
}
# Worked by hand: patients in decreasing score are P, N, P, N, so the ROC steps up, right, up, right.
PATIENT_FPR = [0.0, 0.0, 0.5, 0.5, 1.0]
PATIENT_TPR = [0.0, 0.5, 0.5, 1.0, 1.0]


def fracture_dataset(challenge, *, split: str, slug: str):
    folder = settings.DATASETS_ROOT / challenge.slug / slug
    (folder / "ground_truth").mkdir(parents=True, exist_ok=True)
    rows = ["case_id,vertebra,grade"] + [
        f"{case},{name},{grade}" for case, grades in FRACTURE_GRADES.items() for name, grade in grades.items()
    ]
    (folder / "ground_truth" / "vertebrae.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    write_manifest(
        folder,
        Manifest(
            task="fracture-ct",
            split=split,
            domain=split,
            cases=tuple(CaseEntry(id=c) for c in FRACTURE_GRADES),
            seed=None,
        ),
    )
    return register_dataset(challenge=challenge, slug=slug, folder=folder)


def fracture_csv(patient_scores=PATIENT_SCORES) -> bytes:
    rows = ["case_id,vertebra,probability"]
    for case, scores in VERTEBRA_SCORES.items():
        rows += [f"{case},{name},{value}" for name, value in scores.items()]
        rows.append(f"{case},patient,{patient_scores[case]}")
    return ("\n".join(rows) + "\n").encode()


def fracture_phase(*, split: str, show_case_results: bool):
    challenge = ChallengeFactory()
    return PhaseFactory(
        challenge=challenge,
        task="fracture-ct",
        dataset=fracture_dataset(challenge, split=split, slug=f"fracture-{split}"),
        training_dataset=None,
        extra_metrics=["auc_vertebra"],
        show_case_results=show_case_results,
    )


def aasce_training_phase():
    challenge = ChallengeFactory()
    train = aasce_dataset(challenge, split="train", slug="train")
    return PhaseFactory(challenge=challenge, dataset=train, training_dataset=train, show_case_results=True)


@pytest.fixture
def scored(eager_tasks, django_capture_on_commit_callbacks):
    """scored(client, phase, user, csv bytes): upload through the page, the scoring task run in-process at commit;
    returns the succeeded Submission."""

    def run(client, phase, user, content: bytes) -> Submission:
        client.force_login(user)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                reverse("submissions:create", args=[phase.challenge.slug, phase.slug]),
                {"file": csv_upload(content=content)},
            )
        client.logout()
        submission = Submission.objects.filter(phase=phase, creator=user).latest("pk")
        assert submission.status == "succeeded", submission.error_message
        return submission

    return run


def spy_on(monkeypatch, name: str) -> dict:
    """Wrap `evaluators.plots.<name>` so every call still draws and its keyword arguments land in the returned dict."""
    import evaluators.plots

    drawn, real = {}, getattr(evaluators.plots, name)

    def spy(out, **kwargs):
        drawn.update(kwargs)
        return real(out, **kwargs)

    monkeypatch.setattr(evaluators.plots, name, spy)
    return drawn


def get_png(client, url, user=None):
    client.logout()
    if user is not None:
        client.force_login(user)
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.status_code == 200 else b""
    return response.status_code, body


def test_fracture_curves_are_stored_with_the_evaluation(client, scored):
    phase = fracture_phase(split="test", show_case_results=False)
    user = RegistrationFactory(challenge=phase.challenge).user
    evaluation = scored(client, phase, user, fracture_csv()).evaluation
    assert set(evaluation.curves) == {"patient", "vertebra"}
    assert evaluation.curves["patient"]["fpr"] == PATIENT_FPR
    assert evaluation.curves["patient"]["tpr"] == PATIENT_TPR
    assert evaluation.curves["patient"]["thresholds"][0] is None  # +inf is stored as null (metrics.json contract)
    # Vertebra level against scikit-learn on the same eight vertebrae.
    from sklearn.metrics import roc_curve

    labels = [int(FRACTURE_GRADES[c][v] >= 1) for c in FRACTURE_GRADES for v in FRACTURE_GRADES[c]]
    scores = [VERTEBRA_SCORES[c][v] for c in FRACTURE_GRADES for v in FRACTURE_GRADES[c]]
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    assert np.allclose(evaluation.curves["vertebra"]["fpr"], fpr) and np.allclose(
        evaluation.curves["vertebra"]["tpr"], tpr
    )
    # The API never sends the curves.
    client.force_login(user)
    assert "curves" not in client.get(f"/api/submissions/{evaluation.submission_id}/").json()


def test_roc_figure_draws_the_stored_curves_with_the_auc_ci(client, scored, monkeypatch):
    phase = fracture_phase(split="train", show_case_results=True)
    user = RegistrationFactory(challenge=phase.challenge).user
    submission = scored(client, phase, user, fracture_csv())
    drawn = spy_on(monkeypatch, "plot_roc")
    page = (client.force_login(user), client.get(submission.get_absolute_url()).content.decode())[1]
    url = reverse("submissions:plot", args=[submission.pk, "roc"])
    assert f'src="{url}"' in page
    status, body = get_png(client, url, user)
    assert status == 200 and body.startswith(PNG_SIGNATURE)
    aggregates = submission.evaluation.aggregates
    patient = drawn["curves"]["patient level"]
    assert patient["fpr"] == PATIENT_FPR and patient["tpr"] == PATIENT_TPR
    assert patient["auc"] == pytest.approx(0.75)  # 3 of the 4 positive-negative pairs are ordered right
    assert patient["ci"] == (aggregates["auc_patient_ci_low"], aggregates["auc_patient_ci_high"])
    assert "vertebra level" in drawn["curves"]
    # Cached: a second request does not draw again; anonymous visitors may see a published public-label figure.
    drawn.clear()
    assert get_png(client, url)[0] == 200 and drawn == {}


def test_roc_of_a_hidden_test_phase_only_for_organizers(client, scored):
    phase = fracture_phase(split="test", show_case_results=False)
    creator = RegistrationFactory(challenge=phase.challenge).user
    other = RegistrationFactory(challenge=phase.challenge).user
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    submission = scored(client, phase, creator, fracture_csv())
    url = reverse("submissions:plot", args=[submission.pk, "roc"])
    overlay = reverse("leaderboards:roc", args=[phase.challenge.slug, phase.slug])
    for who in (None, creator, other):
        assert get_png(client, url, who)[0] == 404, who
        assert get_png(client, overlay, who)[0] == 404, who
        if who is not None:
            client.force_login(who)
        for page in (submission.get_absolute_url(), phase.get_absolute_url()):
            text = client.get(page).content.decode()
            assert ".png" not in text and 'id="plots-withheld"' in text, (page, who)
    status, body = get_png(client, url, organizer)
    assert status == 200 and body.startswith(PNG_SIGNATURE)
    assert get_png(client, overlay, organizer)[0] == 200


def test_leaderboard_overlays_the_top_submissions(client, scored, monkeypatch):
    phase = fracture_phase(split="train", show_case_results=True)
    better, worse = (RegistrationFactory(challenge=phase.challenge).user for _ in range(2))
    reversed_scores = {case: 1 - value for case, value in PATIENT_SCORES.items()}  # AUC 0.25
    scored(client, phase, worse, fracture_csv(reversed_scores))
    scored(client, phase, better, fracture_csv())
    drawn = spy_on(monkeypatch, "plot_roc")
    url = reverse("leaderboards:roc", args=[phase.challenge.slug, phase.slug])
    assert f'src="{url}"' in client.get(phase.get_absolute_url()).content.decode()
    status, body = get_png(client, url)
    assert status == 200 and body.startswith(PNG_SIGNATURE)
    names = list(drawn["curves"])
    assert names == [f"#1 {better.username}", f"#2 {worse.username}"]
    assert drawn["curves"][names[0]]["auc"] == pytest.approx(0.75)
    assert drawn["curves"][names[1]]["auc"] == pytest.approx(0.25)


def test_bland_altman_on_a_public_label_phase_draws_predicted_against_truth(client, scored, monkeypatch):
    phase = aasce_training_phase()
    user = RegistrationFactory(challenge=phase.challenge).user
    predicted = {"train_1": (12.0, 18.0, 6.5), "train_2": (11.0, 10.0, 3.0)}
    submission = scored(client, phase, user, predictions_csv(predicted))
    drawn = spy_on(monkeypatch, "plot_bland_altman")
    url = reverse("submissions:plot", args=[submission.pk, "bland-altman"])
    client.force_login(user)
    assert f'src="{url}"' in client.get(submission.get_absolute_url()).content.decode()
    for who in (user, None):  # the creator, and anyone while it is on the public leaderboard
        status, body = get_png(client, url, who)
        assert status == 200 and body.startswith(PNG_SIGNATURE)
    assert np.array_equal(drawn["ground_truth"], np.array([TRAIN_ANGLES["train_1"], TRAIN_ANGLES["train_2"]]))
    assert np.array_equal(drawn["predictions"], np.array([predicted["train_1"], predicted["train_2"]]))
    assert get_png(client, reverse("submissions:plot", args=[submission.pk, "roc"]), user)[0] == 404  # no curves


def test_bland_altman_is_refused_on_a_hidden_test_phase(client, scored, phase, participant, organizer, other_user):
    """The hidden test phase (PhaseFactory: AASCE test split) never draws the per-case ground truth for a
    participant, even with show_case_results switched on by mistake."""
    near = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}
    RegistrationFactory(challenge=phase.challenge, user=other_user)
    submission = scored(client, phase, participant, predictions_csv(near))
    url = reverse("submissions:plot", args=[submission.pk, "bland-altman"])
    for show_case_results in (False, True):
        phase.show_case_results = show_case_results
        phase.save()
        for who in (None, participant, other_user):
            assert get_png(client, url, who)[0] == 404, (who, show_case_results)
        client.force_login(participant)
        page = client.get(submission.get_absolute_url()).content.decode()
        assert "bland-altman" not in page and 'id="plots-withheld"' in page
    status, body = get_png(client, url, organizer)
    assert status == 200 and body.startswith(PNG_SIGNATURE)


def test_unknown_plot_kind_and_unfinished_submission_are_404(client, phase, participant):
    submission = Submission.objects.create(phase=phase, creator=participant)
    client.force_login(participant)
    assert client.get(reverse("submissions:plot", args=[submission.pk, "roc"])).status_code == 404
    assert client.get(reverse("submissions:plot", args=[submission.pk, "violin"])).status_code == 404


def test_overlay_slice_is_the_one_with_most_reference_voxels():
    from spinebench.submissions.plots import overlay_slice

    reference = np.zeros((6, 5, 5), dtype=np.uint8)
    reference[1, :2, :2] = 1  # 4 voxels
    reference[4, :3, :3] = 2  # 9 voxels
    assert overlay_slice(reference) == 4
    assert overlay_slice(np.zeros((6, 5, 5))) == 3


def test_segmentation_overlay_on_a_public_label_phase_only(
    client, scored, eager_tasks, django_capture_on_commit_callbacks
):
    import io
    import zipfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    import phantoms

    challenge = ChallengeFactory()
    folder = phantoms.generate("metastatic-body-ct", out=settings.DATASETS_ROOT / challenge.slug / "train", cases=1,
                               seed=3, domain="train", small=True, progress=False)
    dataset = register_dataset(challenge=challenge, slug="train", folder=folder)
    phase = PhaseFactory(challenge=challenge, task="metastatic-body-ct", dataset=dataset, training_dataset=dataset,
                         extra_metrics=[], show_case_results=True, max_upload_bytes=50 * 1024**2)
    creator = RegistrationFactory(challenge=challenge).user
    other = RegistrationFactory(challenge=challenge).user
    case_id = dataset.case_ids()[0]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # the reference itself as the prediction
        archive.write(next((folder / "ground_truth").glob(f"{case_id}.*")), f"{case_id}/segmentation.nii.gz")
    client.force_login(creator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("submissions:create", args=[challenge.slug, phase.slug]),
                    {"file": SimpleUploadedFile("p.zip", buffer.getvalue(), content_type="application/zip")})
    submission = Submission.objects.get(phase=phase)
    assert submission.status == "succeeded", submission.error_message
    url = reverse("submissions:plot", args=[submission.pk, "overlay"])
    assert f'src="{url}"' in client.get(submission.get_absolute_url()).content.decode()
    for who in (creator, other, None):
        status, body = get_png(client, url, who)
        assert status == 200 and body.startswith(PNG_SIGNATURE), who
    phase.show_case_results = False  # labels no longer shown: the reference contours go with them
    phase.save()
    for who in (creator, other, None):
        assert get_png(client, url, who)[0] == 404, who
