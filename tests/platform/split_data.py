"""A fracture-ct test set of 12 patients for split phases, with predictions whose patient-level ROC AUC differs
between any two parts (checked against scikit-learn in the tests)."""

from __future__ import annotations

from django.conf import settings

from evaluators.layout import CaseEntry, Manifest, write_manifest
from spinebench.datasets.services import register_dataset

from .factories import ChallengeFactory, PhaseFactory

CASES = [f"p{n:02d}" for n in range(12)]
#: Fractured patients (grade 2 on L1); the others have no fracture.
FRACTURED = {"p00", "p02", "p03", "p05", "p07", "p08", "p10"}
#: The organizers' public part: 3 fractured and 3 not.
PUBLIC = ["p00", "p01", "p02", "p04", "p06", "p07"]
PRIVATE = [case for case in CASES if case not in PUBLIC]
#: Patient scores of two submissions: "good_public" ranks the public part better, "good_private" the private one.
SCORES = {
    "good_public": {"p00": 0.91, "p01": 0.12, "p02": 0.83, "p03": 0.31, "p04": 0.22, "p05": 0.44, "p06": 0.17,
                    "p07": 0.74, "p08": 0.52, "p09": 0.63, "p10": 0.27, "p11": 0.58},
    "good_private": {"p00": 0.61, "p01": 0.72, "p02": 0.33, "p03": 0.86, "p04": 0.54, "p05": 0.79, "p06": 0.18,
                     "p07": 0.47, "p08": 0.93, "p09": 0.21, "p10": 0.68, "p11": 0.15},
}


def labels(cases) -> list[int]:
    return [int(case in FRACTURED) for case in cases]


def split_dataset(challenge, slug: str = "split-test", *, cases=CASES, fractured=FRACTURED):
    folder = settings.DATASETS_ROOT / challenge.slug / slug
    (folder / "ground_truth").mkdir(parents=True, exist_ok=True)
    rows = ["case_id,vertebra,grade"] + [
        f"{case},{name},{2 if case in fractured and name == 'L1' else 0}" for case in cases for name in ("L1", "L2")
    ]
    (folder / "ground_truth" / "vertebrae.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    write_manifest(folder, Manifest(task="fracture-ct", split="test", domain="test",
                                    cases=tuple(CaseEntry(id=c) for c in cases), seed=None))
    return register_dataset(challenge=challenge, slug=slug, folder=folder)


def split_phase(*, cases=CASES, fractured=FRACTURED, **fields):
    challenge = ChallengeFactory()
    fields.setdefault("public_case_ids", PUBLIC)
    return PhaseFactory(challenge=challenge, task="fracture-ct",
                        dataset=split_dataset(challenge, cases=cases, fractured=fractured), training_dataset=None,
                        extra_metrics=["auc_vertebra"], score_visibility="split", **fields)


def fracture_predictions(scores: dict[str, float]) -> bytes:
    rows = ["case_id,vertebra,probability"]
    for case in scores:
        score = scores[case]
        rows += [f"{case},L1,{score}", f"{case},L2,{round(score / 3, 4)}", f"{case},patient,{score}"]
    return ("\n".join(rows) + "\n").encode()
