"""What an algorithm container sees in /input for each task (docs/formats.md, "Inputs per task"); the outputs come
from the evaluators' task registry (`Task.output_files`). The how-to page and docs/containers.md show both."""

from __future__ import annotations

TASK_INPUTS: dict[str, tuple[str, ...]] = {
    "aasce-cobb": ("image.png (8-bit grey AP radiograph)",),
    "vertebra-labelling-xr": ("image.nii.gz (2D, pixel spacing in mm)", 'meta.json {"view": "coronal"|"sagittal"}'),
    "fracture-ct": ("image.nii.gz (3D, HU)", "vertebrae.nii.gz (vertebra label map, VerSe integers)",
                    'centroids.json {"T12": [x, y, z], ...}'),
    "metastatic-body-ct": ("image.nii.gz (128x128x64 patch at 1 mm, HU)",),
    "lumbosacral-ct": ("image.nii.gz (3D, HU, 1 x 0.5 x 0.5 mm)",),
}


def task_layouts() -> list[dict]:
    from evaluators.tasks import TASKS

    return [
        {"id": task.id, "title": task.title, "inputs": TASK_INPUTS.get(task.id, ()), "outputs": task.output_files}
        for task in sorted(TASKS.values(), key=lambda task: task.id)
    ]
