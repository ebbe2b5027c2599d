"""The phase-dataset link's move from two foreign keys on challenges.Phase to datasets.PhaseDatasets keeps every
link: migrate back to before the move, make phases with datasets in the old columns, migrate forward and read the
links back through the new row and the `phase.dataset` / `phase.training_dataset` properties; and in reverse."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from spinebench.challenges.models import Phase
from spinebench.datasets.models import PhaseDatasets

BEFORE = [("challenges", "0003_submission_kind_help"), ("datasets", "0001_initial")]
MOVE = ("datasets", "0002_phase_datasets_link")
REMOVAL = ("challenges", "0004_phase_datasets_moved_to_datasets")


def migrate(targets):
    """Migrate to `targets` and return the historical apps there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def migrate_to_latest():
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def make_old_phases(apps) -> dict[str, tuple[int | None, int | None]]:
    """Phases with both datasets, a scored one only, a training one only and none, written in the old columns;
    returns {phase slug: (dataset pk, training dataset pk)} as written."""
    Challenge, Phase, Dataset = (apps.get_model(*label) for label in (
        ("challenges", "Challenge"), ("challenges", "Phase"), ("datasets", "Dataset")))
    challenge = Challenge.objects.create(slug="moved", title="Moved")
    test, train, other_train = (
        Dataset.objects.create(challenge=challenge, slug=slug, task="aasce-cobb", split=split, path=f"moved/{slug}")
        for slug, split in (("test", "test"), ("train", "train"), ("train-2", "train"))
    )
    written = {"both": (test.pk, train.pk), "scored": (train.pk, None), "training": (None, other_train.pk),
               "none": (None, None)}
    for order, (slug, (dataset_pk, training_pk)) in enumerate(written.items()):
        Phase.objects.create(challenge=challenge, slug=slug, title=slug, task="aasce-cobb", order=order,
                             dataset_id=dataset_pk, training_dataset_id=training_pk)
    return written


@pytest.mark.slow  # migrates every app backwards and forwards
@pytest.mark.django_db(transaction=True)
def test_the_move_keeps_every_phase_dataset_link_and_reverses():
    assert MOVE in MigrationExecutor(connection).loader.graph.forwards_plan(REMOVAL)  # copy before the columns go
    try:
        written = make_old_phases(migrate(BEFORE))
        migrate([MOVE, REMOVAL])
        migrate_to_latest()  # the other apps' later migrations too, so that today's models can read the rows
        links = {link.phase.slug: (link.dataset_id, link.training_dataset_id)
                 for link in PhaseDatasets.objects.select_related("phase")}
        assert links == {slug: pks for slug, pks in written.items() if pks != (None, None)}
        read = {phase.slug: (phase.dataset and phase.dataset.pk, phase.training_dataset and phase.training_dataset.pk)
                for phase in Phase.objects.filter(challenge__slug="moved")}
        assert read == written

        apps = migrate(BEFORE)
        old = {phase.slug: (phase.dataset_id, phase.training_dataset_id)
               for phase in apps.get_model("challenges", "Phase").objects.filter(challenge__slug="moved")}
        assert old == written
    finally:
        migrate_to_latest()
