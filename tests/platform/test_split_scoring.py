"""Public-private split phases: each submission is evaluated once per part, so set-level metrics (ROC AUC) are
computed on each part's cases alone; the live leaderboard ranks the public part, the final one the private part;
a re-score switches both parts."""

import pytest
from sklearn.metrics import roc_auc_score

from evaluators.splits import draw_public_cases
from spinebench.evaluation.models import PastEvaluation
from spinebench.evaluation.rescoring import start_rescore
from spinebench.leaderboards.models import LeaderboardSnapshot
from spinebench.leaderboards.services import read_leaderboard
from spinebench.submissions.models import PrivateEvaluation
from spinebench.submissions.parts import phase_parts
from spinebench.submissions.services import create_submission

from .conftest import csv_upload
from .factories import RegistrationFactory, UserFactory
from .split_data import CASES, PRIVATE, PUBLIC, SCORES, fracture_predictions, labels, split_phase

pytestmark = pytest.mark.django_db


@pytest.fixture
def submit(eager_tasks, django_capture_on_commit_callbacks):
    def run(phase, name, user=None):
        user = user or RegistrationFactory(challenge=phase.challenge).user
        with django_capture_on_commit_callbacks(execute=True):
            submission = create_submission(phase=phase, user=user,
                                           upload=csv_upload(content=fracture_predictions(SCORES[name])))
        submission.refresh_from_db()
        assert submission.status == "succeeded", submission.error_message
        return submission

    return run


def _auc(name, cases):
    return roc_auc_score(labels(cases), [SCORES[name][case] for case in cases])


def test_each_part_is_scored_on_its_own_cases(submit):
    phase = split_phase()
    submission = submit(phase, "good_public")
    public, private = submission.evaluation, PrivateEvaluation.objects.get(submission=submission)
    assert public.part == "public"
    assert public.aggregates["auc_patient"] == pytest.approx(_auc("good_public", PUBLIC), abs=1e-12)
    assert private.aggregates["auc_patient"] == pytest.approx(_auc("good_public", PRIVATE), abs=1e-12)
    assert public.aggregates["auc_patient"] != pytest.approx(_auc("good_public", CASES))  # not the whole set's
    assert set(public.case_metrics) == set(PUBLIC) and set(private.metrics["case"]) == set(PRIVATE)
    assert public.version == private.version == 1


def test_the_live_board_ranks_the_public_part_and_the_final_board_the_private_part(submit):
    phase = split_phase()
    good_public, good_private = submit(phase, "good_public"), submit(phase, "good_private")
    assert _auc("good_public", PUBLIC) > _auc("good_private", PUBLIC)
    assert _auc("good_private", PRIVATE) > _auc("good_public", PRIVATE)
    live, final = read_leaderboard(phase), read_leaderboard(phase, LeaderboardSnapshot.Kind.PRIVATE)
    assert live.snapshot.kind == "public" and final.snapshot.kind == "private"
    assert [row.submission.pk for row in live.rows] == [good_public.pk, good_private.pk]
    assert [row.submission.pk for row in final.rows] == [good_private.pk, good_public.pk]
    assert final.rows[0].values[0] == pytest.approx(_auc("good_private", PRIVATE), abs=1e-12)
    good_public.refresh_from_db()
    assert good_public.evaluation.rank == 1 and good_public.private_evaluation.rank == 2
    assert not LeaderboardSnapshot.objects.filter(phase=phase, kind="live").exists()


def test_a_drawn_split_is_reproducible_from_the_stored_secret_seed(submit):
    phase = split_phase(public_case_ids=[], public_fraction=0.25)
    assert len(phase.split_seed) == 32
    drawn = draw_public_cases(CASES, fraction=0.25, seed=phase.split_seed)
    assert phase_parts(phase)["public"] == drawn and len(drawn) == 3
    submission = submit(phase, "good_public")
    assert sorted(submission.evaluation.case_metrics) == drawn
    assert sorted(submission.private_evaluation.metrics["case"]) == sorted(set(CASES) - set(drawn))
    phase.save()
    phase.refresh_from_db()
    assert phase_parts(phase)["public"] == drawn  # the seed is set once


