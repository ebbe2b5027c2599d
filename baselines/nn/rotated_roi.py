"""Rotated RoI Align on images: fixed-size patches aligned with rotated boxes, and the point mapping both ways.

Boxes are (cx, cy, w, h, theta) in pixels (pixel centres at integers), theta the tilt of the box's width axis
against the x axis. A patch of ``patch`` x ``patch`` pixels covers the box enlarged by ``context`` in both
directions, rotated with it; sampling is bilinear (``F.affine_grid`` + ``F.grid_sample``, as RoI Align samples).
An axis-aligned box is the special case theta = 0.

- ``rotated_crops(images, owner, boxes, *, patch, context) -> (N, C, patch, patch)``: patch i from
  ``images[owner[i]]``.
- ``pyramid_levels(boxes, *, strides)``: the feature-pyramid level each box is pooled from (Mask R-CNN's rule).
- ``pyramid_roi_align(features, owner, boxes, *, strides, patch, context) -> (N, C, patch, patch)``: rotated RoI
  Align on the levels of a feature pyramid (boxes in image pixels; each sampled from its `pyramid_levels` level).
- ``to_patch(points, boxes, *, patch, context)`` / ``from_patch(...)``: (N, K, 2) image pixels <-> patch pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _crop_theta(boxes: torch.Tensor, height: int, width: int, context: float) -> torch.Tensor:
    """(N, 2, 3) affine_grid matrices sampling each rotated box (enlarged by `context`) into a square patch."""
    cx, cy, w, h, t = boxes.unbind(dim=1)
    cos, sin = torch.cos(t), torch.sin(t)
    theta = torch.zeros(len(boxes), 2, 3, dtype=boxes.dtype, device=boxes.device)
    theta[:, 0, 0] = cos * context * w / width
    theta[:, 0, 1] = -sin * context * h / width
    theta[:, 0, 2] = (2 * cx + 1) / width - 1
    theta[:, 1, 0] = sin * context * w / height
    theta[:, 1, 1] = cos * context * h / height
    theta[:, 1, 2] = (2 * cy + 1) / height - 1
    return theta


def rotated_crops(
    images: torch.Tensor, owner: torch.Tensor, boxes: torch.Tensor, *, patch: int, context: float
) -> torch.Tensor:
    """Rotated RoI Align: (N, C, patch, patch) bilinear samples of ``images[owner[i]]`` in the frame of box i."""
    theta = _crop_theta(boxes.float(), images.shape[-2], images.shape[-1], context)
    grid = F.affine_grid(theta, [len(boxes), images.shape[1], patch, patch], align_corners=False)
    return F.grid_sample(images[owner].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def pyramid_levels(
    boxes: torch.Tensor, *, strides: list[int], canonical_size: float = 224.0, canonical_level: int = 4
) -> torch.Tensor:
    """(N,) index into ``strides`` of the level each box is pooled from, by the Mask R-CNN rule
    k = floor(k0 + log2(sqrt(w * h) / s0)) with k0 = ``canonical_level`` and s0 = ``canonical_size``, where level k
    has stride 2**k; k is clamped to the levels present."""
    side = torch.sqrt((boxes[:, 2] * boxes[:, 3]).clamp(min=1e-6))
    k = torch.floor(canonical_level + torch.log2(side / canonical_size))
    first = torch.log2(torch.tensor(float(strides[0])))
    return (k - first).clamp(0, len(strides) - 1).long()


def pyramid_roi_align(
    features: list[torch.Tensor],
    owner: torch.Tensor,
    boxes: torch.Tensor,
    *,
    strides: list[int],
    patch: int,
    context: float,
) -> torch.Tensor:
    """Rotated RoI Align on a feature pyramid: box i (image pixels) is sampled from ``features[level][owner[i]]``,
    its level chosen by `pyramid_levels`. A feature cell j of a level with stride s covers image pixels centred at
    (j + 0.5) s - 0.5, so the box is mapped into that level's cell coordinates before `rotated_crops`."""
    boxes = boxes.float()
    levels = pyramid_levels(boxes, strides=strides)
    out = boxes.new_zeros(len(boxes), features[0].shape[1], patch, patch)
    for index, (feature, stride) in enumerate(zip(features, strides)):
        chosen = torch.nonzero(levels == index).flatten()
        if len(chosen) == 0:
            continue
        scaled = boxes[chosen].clone()
        scaled[:, :2] = (scaled[:, :2] + 0.5) / stride - 0.5
        scaled[:, 2:4] = scaled[:, 2:4] / stride
        out[chosen] = rotated_crops(feature, owner[chosen], scaled, patch=patch, context=context)
    return out


def to_patch(points: torch.Tensor, boxes: torch.Tensor, *, patch: int, context: float) -> torch.Tensor:
    """(N, K, 2) image pixels -> patch pixels of each box's rotated crop."""
    d = points - boxes[:, None, :2]
    cos, sin = torch.cos(boxes[:, None, 4]), torch.sin(boxes[:, None, 4])
    u = (cos * d[..., 0] + sin * d[..., 1]) / (context * boxes[:, None, 2])
    v = (-sin * d[..., 0] + cos * d[..., 1]) / (context * boxes[:, None, 3])
    return torch.stack([(u + 0.5) * patch - 0.5, (v + 0.5) * patch - 0.5], dim=-1)


def from_patch(points: torch.Tensor, boxes: torch.Tensor, *, patch: int, context: float) -> torch.Tensor:
    """Inverse of `to_patch`."""
    u = ((points[..., 0] + 0.5) / patch - 0.5) * context * boxes[:, None, 2]
    v = ((points[..., 1] + 0.5) / patch - 0.5) * context * boxes[:, None, 3]
    cos, sin = torch.cos(boxes[:, None, 4]), torch.sin(boxes[:, None, 4])
    return torch.stack([boxes[:, None, 0] + cos * u - sin * v, boxes[:, None, 1] + sin * u + cos * v], dim=-1)
