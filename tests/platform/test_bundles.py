"""Challenge bundles: the shipped AASCE 2019 bundle imports (and re-imports) cleanly; a wrong bundle names the key."""

from pathlib import Path

import pytest
import yaml
from django.conf import settings

from spinebench.challenges.models import Challenge, Phase
from spinebench.cli import BUNDLES_DIR
from spinebench.datasets.bundles import BundleError, ImportOptions, import_bundle

from .aasce_data import TRAIN_ANGLES, write_aasce_dataset

pytestmark = pytest.mark.django_db
FAST = ImportOptions(small=True, max_cases=3, progress=False)


def test_shipped_aasce_bundle_imports_and_reimports():
    bundle = BUNDLES_DIR / "aasce-2019"
    challenge = import_bundle(bundle, FAST)
    assert challenge.slug == "aasce-2019" and "Cobb angle" in challenge.description
    phases = {phase.slug: phase for phase in challenge.phases.all()}
    assert {"training", "test"} <= set(phases) <= {"training", "test", "test-containers"}
    if "test-containers" in phases:  # the container phase (spinebench.algorithms) scores the same hidden set
        assert (
            phases["test-containers"].submission_kind == "algorithm"
            and phases["test-containers"].dataset == phases["test"].dataset
        )
    test = phases["test"]
    assert test.submission_kind == "csv" and test.task == "aasce-cobb" and test.submission_limit == 3
    assert test.dataset.split == "test" and test.dataset.is_hidden and test.dataset.cases.count() == 3
    assert test.training_dataset.split == "train" and not test.training_dataset.is_hidden
    assert test.leaderboard_metrics == ["smape", "mae_pt", "mae_mt", "mae_tl"]
    assert phases["training"].dataset == phases["training"].training_dataset
    import_bundle(bundle, FAST)  # idempotent update
    assert Challenge.objects.count() == 1 and Phase.objects.count() == len(phases)


def write_bundle(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "challenge.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder


def minimal(**phase_overrides) -> dict:
    phase = {"slug": "test", "title": "Test", "task": "aasce-cobb", "dataset": "train", **phase_overrides}
    return {
        "challenge": {"slug": "mini", "title": "Mini"},
        "datasets": {"train": {"task": "aasce-cobb", "split": "train", "path": "mini-src/train"}},
        "phases": [phase],
    }


@pytest.fixture
def source_dataset():
    return write_aasce_dataset(Path(settings.DATASETS_ROOT) / "mini-src" / "train", TRAIN_ANGLES, split="train")


def test_path_dataset_bundle(tmp_path, source_dataset):
    challenge = import_bundle(write_bundle(tmp_path / "b", minimal(leaderboard={"ranking_method": "mean-rank"})), FAST)
    phase = challenge.phases.get()
    assert phase.ranking_method == "mean-rank" and phase.dataset.cases.count() == len(TRAIN_ANGLES)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "challenge.yaml: unknown key 'extra'"),
        (lambda d: d["challenge"].pop("title"), "challenge.yaml: challenge: missing required key 'title'"),
        (
            lambda d: d["phases"][0].update(leaderboard={"rankng": "primary"}),
            "phases[0].leaderboard: unknown key 'rankng'",
        ),
        (
            lambda d: d["phases"][0].update(leaderboard={"extra_metrics": ["dice"]}),
            "phases[0].leaderboard.extra_metrics: metric 'dice' is not a metric of task 'aasce-cobb'",
        ),
        (
            lambda d: d["phases"][0].update(leaderboard={"ranking_method": "sum"}),
            "phases[0].leaderboard.ranking_method: Value 'sum' is not a valid choice",
        ),
        (lambda d: d["phases"][0].update(task="no-such-task"), "phases[0].task: unknown task 'no-such-task'"),
        (lambda d: d["phases"][0].update(dataset="nope"), "phases[0].dataset: no dataset named 'nope'"),
        (lambda d: d["phases"][0].update(submission_limit=-1), "phases[0].submission_limit:"),
        (lambda d: d["phases"][0].update(opens_at="tomorrow"), "phases[0].opens_at: expected an ISO date-time"),
        (
            lambda d: d["datasets"]["train"].update(generate={"cases": 2}),
            "datasets.train: give exactly one of generate, import, path",
        ),
        (lambda d: d["datasets"]["train"].update(path="missing"), "datasets.train.path:"),
    ],
)
def test_wrong_bundles_name_the_key(tmp_path, source_dataset, mutate, message):
    data = minimal()
    mutate(data)
    with pytest.raises(BundleError) as error:
        import_bundle(write_bundle(tmp_path / "b", data), FAST)
    assert message in str(error.value)


