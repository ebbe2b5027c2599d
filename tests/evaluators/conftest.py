"""Builders of tiny SpineBench datasets (docs/formats.md) for the evaluator tests."""

import json

import numpy as np
import pytest
import SimpleITK as sitk


def write_manifest(root, task, cases, groups=None):
    groups = groups or {}
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "task": task,
                "split": "test",
                "domain": "test",
                "cases": [{"id": case_id, "group": groups.get(case_id)} for case_id in cases],
            }
        )
    )


def image(array, *, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    result = sitk.GetImageFromArray(np.asarray(array))
    result.SetSpacing(spacing)
    result.SetOrigin(origin)
    return result


@pytest.fixture
def make_dataset(tmp_path):
    """make_dataset(task, truth, groups=None) -> dataset folder; `truth` in the per-task shape used below."""

    def build(task, truth, groups=None):
        root = tmp_path / "dataset"
        gt = root / "ground_truth"
        gt.mkdir(parents=True)
        write_manifest(root, task, list(truth), groups)
        if task == "aasce-cobb":
            lines = ["case_id,pt,mt,tl"] + [f"{c},{a[0]},{a[1]},{a[2]}" for c, a in truth.items()]
            (gt / "angles.csv").write_text("\n".join(lines) + "\n")
        elif task == "fracture-ct":
            lines = ["case_id,vertebra,grade,shape"]
            for case_id, grades in truth.items():
                lines += [
                    f"{case_id},{name},{grade},{'normal' if grade == 0 else 'wedge'}" for name, grade in grades.items()
                ]
            (gt / "vertebrae.csv").write_text("\n".join(lines) + "\n")
        elif task == "vertebra-labelling-xr":
            for case_id, (centroids, view) in truth.items():
                (gt / f"{case_id}.json").write_text(json.dumps({"centroids": centroids}))
                (root / "inputs" / case_id).mkdir(parents=True)
                (root / "inputs" / case_id / "meta.json").write_text(json.dumps({"view": view}))
        else:
            for case_id, label_map in truth.items():
                sitk.WriteImage(label_map, str(gt / f"{case_id}.nii.gz"))
        return root

    return build
