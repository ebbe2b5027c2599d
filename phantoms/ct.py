"""A CT spine phantom shared by the three CT tasks: vertebrae built from implicit shapes in each vertebra's own frame,
painted into a HU volume with partial-volume edges, plus the label maps the tasks need.

World coordinates are SimpleITK's physical millimetres (identity direction, LPS-like: +x lateral, +y posterior,
+z superior). A vertebra's local frame has x lateral, y posterior and z along the spine; its parts are
- the body: an elliptic cylinder (half width a, half depth b, half height hh varying over the endplate when the
  vertebra is fractured) with a cortical shell of thickness `cortex` around a trabecular core,
- the neural arch: a ring around the canal joined to the body (pedicles and laminae), articular columns, transverse
  processes and a spinous process angled downwards, capsules of a few millimetres,
- for the sacrum (S1, S2): wide alae instead of transverse processes.
Discs are elliptic cylinders between adjacent endplates, the canal holds CSF, lumbosacral nerve roots are tubes
from the lateral recess out through the foramen. Every part is an approximate signed distance d (mm, negative
inside); a voxel's covered fraction is clip(0.5 - d / voxel, 0, 1), so edges get partial-volume values, and a label is
the set of voxels at least half covered. Work happens inside each part's bounding box only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluators.layout import VERTEBRA_LABELS

ORDER = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)] + [
    "S1", "S2"]
HU = {"air": -1000.0, "fat": -95.0, "muscle": 45.0, "organ": 35.0, "csf": 12.0, "disc": 85.0, "nerve": 32.0,
      "cortical": 900.0, "arch": 520.0}
PART_BONE, PART_DISC, PART_NERVE = 1, 2, 3
ARCH_THICKNESS = 4.5  # mm, pedicles and laminae
#: Signed distance (mm, negative inside) at local coordinates x, y, z.
Distance = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
#: A part of the neural arch: local box centre, half extent, signed distance.
ArchPart = tuple[np.ndarray, np.ndarray, Distance]
#: A lesion: (vertebra name, centre in its local frame, radius in mm, HU).
Lesion = tuple[str, np.ndarray, float, float]
#: The local x, y, z arrays of a region, or three Nones when the box misses the grid (its region is None then, and
#: every caller checks the region first).
LocalCoordinates = tuple[Any, Any, Any]


def level_index(name: str) -> float:
    return float(ORDER.index(name))


def nominal_size(name: str) -> dict[str, float]:
    """Adult dimensions (mm) by level, interpolated over the spine: body height, half width, half depth, the disc
    below, canal radius, process lengths."""
    i = level_index(name)
    knots = [0, 6, 7, 18, 19, 23, 24, 25]  # C1, C7, T1, T12, L1, L5, S1, S2
    return {
        "height": float(np.interp(i, knots, [10, 13, 15, 22.5, 24, 27, 30, 22])),
        "half_width": float(np.interp(i, knots, [11, 12.5, 14, 20, 21, 25, 26, 20])),
        "half_depth": float(np.interp(i, knots, [7, 8, 8.5, 15, 16, 17.5, 17, 13])),
        "disc": float(np.interp(i, knots, [3, 4, 3.5, 6.5, 8, 11, 2, 1.5])),
        "canal": float(np.interp(i, knots, [9, 8, 7, 7.5, 8.5, 9.5, 8, 6])),
        "transverse": float(np.interp(i, knots, [10, 12, 20, 14, 22, 26, 0, 0])),
        "spinous": float(np.interp(i, knots, [10, 28, 32, 30, 32, 26, 18, 14])),
    }


@dataclass(frozen=True)
class Vertebra:
    name: str
    centre: np.ndarray  # (3,) world mm
    axes: np.ndarray  # (3, 3) rows: local x, y, z in world coordinates
    half_width: float
    half_depth: float
    half_height: float
    disc_below: float
    canal: float
    transverse: float
    spinous: float
    cortex: float
    trabecular_hu: float
    loss: float = 0.0  # fractional height loss at the shape's deepest point
    shape: str = "normal"
    grade: int = 0

    @property
    def label(self) -> int:
        return VERTEBRA_LABELS[self.name]

    @property
    def is_sacrum(self) -> bool:
        return self.name in ("S1", "S2")

    def rim_half_height(self) -> float:
        """Half height at the posterior rim, which sets the distance to the neighbours (a crush lowers it too)."""
        return self.half_height * (1.0 - self.loss if self.shape == "crush" else 1.0)


def rotation(sagittal_deg: float, coronal_deg: float, axial_deg: float) -> np.ndarray:
    """Rows: the local x, y, z axes in world coordinates for a spine tilted forward (about x), sideways (about y)
    and turned about its own axis."""
    a, c, r = np.radians([-sagittal_deg, coronal_deg, axial_deg])  # rx(-a) tips local z towards +y
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    rotation: np.ndarray = (ry @ rx @ rz).T
    return rotation


def sagittal_profile(name: str) -> float:
    """Tangent angle (degrees, positive: the spine's upward tangent leans posterior) giving thoracic kyphosis and
    lumbar lordosis with a sacral slope."""
    i = level_index(name)
    return float(np.interp(i, [0, 7, 13, 18, 19, 21.5, 23, 24, 25], [0, -15, 0, 14, 14, 0, -22, -38, -48]))


@dataclass(frozen=True)
class SpineParams:
    size: float = 1.0
    kyphosis: float = 1.0  # scales the sagittal profile
    scoliosis: float = 0.0  # degrees of coronal tilt amplitude
    trabecular_hu: float = 200.0
    cortex: float = 1.2


def sample_params(rng: np.random.Generator, *, osteoporosis: float = 0.0) -> SpineParams:
    return SpineParams(
        size=float(rng.uniform(0.9, 1.1)),
        kyphosis=float(rng.uniform(0.7, 1.3)),
        scoliosis=float(rng.normal(0.0, 3.0)),
        trabecular_hu=float(rng.uniform(190, 260) - 140.0 * osteoporosis),
        cortex=float(rng.uniform(1.0, 1.5) * (1.0 - 0.3 * osteoporosis)),
    )


def build_spine(
    rng: np.random.Generator,
    names: list[str],
    *,
    params: SpineParams,
    anchor: np.ndarray,
    anchor_level: str,
    fractures: dict[str, tuple[int, str, float]] | None = None,
) -> list[Vertebra]:
    """Vertebrae `names` (top to bottom, consecutive), stacked along the sagittal profile so that `anchor_level`'s
    centre lands at `anchor`. `fractures`: name -> (grade, shape, loss)."""
    fractures = fractures or {}
    vertebrae = []
    phase = rng.uniform(0, 2 * np.pi)
    for name in names:
        size = nominal_size(name)
        jitter = rng.uniform(0.96, 1.04, 3)
        grade, shape, loss = fractures.get(name, (0, "normal", float(rng.uniform(0.0, 0.08))))
        coronal = params.scoliosis * np.sin(phase + level_index(name) / 4.0)
        vertebrae.append(Vertebra(
            name=name, centre=np.zeros(3),
            axes=rotation(sagittal_profile(name) * params.kyphosis, coronal, float(rng.normal(0, 2.0))),
            half_width=size["half_width"] * params.size * jitter[0],
            half_depth=size["half_depth"] * params.size * jitter[1],
            half_height=size["height"] / 2 * params.size * jitter[2],
            disc_below=size["disc"] * params.size * float(rng.uniform(0.85, 1.15)),
            canal=size["canal"] * params.size, transverse=size["transverse"] * params.size,
            spinous=size["spinous"] * params.size, cortex=params.cortex,
            trabecular_hu=params.trabecular_hu + float(rng.normal(0, 10)),
            loss=loss, shape=shape, grade=grade,
        ))
    centres = [np.zeros(3)]
    for upper, lower in zip(vertebrae[:-1], vertebrae[1:]):
        step = upper.axes[2] * upper.rim_half_height() + lower.axes[2] * lower.rim_half_height()
        step = step + (upper.axes[2] + lower.axes[2]) / 2 * upper.disc_below
        centres.append(centres[-1] - step)
    shift = anchor - centres[names.index(anchor_level)]
    return [replace(v, centre=c + shift) for v, c in zip(vertebrae, centres)]


@dataclass(frozen=True)
class Grid:
    shape: tuple[int, int, int]  # (nz, ny, nx)
    spacing: tuple[float, float, float]  # (sx, sy, sz) mm
    origin: tuple[float, float, float]  # world of voxel (0, 0, 0)

    @property
    def voxel(self) -> float:
        return float(np.prod(self.spacing) ** (1 / 3))

    def box(self, low: np.ndarray, high: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices (z, y, x) of the voxels whose centres lie in the world box [low, high], or None."""
        spacing, origin = np.asarray(self.spacing), np.asarray(self.origin)
        start = np.maximum(np.ceil((low - origin) / spacing), 0).astype(int)
        stop = np.minimum(np.floor((high - origin) / spacing) + 1, self.shape[::-1]).astype(int)
        if np.any(stop <= start):
            return None
        return slice(start[2], stop[2]), slice(start[1], stop[1]), slice(start[0], stop[0])

    def world(self, region: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable world x, y, z arrays (float32) of a region."""
        zs, ys, xs = (np.arange(s.start, s.stop, dtype=np.float32) for s in region)
        sx, sy, sz = self.spacing
        ox, oy, oz = self.origin
        return ((xs * sx + ox)[None, None, :], (ys * sy + oy)[None, :, None], (zs * sz + oz)[:, None, None])


def coverage(distance: np.ndarray, voxel: float) -> np.ndarray:
    return np.clip(0.5 - distance / voxel, 0.0, 1.0)


def _capsule(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, start: npt.ArrayLike, end: npt.ArrayLike, radius: float
) -> np.ndarray:
    """Signed distance to a capsule from `start` to `end` (local coordinates)."""
    p, q = np.asarray(start, np.float32), np.asarray(end, np.float32)
    axis = q - p
    t = ((x - p[0]) * axis[0] + (y - p[1]) * axis[1] + (z - p[2]) * axis[2]) / float(axis @ axis)
    t = np.clip(t, 0.0, 1.0)
    distance: np.ndarray = np.sqrt((x - p[0] - t * axis[0]) ** 2 + (y - p[1] - t * axis[1]) ** 2
                                   + (z - p[2] - t * axis[2]) ** 2) - radius
    return distance


def endplate_half_height(v: Vertebra, xn: np.ndarray, yn: np.ndarray) -> np.ndarray:
    """Half height over the endplate (normalised local xn, yn in the unit disc): physiological concavity plus the
    fracture's shape (wedge: anterior collapse; biconcave: central; crush: everywhere)."""
    radial = np.clip(1.0 - (xn**2 + yn**2), 0.0, 1.0)
    if v.shape == "wedge" or v.shape == "normal":
        profile = np.clip((1.0 - yn) / 2.0, 0.0, 1.0)
    elif v.shape == "biconcave":
        profile = radial
    else:
        profile = np.ones_like(radial)
    half: np.ndarray = v.half_height * (1.0 - 0.04 * radial) * (1.0 - v.loss * profile)
    return half


@dataclass
class Layers:
    """What a render accumulates: HU, the owner vertebra label, the tissue part and the trabecular centrum."""

    hu: np.ndarray
    vertebra: np.ndarray
    part: np.ndarray
    centrum: np.ndarray
    centrum_of: int | None = None  # only this vertebra's centrum is recorded (metastatic patches)
    lesions: list[Lesion] = field(default_factory=list)


@dataclass(frozen=True)
class Frame:
    """A local frame: origin `centre` and rows `axes` (local x, y, z in world coordinates), like a vertebra's."""

    centre: np.ndarray
    axes: np.ndarray


WORLD = Frame(centre=np.zeros(3), axes=np.eye(3))


def _local(
    v: Vertebra | Frame, grid: Grid, extent: np.ndarray, offset: npt.ArrayLike = (0.0, 0.0, 0.0)
) -> tuple[tuple[slice, slice, slice] | None, LocalCoordinates]:
    """Region and local coordinates of the box `offset ± extent` (local) around the frame of `v`."""
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * extent + offset
    world = v.centre + corners @ v.axes
    region = grid.box(world.min(axis=0), world.max(axis=0))
    if region is None:
        return None, (None, None, None)
    wx, wy, wz = grid.world(region)
    dx, dy, dz = wx - v.centre[0], wy - v.centre[1], wz - v.centre[2]
    ax = v.axes.astype(np.float32)
    local = tuple(dx * ax[i, 0] + dy * ax[i, 1] + dz * ax[i, 2] for i in range(3))
    return region, local


def paint(
    layers: Layers, region: tuple[slice, ...], cover: np.ndarray, hu: float | np.ndarray, *, part: int | None = None,
    vertebra: int | None = None,
) -> None:
    """Blend `hu` (scalar or array) into the region by `cover`, and label voxels at least half covered."""
    target = layers.hu[region]
    target += (hu - target) * cover
    if part is not None or vertebra is not None:
        inside = cover >= 0.5
        if part is not None:
            layers.part[region][inside] = part
        if vertebra is not None:
            layers.vertebra[region][inside] = vertebra


def canal_centre(v: Vertebra) -> float:
    """Local y of the canal's axis: the canal touches the body's posterior wall."""
    return v.half_depth + v.canal


def draw_disc(layers: Layers, grid: Grid, upper: Vertebra, lower: Vertebra) -> None:
    mid = replace(upper, centre=(upper.centre - upper.axes[2] * upper.rim_half_height()
                                 + lower.centre + lower.axes[2] * lower.rim_half_height()) / 2,
                  half_width=(upper.half_width + lower.half_width) / 2,
                  half_depth=(upper.half_depth + lower.half_depth) / 2)
    half = upper.disc_below / 2 + 2.0  # reaches into the concave endplates; bone painted later covers the rest
    region, (x, y, z) = _local(mid, grid, np.array([mid.half_width + 2, mid.half_depth + 2, half + 2]))
    if region is None:
        return
    radial = np.sqrt((x / mid.half_width) ** 2 + (y / mid.half_depth) ** 2)
    distance = np.maximum((radial - 1.0) * min(mid.half_width, mid.half_depth), np.abs(z) - half)
    annulus = np.clip((radial - 0.7) / 0.3, 0, 1) * 25.0  # annulus fibrosus denser than the nucleus
    paint(layers, region, coverage(distance, grid.voxel), HU["disc"] + annulus, part=PART_DISC)


def _posterior_parts(v: Vertebra) -> list[ArchPart]:
    """The neural arch as (local box centre, half extent, signed distance of local x, y, z) parts: a ring around the
    canal (pedicles and laminae), articular columns, transverse processes or sacral alae, spinous process."""
    a, b, hh, rc = v.half_width, v.half_depth, v.half_height, v.canal
    yc = canal_centre(v)

    def ring(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        r = np.sqrt(x**2 + (y - yc) ** 2)
        return np.maximum(np.maximum(rc - r, r - rc - ARCH_THICKNESS), np.abs(z - 0.15 * hh) - 0.5 * hh)

    outer = rc + ARCH_THICKNESS + 2
    parts: list[ArchPart] = [(np.array([0.0, yc, 0.15 * hh]), np.array([outer, outer, 0.5 * hh + 2]), ring)]

    def capsule(start: tuple[float, float, float], end: tuple[float, float, float], radius: float) -> ArchPart:
        p, q = np.asarray(start, float), np.asarray(end, float)

        def distance(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
            return _capsule(x, y, z, p, q, radius)

        return (p + q) / 2, np.abs(p - q) / 2 + radius + 2, distance

    for side in (-1.0, 1.0):
        column = 0.35 * v.disc_below + hh
        parts.append(capsule((side * (rc + 1), yc + 0.4 * rc, -column), (side * (rc + 1), yc + 0.4 * rc, column),
                             3.6))
        if v.is_sacrum:  # alae: broad lateral masses
            centre = np.array([side * (a + 12), 0.4 * b, 0.0])
            half = np.array([20.0, b * 0.8, hh * 1.1])
            parts.append((centre, half + 2, _ellipsoid_distance(centre, half)))
        elif v.transverse > 0:
            parts.append(capsule((side * rc, yc - 2, 0.2 * hh), (side * (a + v.transverse), yc + 4, 0.3 * hh), 3.3))
    if v.spinous > 0:
        tip_drop = -0.9 * hh if v.name.startswith("T") else -0.3 * hh
        parts.append(capsule((0, yc + rc + 2, 0), (0, yc + rc + v.spinous, tip_drop), 3.4))
    return parts


def _ellipsoid_distance(centre: np.ndarray, half: np.ndarray) -> Distance:
    """Approximate signed distance to the axis-aligned ellipsoid of `centre` and half axes `half` (local)."""

    def distance(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        radial = np.sqrt(((x - centre[0]) / half[0]) ** 2 + ((y - centre[1]) / half[1]) ** 2
                         + ((z - centre[2]) / half[2]) ** 2)
        scaled: np.ndarray = (radial - 1.0) * half.min()
        return scaled

    return distance


def _relative(inner: tuple[slice, ...], outer: tuple[slice, ...]) -> tuple[slice, ...]:
    return tuple(slice(i.start - o.start, i.stop - o.start) for i, o in zip(inner, outer))


def _union(regions: list[tuple[slice, ...]]) -> tuple[slice, ...]:
    return tuple(slice(min(r[k].start for r in regions), max(r[k].stop for r in regions)) for k in range(3))


def draw_vertebra(layers: Layers, grid: Grid, v: Vertebra, rng: np.random.Generator) -> None:
    """Cortical shell over the whole vertebra, trabecular core inside, lesions in the body's core; each part is
    evaluated in its own box only."""
    a, b, hh, vox = v.half_width, v.half_depth, v.half_height, grid.voxel
    body_region, (x, y, z) = _local(v, grid, np.array([a + 2, b + 2, hh + 2]))
    pieces = []  # (region, outer distance, inset used for the trabecular core)
    if body_region is not None:
        xn, yn = x / a, y / b
        body = np.maximum((np.sqrt(xn**2 + yn**2) - 1.0) * min(a, b), np.abs(z) - endplate_half_height(v, xn, yn))
        pieces.append((body_region, body, v.cortex))
    for centre, extent, distance in _posterior_parts(v):
        region, (px, py, pz) = _local(v, grid, extent, offset=centre)
        if region is not None:
            pieces.append((region, distance(px, py, pz), v.cortex * 1.6))
    if not pieces:
        return
    whole = _union([p[0] for p in pieces])
    shape = tuple(s.stop - s.start for s in whole)
    cover_outer, cover_inner = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    for piece_region, distance, inset in pieces:
        rel = _relative(piece_region, whole)
        np.maximum(cover_outer[rel], coverage(distance, vox), out=cover_outer[rel])
        np.maximum(cover_inner[rel], coverage(distance + inset, vox), out=cover_inner[rel])
    # the canal (CSF) first, so this vertebra's bone is painted over it
    yc = canal_centre(v)
    canal_region, (cx, cy, cz) = _local(v, grid, np.array([v.canal + 1, v.canal + 1, hh + v.disc_below]),
                                        offset=(0.0, yc, 0.0))
    if canal_region is not None:
        canal = np.maximum(np.sqrt(cx**2 + (cy - yc) ** 2) - v.canal, np.abs(cz) - hh - v.disc_below)
        paint(layers, canal_region, coverage(canal, vox) * (layers.part[canal_region] != PART_BONE), HU["csf"])
    paint(layers, whole, cover_outer, HU["cortical"] * rng.uniform(0.85, 1.1), part=PART_BONE, vertebra=v.label)
    trabecular = v.trabecular_hu + 25.0 * rng.standard_normal(shape, dtype=np.float32)
    paint(layers, whole, cover_inner, trabecular)
    if body_region is None:
        return
    centrum_cover = coverage(body + v.cortex, vox)
    for name, centre, radius, hu in layers.lesions:
        if name == v.name:
            d = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) - radius
            paint(layers, body_region, np.minimum(coverage(d, vox), centrum_cover), hu)
    if layers.centrum_of == v.label:
        layers.centrum[body_region] |= centrum_cover >= 0.5


def draw_nerve_roots(layers: Layers, grid: Grid, upper: Vertebra, *, radius: float) -> None:
    """The pair of roots leaving the foramen below `upper`: from the lateral recess, out through the foramen, then
    lateral, anterior and down, with a sleeve of foraminal fat; each segment is evaluated in its own box."""
    hh, rc, yc, gap = upper.half_height, upper.canal, canal_centre(upper), upper.disc_below
    for side in (-1.0, 1.0):
        path = np.array([[side * rc * 0.55, yc - 1.0, -hh * 0.4],
                         [side * (rc + 7.0), yc - 3.0, -hh - gap * 0.3],
                         [side * (rc + 22.0), yc - 12.0, -hh - gap - 10.0],
                         [side * (rc + 36.0), yc - 24.0, -hh - gap - 22.0]])
        segments: list[tuple[np.ndarray, np.ndarray, float, float, int | None]] = [
            (path[1], path[2], radius + 2.5, HU["fat"], None)
        ]
        segments += [(p, q, radius, HU["nerve"], PART_NERVE) for p, q in zip(path[:-1], path[1:])]
        for p, q, r, hu, part in segments:
            region, (x, y, z) = _local(upper, grid, np.abs(p - q) / 2 + r + 2, offset=(p + q) / 2)
            if region is None:
                continue
            cover = coverage(_capsule(x, y, z, p, q, r), grid.voxel)
            if part is None:  # fat fills the foramen around the root but never replaces bone
                cover = cover * (layers.part[region] != PART_BONE)
            paint(layers, region, cover, hu, part=part)


def paint_capsule(layers: Layers, grid: Grid, start: npt.ArrayLike, end: npt.ArrayLike, radius: float, hu: float, *,
                  frame: Vertebra | Frame = WORLD, core_hu: float | None = None, cortex: float = 1.3) -> None:
    """A bone-like (or metal) capsule between two points of `frame`; with `core_hu`, a cortex around a core."""
    p, q = np.asarray(start, float), np.asarray(end, float)
    region, (x, y, z) = _local(frame, grid, np.abs(p - q) / 2 + radius + 2, offset=(p + q) / 2)
    if region is None:
        return
    d = _capsule(x, y, z, p, q, radius)
    paint(layers, region, coverage(d, grid.voxel), hu)
    if core_hu is not None:
        paint(layers, region, coverage(d + cortex, grid.voxel), core_hu)


def paint_ellipsoid(layers: Layers, grid: Grid, centre: npt.ArrayLike, radii: npt.ArrayLike, hu: float, *,
                    shell: float | None = None,
                    core_hu: float = 0.0) -> None:
    """An axis-aligned ellipsoid (world frame); with `shell` (mm), a shell of `hu` around a core of `core_hu`."""
    middle, axes = np.asarray(centre, float), np.asarray(radii, float)
    region, (x, y, z) = _local(WORLD, grid, axes + 2, offset=middle)
    if region is None:
        return
    r = np.sqrt(((x - middle[0]) / axes[0]) ** 2 + ((y - middle[1]) / axes[1]) ** 2
                + ((z - middle[2]) / axes[2]) ** 2)
    d = (r - 1.0) * float(axes.min())
    paint(layers, region, coverage(d, grid.voxel), hu)
    if shell is not None:
        paint(layers, region, coverage(d + shell, grid.voxel), core_hu)


def rotate_spine(spine: list[Vertebra], matrix: np.ndarray, *, about: np.ndarray) -> list[Vertebra]:
    """The spine turned rigidly by `matrix` (3 x 3) about the point `about`."""
    return [replace(v, centre=about + matrix @ (v.centre - about), axes=v.axes @ matrix.T) for v in spine]


def draw_ribs(layers: Layers, grid: Grid, v: Vertebra) -> None:
    """A pair of ribs from the tips of a thoracic vertebra's transverse processes, curving laterally, forward and
    down around the trunk (cortex with a marrow core; not part of the vertebra's label)."""
    index = int(v.name[1:]) - 1
    scale = float(np.interp(index, [0, 3, 8, 11], [0.55, 1.0, 1.05, 0.45])) * v.half_width / 17.0
    yc = canal_centre(v)
    base = np.array([[12, 4, 0], [35, 0, -6], [70, -30, -18], [88, -70, -30], [80, -115, -42], [55, -145, -50]])
    for side in (-1.0, 1.0):
        path = np.array([side * (v.half_width + v.transverse * 0.7), yc, 0.25 * v.half_height]) + base * [
            side * scale, scale, scale]
        if index >= 10:
            path = path[:4]  # floating ribs stop early
        for p, q in zip(path[:-1], path[1:]):
            paint_capsule(layers, grid, p, q, 4.0, HU["cortical"] * 0.8, frame=v, core_hu=v.trabecular_hu)


def body_background(grid: Grid, rng: np.random.Generator, *, spine_centre: np.ndarray, thorax_z: float | None,
                    contrast_aorta: bool = False) -> np.ndarray:
    """Trunk cross-section (air, subcutaneous fat, muscle, organs, aorta; lungs above `thorax_z`), HU (nz, ny, nx),
    built from 2D slices broadcast along z."""
    nz, ny, nx = grid.shape
    sx, sy, sz = grid.spacing
    ox, oy, oz = grid.origin
    x = (np.arange(nx, dtype=np.float32) * sx + ox)[None, :] - spine_centre[0]
    y = (np.arange(ny, dtype=np.float32) * sy + oy)[:, None] - spine_centre[1]
    half_w, half_d = rng.uniform(140, 185), rng.uniform(95, 130)
    cy = -half_d + 90  # the vertebral body sits in the posterior third of the trunk
    trunk = np.sqrt((x / half_w) ** 2 + ((y - cy) / half_d) ** 2)
    fat_depth = rng.uniform(8, 30)
    slice_hu = np.where(trunk < 1.0, HU["fat"], HU["air"]).astype(np.float32)
    inner = np.sqrt((x / (half_w - fat_depth)) ** 2 + ((y - cy) / (half_d - fat_depth)) ** 2) < 1.0
    slice_hu[inner] = HU["organ"]
    paraspinal = [(0, 45, 35, 22), (-35, 35, 22, 25), (35, 35, 22, 25)]
    psoas = [(-38, -15, 16, 20), (38, -15, 16, 20)]

    def ellipse(mx: float, my: float, rx: float, ry: float) -> np.ndarray:
        inside: np.ndarray = ((x - mx) / rx) ** 2 + ((y - my) / ry) ** 2 < 1.0
        return inside

    back = np.zeros_like(inner)
    for muscle in paraspinal:
        back |= ellipse(*muscle)
    abdomen = slice_hu.copy()
    for muscle in psoas:
        abdomen[ellipse(*muscle)] = HU["muscle"]
    aorta = ellipse(22, -30, 12, 12)
    for image in (slice_hu, abdomen):
        image[back] = HU["muscle"]
        image[aorta] = 180.0 if contrast_aorta else 40.0
    volume = np.broadcast_to(abdomen, (nz, ny, nx)).copy()
    if thorax_z is not None:
        # above the lung bases: lungs on both sides of a mediastinum in front of the spine, no psoas
        chest = slice_hu
        lungs = np.zeros_like(inner)
        for side in (-1, 1):
            lungs |= ellipse(side * half_w * 0.5, cy - 10, half_w * 0.42, half_d * 0.75)
        mediastinum = ellipse(0, -60, half_w * 0.2, 45)  # heart and great vessels in front of the spine
        chest[lungs & inner & ~back & ~mediastinum & ~aorta] = -850.0
        z = np.arange(nz, dtype=np.float32) * sz + oz
        volume[z > thorax_z] = chest
    return volume


def add_noise(hu: np.ndarray, rng: np.random.Generator, sd: float) -> np.ndarray:
    hu += (rng.standard_normal(hu.shape, dtype=np.float32) * sd)
    return hu


def render(grid: Grid, spine: list[Vertebra], rng: np.random.Generator, *, background: np.ndarray,
           nerves: dict[str, float] | None = None, centrum_of: int | None = None,
           lesions: list[Lesion] | None = None, ribs: bool = True) -> Layers:
    """Paint ribs, discs, canal, vertebrae (and nerve roots: upper level name -> radius) over `background`."""
    layers = Layers(hu=background.astype(np.float32, copy=False), vertebra=np.zeros(grid.shape, np.uint8),
                    part=np.zeros(grid.shape, np.uint8), centrum=np.zeros(grid.shape, bool),
                    centrum_of=centrum_of, lesions=lesions or [])
    for v in spine:
        if ribs and v.name.startswith("T"):
            draw_ribs(layers, grid, v)
    for upper, lower in zip(spine[:-1], spine[1:]):
        if not (upper.name == "S1" and lower.name == "S2"):
            draw_disc(layers, grid, upper, lower)
    for v in spine:
        draw_vertebra(layers, grid, v, rng)
    for upper in spine[:-1]:
        if nerves and upper.name in nerves:
            draw_nerve_roots(layers, grid, upper, radius=nerves[upper.name])
    return layers


def to_hu16(hu: np.ndarray) -> np.ndarray:
    clipped: np.ndarray = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return clipped


def centroids_mm(labels: np.ndarray, grid: Grid, values: list[int]) -> dict[int, list[float]]:
    """Physical centroid (x, y, z) of each label value present in a (z, y, x) uint8 label map: per-axis histograms
    of label counts (one bincount per slice), so the cost is a few passes over the volume whatever the labels."""
    size = int(labels.max()) + 1
    means = []
    for axis in range(3):
        slabs = np.moveaxis(labels, axis, 0)
        counts = np.stack([np.bincount(slab.ravel(), minlength=size) for slab in slabs])  # (n_axis, labels)
        total = counts.sum(axis=0)
        means.append((counts * np.arange(len(slabs))[:, None]).sum(axis=0) / np.maximum(total, 1))
    present = [k for k in values if k < size and total[k] > 0]
    return {k: [float(o + means[2 - a][k] * s) for a, (o, s) in enumerate(zip(grid.origin, grid.spacing))]
            for k in present}
