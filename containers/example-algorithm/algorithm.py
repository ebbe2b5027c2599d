"""Example AASCE algorithm: Cobb angles from an intensity-traced spine centreline.

Reads `/input/image.png` (one case) or `/input/<case_id>/image.png` (batch), writes `/output/angles.json` or
`/output/<case_id>/angles.json` as `{"angles": [pt, mt, tl]}` in degrees.

Method: vertebrae are the brightest structure across each row of an AP radiograph, so the spine's column in every row
is the intensity-weighted centre of the brightest pixels near the previous row's centre. A low-order polynomial
x(y) smooths that trace; its tangent tilt theta(y) = atan(dx/dy) plays the role of the vertebral end-plate tilts.
The main thoracic angle is the largest tilt difference along the spine (between the two most tilted levels); the
proximal thoracic and thoracolumbar angles are the largest tilt differences above and below those two levels.
"""

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

INPUT = Path("/input")
OUTPUT = Path("/output")
SEARCH_HALF_WIDTH = 0.08  # fraction of the image width the centre may move per traced row band
ROW_MARGIN = 0.06  # fraction of rows skipped at the top and bottom (collimator edges, labels)
POLY_DEGREE = 6


def box_blur(image: np.ndarray, radius: int) -> np.ndarray:
    """Separable mean filter with edge padding (cumulative sums keep it O(pixels))."""
    for axis in (0, 1):
        padded = np.pad(image, [(radius + 1, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        summed = np.cumsum(padded, axis=axis)
        upper = np.take(summed, np.arange(2 * radius + 1, summed.shape[axis]), axis=axis)
        lower = np.take(summed, np.arange(0, summed.shape[axis] - 2 * radius - 1), axis=axis)
        image = (upper - lower) / (2 * radius + 1)
    return image


def trace_centreline(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row coordinates and spine-centre columns, tracked from the middle of the image up and down."""
    height, width = image.shape
    smooth = box_blur(image, radius=max(1, width // 60))
    rows = np.arange(int(height * ROW_MARGIN), int(height * (1 - ROW_MARGIN)))
    window = max(3, int(width * SEARCH_HALF_WIDTH))
    middle_band = smooth[height // 3: 2 * height // 3]
    start_column = float(np.argmax(middle_band.mean(axis=0)))
    centres = np.empty(len(rows))
    start_index = len(rows) // 2
    for direction in (-1, 1):
        column = start_column
        indices = range(start_index, -1, -1) if direction < 0 else range(start_index, len(rows))
        for index in indices:
            low, high = int(max(0, column - window)), int(min(width, column + window + 1))
            profile = smooth[rows[index], low:high]
            weights = np.clip(profile - np.percentile(profile, 75), 0, None)
            if weights.sum() > 0:
                column = 0.7 * column + 0.3 * float((weights * np.arange(low, high)).sum() / weights.sum())
            centres[index] = column
    return rows.astype(float), centres


def cobb_angles_from_centreline(rows: np.ndarray, centres: np.ndarray) -> list[float]:
    """[pt, mt, tl] in degrees from the tilt profile of a polynomial fit x(y)."""
    scale = rows.max() - rows.min()
    y = (rows - rows.min()) / scale
    coefficients = np.polyfit(y, centres / scale, deg=POLY_DEGREE)
    slope = np.polyval(np.polyder(coefficients), y)
    tilt = np.degrees(np.arctan(slope))
    upper, lower = sorted((int(np.argmax(tilt)), int(np.argmin(tilt))))
    main_thoracic = float(tilt.max() - tilt.min())
    proximal_thoracic = float(np.abs(tilt[: upper + 1] - tilt[upper]).max())
    thoracolumbar = float(np.abs(tilt[lower:] - tilt[lower]).max())
    return [proximal_thoracic, main_thoracic, thoracolumbar]


def predict(image_path: Path, output_dir: Path) -> None:
    image = np.asarray(Image.open(image_path).convert("L"), dtype=np.float64) / 255.0
    angles = cobb_angles_from_centreline(*trace_centreline(image))
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "angles.json").write_text(json.dumps({"angles": [round(a, 3) for a in angles]}))
    print(f"{image_path.parent.name or 'case'}: pt={angles[0]:.1f} mt={angles[1]:.1f} tl={angles[2]:.1f}")


def main() -> int:
    if (INPUT / "image.png").is_file():
        predict(INPUT / "image.png", OUTPUT)
        return 0
    cases = sorted(path for path in INPUT.iterdir() if (path / "image.png").is_file())
    if not cases:
        print("no image.png in /input or /input/<case_id>/", file=sys.stderr)
        return 2
    for case in cases:
        predict(case / "image.png", OUTPUT / case.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