def test_split_mismatch_is_explained(tmp_path, source_dataset):
    data = minimal()
    data["datasets"]["train"]["split"] = "test"
    with pytest.raises(BundleError, match="manifest split is 'train', expected 'test'"):
        import_bundle(write_bundle(tmp_path / "b", data), FAST)


@pytest.mark.slow  # generates every task's phantoms and builds the real-anatomy sets
@pytest.mark.parametrize("name", ["fracture-ct", "vertebra-labelling-xr", "metastatic-body-ct", "lumbosacral-ct"])
def test_other_seed_task_bundles_import(name):
    challenge = import_bundle(BUNDLES_DIR / name, ImportOptions(small=True, max_cases=2, progress=False))
    phase = challenge.phases.get(slug="test")
    assert phase.dataset.is_hidden and phase.dataset.cases.exists() and phase.training_dataset.split == "train"
    assert phase.leaderboard_metrics[0] == phase.ranking_metric
    phases = {p.slug: p for p in challenge.phases.all()}
    real = name in ("vertebra-labelling-xr", "metastatic-body-ct")  # where a real-anatomy set applies
    assert set(phases) == {"training", "test", "test-containers"} | ({"real-anatomy"} if real else set())
    assert phases["training"].dataset.split == "train" and phases["training"].show_case_results
    assert (
        phases["test-containers"].submission_kind == "algorithm" and phases["test-containers"].dataset == phase.dataset
    )
    if real:
        from evaluators.layout import read_manifest

        manifest = read_manifest(phases["real-anatomy"].dataset.root)
        assert (
            manifest.source == "real-anatomy"
            and manifest.labels_model_derived
            and phases["real-anatomy"].dataset.is_hidden
        )


def test_hidden_test_split_refuses_a_public_seed(tmp_path):
    data = minimal()
    data["datasets"]["hidden"] = {"task": "aasce-cobb", "split": "test", "generate": {"cases": 2, "seed": 9102}}
    with pytest.raises(BundleError, match=r"datasets\.hidden\.generate\.seed: a test split must use `seed: secret`"):
        import_bundle(write_bundle(tmp_path / "b", data), FAST)


def test_secret_seed_is_drawn_at_generation_and_kept_private(tmp_path, monkeypatch):
    from spinebench.datasets import bundles

    drawn = iter([123456, 654321])
    monkeypatch.setattr(bundles.secrets, "randbelow", lambda bound: next(drawn))
    data = minimal()
    data["datasets"]["hidden"] = {
        "task": "aasce-cobb",
        "split": "test",
        "generate": {"cases": 1, "seed": "secret", "small": True},
    }
    data["phases"][0]["dataset"] = "hidden"
    challenge = import_bundle(write_bundle(tmp_path / "b", data), FAST)
    from evaluators.layout import read_manifest

    assert read_manifest(challenge.phases.get().dataset.root).seed == 123456
    for bundle_yaml in BUNDLES_DIR.glob("*/challenge.yaml"):  # no shipped hidden test set has a public seed
        for spec in yaml.safe_load(bundle_yaml.read_text())["datasets"].values():
            if spec["split"] == "test" and "generate" in spec:
                assert spec["generate"]["seed"] == "secret", bundle_yaml
