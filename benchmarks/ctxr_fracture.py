"""Benchmark section for the two fracture-ct papers, each as its own table:

- Nicolaes et al.: the 1slice, 5slices and 3D dual-pathway models in stratified k-fold cross-validation, with the
  patient-level AUC of the ROC convex hull over (probability, noise) thresholds (stratified bootstrap mean ± sd and
  95% interval) and the vertebra-level AUC with 3 mm centroid noise (patient-clustered bootstrap interval);
- Husseini et al.: the encoder-classifier, AE-classifier, plain VAE and conditioned VAE (Spine-VAE) in
  patient-grouped k-fold cross-validation, with recall, precision, F1 and specificity (mean ± sd over folds), AUC
  and recall per Genant grade, plus the saliency figure of the conditioned VAE.

Both tables put the papers' reported figures beside ours (different data) and two trivial reference rows measured in
the same run on the same folds: an all-normal classifier and a trabecular-density threshold (lower mean HU in the
eroded vertebra mask = more likely fractured; the threshold is chosen on the training folds by Youden's J).

    run(data_root=Path("/tmp/ctxr"), device="cpu", preset="standard") -> markdown
    python benchmarks/ctxr_fracture.py --preset standard
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as `python benchmarks/ctxr_fracture.py`
    sys.path.insert(0, str(ROOT))

import phantoms  # noqa: E402
from baselines import references  # noqa: E402
from baselines.fracture import dual_pathway, vae  # noqa: E402
from baselines.fracture.common import (  # noqa: E402
    case_ids,
    patient_fractured,
    read_case,
    read_grades,
    stratified_folds,
)
from evaluators import metrics  # noqa: E402

TASK = "fracture-ct"
#: patients generated per preset, and the fraction of them made fracture-free (phantoms.fracture, `fracture_free`)
#: so that every fold of the 5-fold cross-validation holds at least two negative patients (seed 0: 2 of 12, 13 of 30
#: and about 17 of 90 patients without fracture)
CASES = {"tiny": 12, "standard": 30, "paper": 90}
FRACTURE_FREE = {"tiny": 0.0, "standard": 1 / 3, "paper": 0.1}
FIGURES = ROOT / "benchmarks" / "figures"

#: Nicolaes et al., Sect. 4 (3D model; the 1slice/5slices comparison of Sect. 3.2 is qualitative only)
PAPER_NICOLAES = {"3d": ("0.95 ± 0.02", "0.93 ± 0.01")}
#: Husseini et al., Table 1 (in-house data, %), AUC from Sect. 3.2 and recall per grade from Fig. 7a (Spine-VAE)
PAPER_HUSSEINI = {
    "encoder": ("62.9 ± 5.3", "67.36 ± 2.8", "66.4 ± 5.4", "67.5 ± 5.5", "n/r", "n/r"),
    "autoencoder": ("54.3 ± 7.2", "52.4 ± 9.2", "53.4 ± 8.2", "60.3 ± 4.6", "n/r", "n/r"),
    "vae": ("73.1 ± 3.3", "70.3 ± 4.8", "71.6 ± 3.2", "68.8 ± 6.6", "n/r", "n/r"),
    "conditioned-vae": ("79.3 ± 2.0", "71.4 ± 3.1", "75.4 ± 2.8", "69.5 ± 4.0", "0.81", "65 / 81 / 100"),
}
LOSS_NAMES = {"voxel": "voxel-wise", "class": "class-balanced"}
AXIS_NAMES = ("superior-inferior", "anterior-posterior", "left-right")  # array axes z, y, x (common.py)
VAE_NAMES = {"encoder": "Encoder-classifier (paper: Baseline)", "autoencoder": "AE-classifier (AE-baseline)",
             "vae": "VAE (no one-hot, plain MSE)", "conditioned-vae": "Spine-VAE (conditioned, weighted MSE)"}


def dataset(data_root: Path, preset: str) -> tuple[Path, str]:
    """The generated fracture-ct training set for the cross-validations (reused when present)."""
    cases, free = CASES[preset], FRACTURE_FREE[preset]
    small = preset != "paper"
    options: dict[str, Any] = {"fracture_free": free} if free else {}
    out = Path(data_root) / (f"fracture-ct-{preset}-{cases}cases" + (f"-free{free:.3f}" if free else ""))
    if not (out / "dataset.json").is_file():
        phantoms.generate(TASK, out=out, cases=cases, seed=0, small=small, progress=False, **options)
    option = f", fracture_free={free:.3g}" if free else ""
    return out, f"phantoms.generate('fracture-ct', cases={cases}, seed=0, small={small}{option})"


# ------------------------------------------------------------------------------------------ reference scores
def _youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores)
    return float(thresholds[1:][np.argmax((tpr - fpr)[1:])])


# ---------------------------------------------------------------------------------------------- formatting
def _f(value, digits=3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _auc_ci(auc: tuple[float, float, float]) -> str:
    return f"{_f(auc[0])} [{_f(auc[1])}, {_f(auc[2])}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# ------------------------------------------------------------------------------------------- Nicolaes et al.
def _vertebra_arrays(data_dir: Path, scores: dict[str, dict[str, float]]):
    grades = read_grades(data_dir)
    labels, values, clusters = [], [], []
    for case_id, per_vertebra in scores.items():
        for name, score in per_vertebra.items():
            if name in grades.get(case_id, {}):
                labels.append(grades[case_id][name] >= 1)
                values.append(score)
                clusters.append(case_id)
    return np.asarray(labels, int), np.asarray(values, float), np.asarray(clusters)


def _reference_detection_row(name: str, data_dir: Path, scores, n_bootstrap: int) -> list[str]:
    grades = read_grades(data_dir)
    ids = list(scores)
    patient = np.asarray([max(scores[c].values()) for c in ids])
    positive = np.asarray([patient_fractured(grades[c]) for c in ids], int)
    labels, values, clusters = _vertebra_arrays(data_dir, scores)
    fpr, tpr, _ = metrics.roc_curve(positive, patient)
    hull = metrics.roc_convex_hull(np.column_stack([fpr, tpr]))
    patient_auc = metrics.roc_auc_ci(positive, patient, n_bootstrap=n_bootstrap, seed=0)
    vertebra_auc = metrics.roc_auc_ci(labels, values, n_bootstrap=n_bootstrap, seed=0, clusters=clusters)
    return [name, "0", f"{_f(np.trapezoid(hull[:, 1], hull[:, 0]))} (hull of its ROC)", _auc_ci(patient_auc),
            _auc_ci(vertebra_auc), "", "", "0"]


def nicolaes_section(data_dir: Path, source: str, *, preset: str, device: str, density) -> str:
    config = dual_pathway.PRESETS[preset]
    ids = case_ids(data_dir)
    zero = {c: {n: 0.0 for n in read_case(data_dir, c).centroids} for c in ids}
    rows = [
        _reference_detection_row("Reference: all-normal (every score 0)", data_dir, zero, config.n_bootstrap),
        _reference_detection_row("Reference: trabecular density (−mean HU)", data_dir, density, config.n_bootstrap),
    ]
    folds_used = None
    for variant in ("1slice", "5slices", "3d"):
        variant_config = replace(config, variant=variant)
        start = time.perf_counter()
        result = dual_pathway.cross_validate(data_dir=data_dir, config=variant_config, device=device,
                                             progress=False)
        seconds = time.perf_counter() - start
        summary = dual_pathway.summarise(result, variant_config)
        folds_used = len(result["losses"])
        parameters = dual_pathway.count_parameters(dual_pathway.build_model(variant_config))
        paper = PAPER_NICOLAES.get(variant, ("not reported (qualitative, Fig. 3)", "not reported"))
        low, high = summary["patient_auc_ci"]
        rows.append([
            f"Dual-pathway {variant}", f"{parameters:,}",
            f"{_f(summary['patient_auc'])} ± {_f(summary['patient_auc_std'])} [{_f(low)}, {_f(high)}]",
            _auc_ci(summary["patient_score_auc"]), _auc_ci(summary["vertebra_auc"]), paper[0], paper[1],
            f"{seconds:.0f}",
        ])
    grades = read_grades(data_dir)
    negatives = sum(not patient_fractured(grades[c]) for c in ids)
    vertebrae = sum(len(g) for g in grades.values())
    fractured = sum(v >= 1 for g in grades.values() for v in g.values())
    header = ["Model", "Parameters", "Patient AUC, hull (bootstrap mean ± sd) [95% CI]",
              "Patient AUC, single score [95% CI]",
              "Vertebra AUC, 3 mm centroid noise [95% CI]", "Paper patient AUC (different data)",
              "Paper vertebra AUC (different data)", "CV seconds"]
    return "\n".join([
        "### Vertebral fracture detection: dual-pathway 3D CNN (Nicolaes et al.)",
        "",
        f"Data: {len(ids)} generated patients ({negatives} without fracture), {vertebrae} vertebrae of which "
        f"{fractured} fractured, from {source}. Stratified {folds_used}-fold cross-validation with at least "
        f"{config.min_negatives_per_fold} patient(s) without fracture per fold, preset `{preset}` (voxels "
        f"{config.spacing_mm:g} mm, {config.epochs} epochs × {config.segments_per_epoch} segments of "
        f"{config.segment_output}³ outputs, {LOSS_NAMES[config.loss_balance]} cross-entropy, flips along "
        f"{' and '.join(AXIS_NAMES[a] for a in config.flip_axes)}; module docstring: where this departs from the "
        f"paper's training regime), device `{device}`, "
        f"{config.n_bootstrap} bootstrap replicates. Patient AUC (hull): area under the ROC convex hull of the "
        f"{len(config.probability_thresholds)} × {len(config.noise_thresholds)} (probability, noise) threshold "
        "classifiers; single score: the highest probability threshold at which a component of at least "
        f"{config.noise_threshold} voxels survives. Paper: 90 clinical CT scans, 5-fold CV, n = 1000 bootstrap.",
        "",
        _table(header, rows),
    ])


# ------------------------------------------------------------------------------------------- Husseini et al.
def _reference_classification_row(name: str, data_dir: Path, scores, config: vae.Config) -> list[str]:
    """Threshold chosen on the training folds (Youden's J) for the density reference, 0.5 for the all-normal one;
    the same patient folds as vae.cross_validate."""
    ids = case_ids(data_dir)
    grades = read_grades(data_dir)
    folds = stratified_folds([patient_fractured(grades[c]) for c in ids], n_folds=config.folds,
                             min_negatives=config.min_negatives_per_fold, seed=config.seed)
    labels, values, clusters = _vertebra_arrays(data_dir, scores)
    grade_values = np.asarray([grades[c][n] for c in scores for n in scores[c] if n in grades[c]])
    constant = np.ptp(values) == 0
    per_fold, decisions = [], np.zeros(len(values))
    for fold in folds:
        test = np.isin(clusters, [ids[i] for i in fold])
        threshold = 0.5 if constant else _youden_threshold(labels[~test], values[~test])
        per_fold.append(metrics.binary_scores(labels[test], values[test], threshold=threshold))
        decisions[test] = values[test] >= threshold
    cells = [name]
    for key in ("recall", "precision", "f1", "specificity"):
        fold_values = np.asarray([s[key] for s in per_fold], float)
        cells.append(f"{_f(100 * np.nanmean(fold_values), 1)} ± {_f(100 * np.nanstd(fold_values), 1)}")
    cells.append(_auc_ci(metrics.roc_auc_ci(labels, values, n_bootstrap=config.n_bootstrap, seed=0,
                                            clusters=clusters)))
    per_grade = metrics.recall_per_grade(grade_values, decisions, threshold=0.5)
    cells.append(" / ".join(_f(100 * per_grade.get(g, np.nan), 0) for g in (1, 2, 3)))
    return cells + ["0"]


def husseini_section(data_dir: Path, source: str, *, preset: str, device: str, density) -> str:
    config = vae.PRESETS[preset]
    ids = case_ids(data_dir)
    zero = {c: {n: 0.0 for n in read_case(data_dir, c).centroids} for c in ids}
    rows = [
        _reference_classification_row("Reference: all-normal", data_dir, zero, config),
        _reference_classification_row("Reference: trabecular density threshold", data_dir, density, config),
    ]
    figure_note, folds_used = "", None
    for model in ("encoder", "autoencoder", "vae", "conditioned-vae"):
        model_config = replace(config, model=model)
        start = time.perf_counter()
        result = vae.cross_validate(data_dir=data_dir, config=model_config, device=device, progress=False)
        seconds = time.perf_counter() - start
        summary = vae.summarise(result, model_config)
        folds_used = len(result["losses"])
        paper = PAPER_HUSSEINI[model]
        cells = [VAE_NAMES[model]]
        for i, key in enumerate(("recall", "precision", "f1", "specificity")):
            mean, std = summary[key]
            cells.append(f"{_f(100 * mean, 1)} ± {_f(100 * std, 1)} ({paper[i]})")
        cells.append(f"{_auc_ci(summary['auc'])} ({paper[4]})")
        per_grade = summary["recall_per_grade"]
        cells.append(" / ".join(_f(100 * per_grade.get(g, np.nan), 0) for g in (1, 2, 3)) + f" ({paper[5]})")
        rows.append(cells + [f"{seconds:.0f}"])
        if model == "conditioned-vae":
            patches = vae.load_patches(data_dir, result["held_out_cases"], model_config, grades=read_grades(data_dir))
            figure = FIGURES / f"ctxr_fracture_saliency_{preset}.png"
            vae.saliency_figure(checkpoint=result["checkpoint"], config=model_config, patches=patches, out=figure)
            figure_note = (f"Saliency of the fracture logit (Spine-VAE, last fold's held-out vertebrae, "
                           f"mid-sagittal): `{figure.relative_to(ROOT)}`.")
    header = ["Model", "Recall % (paper)", "Precision % (paper)", "F1 % (paper)", "Specificity % (paper)",
              "AUC [95% CI] (paper)", "Recall % grade 1 / 2 / 3 (paper)", "CV seconds"]
    grades = read_grades(data_dir)
    vertebrae = sum(len(g) for g in grades.values())
    fractured = sum(v >= 1 for g in grades.values() for v in g.values())
    return "\n".join([
        "### Vertebral fracture classification: conditioned VAE (Husseini et al.)",
        "",
        f"Data: {vertebrae} vertebrae ({fractured} fractured) of {len(ids)} generated patients from {source}. "
        f"Patient-grouped, stratified {folds_used}-fold cross-validation (at least "
        f"{config.min_negatives_per_fold} patient(s) without fracture per fold), "
        f"preset `{preset}` ({config.patch}³ patches at {config.spacing_mm:g} mm, {config.recon_epochs} + "
        f"{config.kl_epochs} + {config.classifier_epochs} epochs), device `{device}`, threshold "
        f"{config.threshold}. Recall, precision, F1 and specificity: mean ± sd over folds; AUC pooled over folds "
        f"with a patient-clustered bootstrap interval ({config.n_bootstrap} replicates). Paper figures in brackets: "
        "in-house data (2700 vertebrae, 5-fold CV); n/r = not reported in the text.",
        "",
        _table(header, rows),
        "",
        figure_note,
    ])


def run(*, data_root, device: str = "cpu", preset: str = "standard") -> str:
    """Both fracture tables as one markdown section (cross-validations on one generated training set)."""
    if device in (None, "auto"):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    data_dir, source = dataset(Path(data_root), preset)
    density = references.density_scores(data_dir)
    return "\n\n".join([
        "## Fracture CT (Nicolaes et al.; Husseini et al.)",
        nicolaes_section(data_dir, source, preset=preset, device=device, density=density),
        husseini_section(data_dir, source, preset=preset, device=device, density=density),
    ]) + "\n"


def throughput(*, data_root, device: str, cases: int = 2, segments: int = 800) -> str:
    """Speed of the `paper` presets on full-size generated volumes: dual-pathway 3D training (segments/s) and grid
    inference of whole 1 mm volumes (volumes/s), VAE training and inference on 64^3 patches (patches/s)."""
    import torch

    def clock():
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    out = Path(data_root) / "fracture-ct-full"
    if not (out / "dataset.json").is_file():
        phantoms.generate(TASK, out=out, cases=cases, seed=1, small=False, progress=False)
    ids = case_ids(out)
    config = replace(dual_pathway.PRESETS["paper"], epochs=2, segments_per_epoch=segments // 2, tile_output=99)
    prepared = dual_pathway._training_cases(out, ids, config)
    start = clock()
    checkpoint = dual_pathway.fit(prepared, config, device=device, progress=False)
    train_seconds = clock() - start
    model = dual_pathway.load_model(checkpoint, config, device)
    dual_pathway._infer(model, prepared[0], config, device)  # warm-up
    start = clock()
    for case in prepared:
        dual_pathway._infer(model, case, config, device)
    infer_seconds = clock() - start
    voxels = np.mean([case.volume.size for case in prepared])
    vae_config = replace(vae.PRESETS["paper"], recon_epochs=1, kl_epochs=1, classifier_epochs=1)
    patches = vae.load_patches(out, ids, vae_config, grades=read_grades(out))
    start = clock()
    vae_checkpoint = vae.fit(patches, vae_config, device=device, progress=False)
    vae_train = clock() - start
    vae_model = vae.load_model(vae_checkpoint, vae_config, device)
    vae.fracture_probabilities(vae_model, patches, device=device)  # warm-up
    start = clock()
    vae.fracture_probabilities(vae_model, patches, device=device)
    vae_infer = clock() - start
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    segments = config.epochs * config.segments_per_epoch
    return "\n".join([
        f"Throughput of the `paper` presets on {name} ({len(ids)} full-size generated volumes, "
        f"{voxels / 1e6:.1f} M voxels each at 1 mm):",
        "",
        _table(["Method", "Training", "Inference"], [
            [f"Dual-pathway 3D ({checkpoint['parameters']:,} parameters, segments of "
             f"{config.segment_output}³ outputs)", f"{segments / train_seconds:.0f} segments/s",
             f"{len(prepared) / infer_seconds:.2f} volumes/s (grid of {config.tile_output}³ tiles)"],
            [f"Spine-VAE ({vae_config.patch}³ patches at {vae_config.spacing_mm} mm, batch "
             f"{vae_config.batch_size})", f"{3 * len(patches.images) / vae_train:.0f} patches/s",
             f"{len(patches.images) / vae_infer:.0f} patches/s"],
        ]),
    ])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="standard", choices=sorted(CASES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", default="/tmp/spinebench-ctxr")
    parser.add_argument("--throughput", action="store_true", help="time the paper presets instead (for a GPU)")
    args = parser.parse_args(argv)
    if args.throughput:
        print(throughput(data_root=args.data_root, device=args.device))
        return
    print(run(data_root=args.data_root, device=args.device, preset=args.preset))


if __name__ == "__main__":
    main()
