"""The declarative bundle schema: key-exact messages, the two profiles, and docs/bundles.md rendered from it."""

import copy

import pytest
import yaml
from django.core.management import call_command
from django.test import override_settings

from spinebench.challenges.bundle_docs import DOCS_FILE, render
from spinebench.challenges.bundle_schema import (
    LEADERBOARD_FIELDS,
    PHASE_FIELDS,
    TRUSTED,
    BundleError,
    untrusted_profile,
    validate_bundle,
)
from spinebench.challenges.models import Phase
from spinebench.cli import BUNDLES_DIR

BASE = {
    "challenge": {"slug": "mini", "title": "Mini"},
    "datasets": {"train": {"task": "aasce-cobb", "split": "train", "generate": {"cases": 3, "seed": 1}}},
    "phases": [
        {"slug": "training", "title": "Training", "task": "aasce-cobb"},
        {"slug": "test", "title": "Test", "task": "aasce-cobb", "dataset": "train"},
    ],
}


def refusal(mutate, profile=TRUSTED) -> str:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(BundleError) as error:
        validate_bundle(data, profile=profile)
    return str(error.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["phases"][1].update(leaderboard={"rankng": "primary"}),
         "challenge.yaml: phases[1].leaderboard: unknown key 'rankng' (allowed: auto_publish, decimal_places, "
         "extra_metrics, max_chosen, metric_directions, primary_metric, ranking_method, score_visibility, selection)"),
        (lambda d: d["datasets"]["train"]["generate"].update(sed=1),
         "challenge.yaml: datasets.train.generate: unknown key 'sed' (allowed: cases, domain, seed, small, task)"),
        (lambda d: d["datasets"]["train"]["generate"].update(seed=-1),
         "challenge.yaml: datasets.train.generate.seed: expected a non-negative integer or 'secret', got -1"),
        (lambda d: d["datasets"]["train"]["generate"].update(seed=True),
         "challenge.yaml: datasets.train.generate.seed: expected a non-negative integer or 'secret', got True"),
        (lambda d: d["datasets"]["train"]["generate"].update(cases="3"),
         "challenge.yaml: datasets.train.generate.cases: expected an integer, got str '3'"),
        (lambda d: d["datasets"]["train"]["generate"].update(cases=0),
         "challenge.yaml: datasets.train.generate.cases: expected a number greater than 0, got 0"),
        (lambda d: d["datasets"]["train"].update(split="validation"),
         "challenge.yaml: datasets.train.split: Value 'validation' is not a valid choice (expected 'train' or 'test')"),
        (lambda d: d["phases"][0].update(public="yes"), "challenge.yaml: phases[0].public: expected true or false"),
        (lambda d: d["phases"][0].update(container=[1]), "challenge.yaml: phases[0].container: expected a mapping"),
        (lambda d: d["phases"][0].update(container={"mode": "all"}),
         "challenge.yaml: phases[0].container.mode: Value 'all' is not a valid choice"),
        (lambda d: d.update(phases={"test": {}}), "challenge.yaml: phases: expected a list"),
        (lambda d: d["datasets"]["train"].update({"import": {"layout": "spineweb16"}}),
         "challenge.yaml: datasets.train.import: missing required key 'path'"),
    ],
)
def test_trusted_profile_names_the_key(mutate, message):
    assert message in refusal(mutate)


def swap_source(**source):
    def mutate(data):
        del data["datasets"]["train"]["generate"]
        data["datasets"]["train"].update(source)

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (swap_source(path="../aasce-2019/test"),
         "challenge.yaml: datasets.train.path: a dataset path is not allowed in an uploaded bundle"),
        (swap_source(**{"import": {"layout": "spineweb16", "path": "/data/boostnet"}}),
         "challenge.yaml: datasets.train.import.path: import.path is not allowed in an uploaded bundle"),
        (lambda d: d["challenge"].update(organizers=["root"]),
         "challenge.yaml: challenge.organizers: an uploaded bundle cannot name organizers"),
        (lambda d: d["challenge"].update(description_file="../../../etc/passwd"),
         "challenge.yaml: challenge.description_file: must be a path inside the bundle, got '../../../etc/passwd'"),
        (lambda d: d["challenge"].update(description_file="/etc/passwd"),
         "challenge.yaml: challenge.description_file: must be a path inside the bundle"),
        (lambda d: d["datasets"]["train"]["generate"].update(cases=51),
         "challenge.yaml: datasets.train.generate.cases: an uploaded bundle generates at most 50 cases, got 51"),
    ],
)
@override_settings(SPINEBENCH_UPLOADED_BUNDLE_MAX_CASES=50)
def test_untrusted_profile_refuses_what_reaches_the_server(mutate, message):
    assert message in refusal(mutate, untrusted_profile())
    validate_bundle(_mutated(mutate), profile=TRUSTED)  # the operator's CLI may do each of these


def _mutated(mutate) -> dict:
    data = copy.deepcopy(BASE)
    mutate(data)
    if "path" in data["datasets"]["train"]:
        data["datasets"]["train"]["path"] = "somewhere"
    return data


@pytest.mark.parametrize("bundle", sorted(BUNDLES_DIR.glob("*/challenge.yaml")), ids=lambda p: p.parent.name)
def test_shipped_bundles_pass_both_profiles(bundle):
    data = yaml.safe_load(bundle.read_text(encoding="utf-8"))
    for profile in (TRUSTED, untrusted_profile()):
        assert validate_bundle(copy.deepcopy(data), profile=profile)["challenge"]["slug"] == data["challenge"]["slug"]


def test_schema_keys_name_model_fields():
    fields = {field.name for field in Phase._meta.get_fields()}
    assert set(PHASE_FIELDS.values()) <= fields and set(LEADERBOARD_FIELDS.values()) <= fields


def test_docs_are_rendered_from_the_schema():
    assert DOCS_FILE.read_text(encoding="utf-8") == render(), "run `python manage.py bundle_docs`"
    call_command("bundle_docs", "--check")
    assert "| `rankng`" not in render() and "| `ranking_method` |" in render()
