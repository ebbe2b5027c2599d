"""Configuring a split phase: the phase editor and the console API set the public case ids (checked against the
test dataset, errors keyed by field) or leave them to a draw; the seed is stored, never sent; a revealed phase's
parts are fixed."""

import pytest
from django.urls import reverse

from evaluators.splits import draw_public_cases
from spinebench.challenges.visibility import reveal_scores
from spinebench.organizers.models import AuditEvent

from .conftest import api
from .factories import PhaseFactory, UserFactory
from .test_organizer_console import phase_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def organizer_phase():
    phase = PhaseFactory(slug="final", title="Final")  # AASCE test cases case_a, case_b, case_c
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    return phase, organizer


def test_the_editor_sets_public_case_ids_and_refuses_unknown_ones_by_field(client, organizer_phase):
    phase, organizer = organizer_phase
    client.force_login(organizer)
    url = reverse("organizers:phase-edit", args=[phase.challenge.slug, phase.pk])
    bad = client.post(url, phase_form(score_visibility="split", public_case_ids="case_a, case_zz"))
    assert bad.status_code == 400
    assert bad.context["form"].errors["public_case_ids"] == ["not cases of the test set: case_zz"]
    everything = client.post(url, phase_form(score_visibility="split", public_case_ids="case_a case_b case_c"))
    assert everything.context["form"].errors["public_case_ids"] == ["the private part would hold no case"]
    good = client.post(url, phase_form(score_visibility="split", public_case_ids="case_a,\ncase_c"))
    assert good.status_code == 302, good.context["form"].errors
    phase.refresh_from_db()
    assert (phase.score_visibility, phase.public_case_ids) == ("split", ["case_a", "case_c"])
    page = client.get(url).content.decode()
    assert 'id="public-part"' in page and "<code>case_a</code>, <code>case_c</code>" in page
    assert phase.split_seed and phase.split_seed not in page
    event = AuditEvent.objects.filter(action="phase.update").latest("pk")
    assert event.changes["public_case_ids"] == [[], ["case_a", "case_c"]]


def test_the_api_draws_a_public_part_and_never_sends_the_seed(organizer_phase):
    phase, organizer = organizer_phase
    client = api(organizer)
    url = reverse("organizer-phase-detail", args=[phase.pk])
    bad = client.patch(url, {"score_visibility": "split", "public_fraction": 1.5}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"public_fraction"}
    made = client.patch(url, {"score_visibility": "split", "public_fraction": 0.34}, format="json")
    assert made.status_code == 200, made.json()
    phase.refresh_from_db()
    expected = draw_public_cases(["case_a", "case_b", "case_c"], fraction=0.34, seed=phase.split_seed)
    assert made.json()["public_part"] == expected and len(expected) == 1
    assert phase.split_seed not in made.content.decode()
    participant_view = api(UserFactory()).get(f"/api/phases/{phase.pk}/").content.decode()
    assert phase.split_seed not in participant_view and "public_part" not in participant_view
    unknown = client.patch(url, {"public_case_ids": ["nope"]}, format="json")
    assert unknown.status_code == 400 and "public_case_ids" in unknown.json()


def test_a_revealed_phase_keeps_its_parts(organizer_phase):
    phase, organizer = organizer_phase
    client = api(organizer)
    url = reverse("organizer-phase-detail", args=[phase.pk])
    assert client.patch(url, {"score_visibility": "split", "public_case_ids": ["case_b"]},
                        format="json").status_code == 200
    assert client.post(f"/api/phases/{phase.pk}/reveal/").status_code == 200
    moved = client.patch(url, {"public_case_ids": ["case_a"]}, format="json")
    assert moved.status_code == 400 and set(moved.json()) == {"public_case_ids"}
    with pytest.raises(Exception, match="revealed"):
        reveal_scores(phase=phase, actor=organizer)
    assert AuditEvent.objects.filter(action="leaderboard.reveal").count() == 1


def test_a_bundle_makes_a_phase_split_with_a_drawn_public_half(tmp_path, eager_tasks):
    from pathlib import Path

    from django.conf import settings

    from spinebench.datasets.bundles import import_bundle
    from spinebench.submissions.parts import phase_parts

    from .aasce_data import TRAIN_ANGLES, write_aasce_dataset
    from .test_bundles import FAST, minimal, write_bundle

    write_aasce_dataset(Path(settings.DATASETS_ROOT) / "mini-src" / "train", TRAIN_ANGLES, split="train")
    challenge = import_bundle(write_bundle(tmp_path / "b", minimal(leaderboard={"score_visibility": "split"})), FAST)
    phase = challenge.phases.get()
    assert phase.is_split and phase.private_part_hidden and len(phase.split_seed) == 32
    parts = phase_parts(phase)  # the dataset has the two cases of TRAIN_ANGLES: one per part
    drawn = draw_public_cases(TRAIN_ANGLES, fraction=0.5, seed=phase.split_seed)
    assert parts is not None and parts["public"] == drawn and len(drawn) == 1
    assert sorted(parts["public"] + parts["private"]) == sorted(TRAIN_ANGLES)
