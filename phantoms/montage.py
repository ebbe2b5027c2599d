"""Montage previews: the first cases of a dataset tiled on one grey PNG with their case ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

TILE_HEIGHT = 320
COLUMNS = 6


def to_uint8(array: np.ndarray, *, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Window a float array to 0-255 (percentile window unless `low`/`high` are given)."""
    array = np.asarray(array, dtype=np.float32)
    low = float(np.percentile(array, 1)) if low is None else low
    high = float(np.percentile(array, 99.5)) if high is None else high
    scaled = (array - low) / max(high - low, 1e-6)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_montage(path: Path, previews: list[tuple[str, np.ndarray]], *, tile_height: int = TILE_HEIGHT) -> Path:
    """Tile `(case id, uint8 image)` previews, each scaled to `tile_height`, `COLUMNS` per row."""
    tiles = []
    for name, array in previews:
        image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
        width = max(1, round(image.width * tile_height / image.height))
        tile = image.resize((width, tile_height), Image.Resampling.BILINEAR)
        ImageDraw.Draw(tile).text((4, 4), name, fill=255)
        tiles.append(tile)
    rows = [tiles[i : i + COLUMNS] for i in range(0, len(tiles), COLUMNS)]
    width = max(sum(t.width + 4 for t in row) for row in rows)
    sheet = Image.new("L", (width, len(rows) * (tile_height + 4)), color=0)
    for r, row in enumerate(rows):
        x = 0
        for tile in row:
            sheet.paste(tile, (x, r * (tile_height + 4)))
            x += tile.width + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG")
    return path
