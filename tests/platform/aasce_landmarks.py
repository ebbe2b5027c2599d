"""Hand-made AASCE cases with landmarks: vertebrae as tilted rectangles, so every Cobb angle is a difference of two
tilts and its end vertebrae are known without running the Cobb rules (case viewer tests, page and browser)."""

import math

import numpy as np
from PIL import Image

from evaluators.cobb import cobb_angles
from evaluators.layout import CaseEntry, Manifest, write_manifest

#: Tilt of each vertebra T1..L5 in degrees: up to +10 at T6, down to -15 at T12, back to 0 at L5.
TILTS = [0, 2, 4, 6, 8, 10, 6, 2, -2, -6, -10, -15, -10, -6, -3, -1, 0]


def rectangle_landmarks(tilts) -> np.ndarray:
    points = []
    for v, tilt in enumerate(tilts):
        c, s = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
        centre = np.array([50.0, 12.0 + 10.0 * v])
        for dx, dy in ((-8, -3), (8, -3), (-8, 3), (8, 3)):  # top-left, top-right, bottom-left, bottom-right
            points.append(centre + [c * dx - s * dy, s * dx + c * dy])
    return np.array(points)


def landmark_dataset(folder, cases: dict) -> None:
    for case_id in cases:
        (folder / "inputs" / case_id).mkdir(parents=True, exist_ok=True)
        Image.new("L", (100, 190), color=90).save(folder / "inputs" / case_id / "image.png")
    gt = folder / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    header = (
        ["case_id", "image_height", "image_width"] + [f"x{i}" for i in range(1, 69)] + [f"y{i}" for i in range(1, 69)]
    )
    rows = [",".join(header)]
    angle_rows = ["case_id,pt,mt,tl"]
    for case_id, points in cases.items():
        rows.append(",".join([case_id, "190", "100", *map(str, points[:, 0]), *map(str, points[:, 1])]))
        angle_rows.append(",".join([case_id, *(f"{value:.6f}" for value in cobb_angles(points, 190))]))
    (gt / "landmarks.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (gt / "angles.csv").write_text("\n".join(angle_rows) + "\n", encoding="utf-8")
    write_manifest(
        folder,
        Manifest(
            task="aasce-cobb",
            split=folder.name,
            domain="test",
            seed=None,
            cases=tuple(CaseEntry(id=case_id) for case_id in cases),
        ),
    )