def test_a_rescore_switches_both_parts(submit, django_capture_on_commit_callbacks):
    phase = split_phase()
    submission = submit(phase, "good_public")
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    # The organizers move two cases from the public part to the private one, then re-score.
    phase.public_case_ids = PUBLIC[:4]
    phase.save()
    with django_capture_on_commit_callbacks(execute=True):
        job = start_rescore(phase=phase, actor=organizer)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error_message
    submission.refresh_from_db()
    moved_private = sorted(PRIVATE + PUBLIC[4:])
    assert submission.evaluation.version == submission.private_evaluation.version == 2
    assert submission.evaluation.aggregates["auc_patient"] == pytest.approx(_auc("good_public", PUBLIC[:4]))
    assert submission.private_evaluation.aggregates["auc_patient"] == pytest.approx(
        _auc("good_public", moved_private))
    past = {entry.part: entry for entry in PastEvaluation.objects.filter(submission=submission)}
    assert set(past) == {"public", "private"} and {entry.version for entry in past.values()} == {1}
    assert past["private"].aggregates["auc_patient"] == pytest.approx(_auc("good_public", PRIVATE))
    kinds = set(LeaderboardSnapshot.objects.filter(phase=phase, evaluation_version=2).values_list("kind", flat=True))
    assert kinds == {"public", "private"}


def test_the_final_leaderboard_is_for_organizers_until_the_reveal(submit, client):
    from django.urls import reverse

    from spinebench.challenges.visibility import reveal_scores

    from .conftest import api

    phase = split_phase()
    entry = submit(phase, "good_private")
    participant, organizer = entry.creator, UserFactory()
    phase.challenge.organizers.add(organizer)
    page = reverse("leaderboards:phase", kwargs={"challenge": phase.challenge.slug, "phase": phase.slug})
    final_auc = f"{_auc('good_private', PRIVATE):.3f}"
    client.force_login(participant)
    assert client.get(page + "?part=final").status_code == 404
    assert client.get(page + "?part=nonsense").status_code == 404
    assert f"{_auc('good_private', PUBLIC):.3f}" in client.get(page).content.decode()
    response = api(participant).get(f"/api/phases/{phase.pk}/leaderboard/?part=final")
    assert response.status_code == 403
    assert api(participant).get(f"/api/phases/{phase.pk}/leaderboard/?part=x").json() == {
        "part": ["'x' is not a leaderboard part; use live or final."]}
    client.force_login(organizer)
    assert final_auc in client.get(page + "?part=final").content.decode()
    reveal_scores(phase=phase, actor=organizer)
    client.force_login(participant)
    assert final_auc in client.get(page + "?part=final").content.decode()
    body = api(participant).get(f"/api/phases/{phase.pk}/leaderboard/?part=final").json()
    assert body["part"] == "private" and body["rows"][0]["auc_patient"] == pytest.approx(_auc("good_private", PRIVATE))


def test_each_part_snapshot_gets_statistics_from_its_own_cases(eager_tasks, django_capture_on_commit_callbacks):
    """24 patients, 12 per part: each snapshot's bootstrap interval of the set-level AUC is computed by
    re-evaluating resamples of that part's cases only."""
    import random

    cases = [f"q{n:02d}" for n in range(24)]
    fractured = set(cases[::2])
    draw = random.Random(7)
    scores = {case: round(draw.random() * 0.5 + (0.4 if case in fractured else 0.0), 4) for case in cases}
    phase = split_phase(cases=cases, fractured=fractured, public_case_ids=cases[:12])
    user = RegistrationFactory(challenge=phase.challenge).user
    with django_capture_on_commit_callbacks(execute=True):
        create_submission(phase=phase, user=user, upload=csv_upload(content=fracture_predictions(scores)))
    for kind, part in (("public", cases[:12]), ("private", cases[12:])):
        snapshot = LeaderboardSnapshot.objects.filter(phase=phase, kind=kind).latest()
        assert snapshot.statistics_status == "ready", kind
        statistics = snapshot.statistics
        assert statistics["cases"] == 12 and "ci" not in statistics["unavailable"], (kind, statistics["unavailable"])
        auc = roc_auc_score([int(case in fractured) for case in part], [scores[case] for case in part])
        assert snapshot.rows[0]["values"]["auc_patient"] == pytest.approx(auc, abs=1e-12)
        entry = next(iter(statistics["entries"].values()))
        assert entry["ci_low"] <= auc <= entry["ci_high"], kind
