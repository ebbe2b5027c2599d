"""Hand-written AASCE datasets for the platform tests: distinctive hidden angles the tests search pages for, and
predictions whose SMAPE is worked out by hand in the tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from evaluators.layout import CaseEntry, Manifest, write_manifest

#: Hidden test ground truth (degrees). Values chosen so their text never appears by accident in a page.
HIDDEN_ANGLES = {
    "case_a": (31.4159, 27.1828, 14.1421),
    "case_b": (17.3205, 22.3607, 12.7279),
    "case_c": (24.4949, 19.8997, 11.1803),
}
TRAIN_ANGLES = {"train_1": (10.5, 20.5, 5.5), "train_2": (12.25, 8.75, 3.5)}


def write_aasce_dataset(folder: Path, angles: dict[str, tuple[float, float, float]], *, split: str) -> Path:
    folder = Path(folder)
    for case_id in angles:
        case_dir = folder / "inputs" / case_id
        case_dir.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 16), color=128).save(case_dir / "image.png")
    gt = folder / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    lines = ["case_id,pt,mt,tl"] + [f"{case},{pt},{mt},{tl}" for case, (pt, mt, tl) in angles.items()]
    (gt / "angles.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_manifest(
        folder,
        Manifest(task="aasce-cobb", split=split, domain=split, cases=tuple(CaseEntry(id=c) for c in angles), seed=None),
    )
    return folder


def predictions_csv(angles: dict[str, tuple[float, float, float]]) -> bytes:
    lines = ["case_id,pt,mt,tl"] + [f"{case},{pt},{mt},{tl}" for case, (pt, mt, tl) in angles.items()]
    return ("\n".join(lines) + "\n").encode()


def smape(truth: dict, predicted: dict) -> float:
    """AASCE SMAPE (%) = 100/N sum_i sum_k |p_ik - t_ik| / sum_k (p_ik + t_ik), written out independently."""
    total = 0.0
    for case, true in truth.items():
        pred = predicted[case]
        total += sum(abs(p - t) for p, t in zip(pred, true)) / sum(p + t for p, t in zip(pred, true))
    return 100.0 * total / len(truth)
