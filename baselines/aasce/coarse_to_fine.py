"""Coarse-to-fine heatmap regression of vertebra landmarks (Zhong, Li, Zhang, Jiao & Gao, Xidian, CSI 2019, AASCE).

Paper -> this module:
- Sect. 2 "Global stage masks regression": three U-Nets (``baselines.nn.unet.UNet``) trained separately on the
  whole image, each regressing softmax heatmaps whose last channel is the background (one minus the targets):
  U-Net A the whole spine mask (WSM, the spine outline blurred widely), U-Net B the target spine mask (TSM, blurred
  narrowly), U-Net C 17 box masks (the central part of each vertebra's quadrilateral, one channel per vertebra,
  top to bottom) plus a shared background. B and C see the image multiplied by the WSM.
- "Peeling crop" (`peeling_crop`): A gives the WSM, B and C run on the masked image, the TSM times each box-mask
  channel gives 17 vertebra positions; positions with a weak response, off the robust midline or out of top-to-bottom
  order are outliers; the first and last remaining vertebrae (extended by half a vertebra spacing to the superior
  and inferior endplates) fix a region with the training images' height/width ratio, enlarged by ``peel_margin``.
  The image is cropped to it and the procedure repeats until the region shrinks by less than ``peel_tolerance`` or
  ``peel_iterations`` is reached. Run once per test image before the main framework (``crop`` switches it off).
- "Global stage detection": torchvision Mask R-CNN (``baselines.nn.detection.mask_rcnn``, random init, small config
  on CPU) on the image times the WSM predicted by U-Net A, with 18 classes (background + the vertebra order index as
  the tag label), vertebra bounding boxes and their box masks as targets.
- "Local stage heatmap regression": each detected box (the best per tag label) is extended by ``local_context`` and
  cropped to a ``patch`` x ``patch`` patch (`baselines.nn.rotated_roi`, angle 0). U-Net D regresses the 2-channel
  box heatmap (the centred vertebra's mask, background), U-Net E the 5-channel point heatmaps (a Gaussian per
  corner TL, TR, BL, BR, background). At inference the four point channels are multiplied by D's first channel and
  each corner is the mean position of the pixels above 0.5 (the arg-max when none is).
- "Polynomial curve refine" (`refine`): a degree-``poly_degree`` (9 in the paper) least-squares polynomial x(y)
  through the Mask R-CNN box centres and the U-Net C positions, refitted while dropping points far from it, extended
  by straight lines beyond the end vertebrae; every endplate whose direction deviates from the curve's normal at
  its intersection with the curve by more than ``refine_tolerance`` degrees is rotated about that intersection onto
  the normal. Angles then follow the official rules (``evaluators.cobb.cobb_angles``).
Differences: no pretrained weights; the heatmaps are regressed with a soft-target cross-entropy on the softmax
outputs (the paper says only "regress"; a squared error left the 17 box-mask channels of U-Net C inseparable on CPU
budgets); U-Net C is ``box_depth`` levels deep (one more than A and B in the presets) so its receptive field spans
enough of the spine to tell the vertebrae apart; when fewer than 3 vertebra positions survive the outlier tests,
the peeling crop takes the region from the rows and columns where the TSM exceeds 0.5; training patches for U-Nets D
and E come from jittered ground-truth boxes; the training images
are used whole (the AASCE training images were already cropped to the spine); sizes are scaled down in the
tiny/standard presets (at their low resolution a lower polynomial degree and a tighter tolerance than the paper's
degree 9 keep pixel-level noise out of the endplate tilts); a vertebra whose predicted left and right corners coincide
(no direction for the Cobb
rules) takes its detected box's corners. With ``crop=False`` the peeling crop is skipped (an ablation the paper
motivates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import ndimage
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

from baselines.aasce.common import shift_batch
from baselines.data import Case, load_cases
from baselines.nn.converters import landmarks_to_boxes, vertebra_corners
from baselines.nn.detection import mask_rcnn
from baselines.nn.heatmaps import gaussian_maps
from baselines.nn.rotated_roi import from_patch, rotated_crops, to_patch
from baselines.nn.spine_targets import repair_vertebrae, spine_mask, unusable_vertebrae, vertebra_masks
from baselines.nn.training import autocast, fit, resolve_device, seed_everything, torch_generator
from baselines.nn.training import progress as progress_bar
from baselines.nn.unet import UNet
from baselines.report import note_fallback
from evaluators.cobb import cobb_angles

TASK = "aasce-cobb"
PAPER = "Zhong, Li, Zhang, Jiao & Gao: coarse-to-fine deep heatmap regression for AIS assessment (CSI 2019, AASCE)"
N_VERTEBRAE = 17


@dataclass(frozen=True)
class Config:
    height: int = 768
    width_px: int = 256
    base_channels: int = 16
    depth: int = 4
    box_depth: int = 5
    wsm_sigma: float = 0.04  # blur of the whole-spine mask, fraction of the image width
    tsm_sigma: float = 0.01
    box_shrink: float = 0.6  # box masks: vertebra quadrilateral scaled about its centre
    global_epochs: int = 60
    detector_backbone: str = "resnet50"
    detector_channels: int = 16
    fpn_channels: int = 256
    anchor_sizes: tuple[int, ...] = (16, 32, 64, 128, 256)
    detector_epochs: int = 40
    detection_score: float = 0.05
    proposals: int = 512
    patch: int = 64
    local_context: float = 1.8
    local_base_channels: int = 16
    local_depth: int = 3
    corner_sigma: float = 2.0  # pixels of the patch
    local_epochs: int = 60
    jitter: tuple[float, float] = (0.1, 0.1)  # centre (of size), log-size
    batch_size: int = 4
    lr: float = 1e-3
    shift: float = 0.05
    crop: bool = True
    peel_iterations: int = 4
    peel_tolerance: float = 0.02  # stop when the region shrinks by less than this fraction of its height
    peel_margin: float = 0.08
    poly_degree: int = 9
    refine_tolerance: float = 8.0  # degrees
    seed: int = 0


PRESETS = {
    "tiny": Config(
        height=48,
        width_px=24,
        base_channels=4,
        depth=2,
        box_depth=3,
        global_epochs=2,
        detector_backbone="compact",
        detector_channels=4,
        fpn_channels=8,
        anchor_sizes=(4, 8, 16, 32, 64),
        detector_epochs=1,
        proposals=32,
        patch=8,
        local_base_channels=4,
        local_depth=2,
        corner_sigma=1.0,
        local_epochs=2,
        batch_size=4,
        lr=3e-3,
        peel_iterations=2,
        poly_degree=5,
    ),
    "standard": Config(
        height=128,
        width_px=48,
        base_channels=6,
        depth=3,
        box_depth=4,
        global_epochs=12,
        detector_backbone="compact",
        detector_channels=8,
        fpn_channels=32,
        anchor_sizes=(6, 12, 24, 48, 96),
        detector_epochs=8,
        proposals=96,
        patch=16,
        local_base_channels=6,
        local_depth=2,
        corner_sigma=1.5,
        local_epochs=10,
        batch_size=4,
        lr=2e-3,
        poly_degree=5,
        refine_tolerance=3.0,
    ),
    "paper": Config(),
}


# --------------------------------------------------------------------------------------------- targets


def _blurred(mask: np.ndarray, sigma: float) -> np.ndarray:
    blurred = ndimage.gaussian_filter(mask, sigma)
    return blurred / max(float(blurred.max()), 1e-6)


def global_targets(case: Case, config: Config) -> dict[str, np.ndarray]:
    """WSM and TSM (target + background channels) and the 18-channel box masks of one case."""
    size = (config.height, config.width_px)
    spine = spine_mask(case.landmarks, size)
    wsm = _blurred(spine, config.wsm_sigma * config.width_px)
    tsm = _blurred(spine, config.tsm_sigma * config.width_px)
    boxes = vertebra_masks(case.landmarks, size, shrink=config.box_shrink)
    boxes = np.concatenate([boxes, np.clip(1 - boxes.sum(0, keepdims=True), 0, 1)])
    return {"wsm": np.stack([wsm, 1 - wsm]), "tsm": np.stack([tsm, 1 - tsm]), "boxes": boxes}


def _unet(config: Config, out_channels: int, *, local: bool = False) -> UNet:
    if local:
        return UNet(
            in_channels=1, out_channels=out_channels, base_channels=config.local_base_channels, depth=config.local_depth
        )
    depth = config.box_depth if out_channels == N_VERTEBRAE + 1 else config.depth
    return UNet(in_channels=1, out_channels=out_channels, base_channels=config.base_channels, depth=depth)


def _heatmap_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the target heatmaps (each pixel a distribution over the channels, background last)
    and the softmax heatmaps: its minimum is the softmax equal to the targets."""
    return -(target * logits.float().log_softmax(dim=1)).sum(dim=1).mean()


# --------------------------------------------------------------------------------------------- global stage


def _run(net: UNet, images: np.ndarray, device, batch_size: int = 8) -> np.ndarray:
    net.eval()
    out = []
    with torch.no_grad(), autocast(device):
        for start in range(0, len(images), batch_size):
            batch = torch.as_tensor(images[start : start + batch_size], device=device)[:, None]
            out.append(net(batch).float().softmax(dim=1).cpu().numpy())
    return np.concatenate(out)


def box_mask_positions(tsm: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(17, 2) weighted centroids of TSM x box-mask channel k (pixels above half the channel's peak) and the peaks."""
    positions, peaks = np.zeros((N_VERTEBRAE, 2)), np.zeros(N_VERTEBRAE)
    yy, xx = np.mgrid[0 : tsm.shape[0], 0 : tsm.shape[1]]
    for k in range(N_VERTEBRAE):
        response = tsm * boxes[k]
        peaks[k] = response.max()
        weights = np.where(response >= 0.5 * peaks[k], response, 0.0)
        total = max(weights.sum(), 1e-9)
        positions[k] = [(weights * xx).sum() / total, (weights * yy).sum() / total]
    return positions, peaks


def valid_positions(positions: np.ndarray, peaks: np.ndarray, *, min_peak: float = 0.2) -> np.ndarray:
    """Outlier detection and continuity: a strong enough response, near a robust straight midline x(y), and y
    increasing with the vertebra index (positions breaking the order are dropped, weakest first)."""
    valid = peaks >= min_peak
    if valid.sum() >= 3:
        fit_x = np.polyval(np.polyfit(positions[valid, 1], positions[valid, 0], 1), positions[:, 1])
        residual = np.abs(positions[:, 0] - fit_x)
        spread = 3 * max(np.median(residual[valid]), 1.0)
        valid &= residual <= spread + 0.1 * np.ptp(positions[valid, 1])
    changed = True
    while changed:
        changed = False
        index = np.flatnonzero(valid)
        for a, b in zip(index[:-1], index[1:]):
            if positions[b, 1] <= positions[a, 1]:
                valid[a if peaks[a] < peaks[b] else b] = False
                changed = True
                break
    return valid


def global_maps(nets: dict, image: np.ndarray, device) -> dict[str, np.ndarray]:
    wsm = _run(nets["a"], image[None], device)[0, 0]
    masked = (image * wsm)[None]
    return {
        "wsm": wsm,
        "tsm": _run(nets["b"], masked, device)[0, 0],
        "boxes": _run(nets["c"], masked, device)[0, :N_VERTEBRAE],
    }


def peeling_crop(case: Case, nets: dict, config: Config, aspect: float, device) -> Case:
    """Iteratively crop a (wild) test image to the spine region found by U-Nets A, B and C (see module docstring)."""
    size = (config.height, config.width_px)
    previous = None
    for _ in range(config.peel_iterations):
        maps = global_maps(nets, case.image, device)
        positions, peaks = box_mask_positions(maps["tsm"], maps["boxes"])
        valid = valid_positions(positions, peaks)
        if valid.sum() >= 3:
            index = np.flatnonzero(valid)
            spacing = np.ptp(positions[index, 1]) / max(index[-1] - index[0], 1)
            top = positions[index[0], 1] - spacing * (index[0] + 0.5)
            bottom = positions[index[-1], 1] + spacing * (N_VERTEBRAE - index[-1] - 0.5)
            centre_x = positions[valid, 0].mean()
        else:
            rows, cols = np.nonzero(maps["tsm"] > 0.5)
            if len(rows) < 2:
                break
            top, bottom, centre_x = rows.min(), rows.max(), cols.mean()
        height = (bottom - top) * (1 + 2 * config.peel_margin)
        centre_y = (top + bottom) / 2
        box = (
            centre_x - height / aspect / 2,
            centre_y - height / 2,
            centre_x + height / aspect / 2,
            centre_y + height / 2,
        )
        span = (box[3] - box[1]) / case.box.scale[1]  # in original pixels
        case = case.cropped(box, size)
        if previous is not None and abs(previous - span) < config.peel_tolerance * previous:
            break
        previous = span
    return case


# --------------------------------------------------------------------------------------------- detection


def _detector(config: Config):
    """Mask R-CNN with 18 classes; the mask head has two convolutions of ``fpn_channels`` (four of 256 in
    torchvision's default) and ``proposals`` region proposals / sampled RoIs per image (torchvision: 2000 / 512), so
    the CPU presets stay small."""
    c = config.fpn_channels
    return mask_rcnn(
        num_classes=N_VERTEBRAE + 1,
        backbone=config.detector_backbone,
        base_channels=config.detector_channels,
        fpn_channels=c,
        min_size=config.height,
        max_size=max(config.height, config.width_px),
        anchor_sizes=config.anchor_sizes,
        aspect_ratios=(0.5, 1.0),
        box_detections_per_img=60,
        box_score_thresh=config.detection_score,
        mask_head=MaskRCNNHeads(c, (c, c), 1),
        mask_predictor=MaskRCNNPredictor(c, c, N_VERTEBRAE + 1),
        rpn_pre_nms_top_n_train=config.proposals * 2,
        rpn_post_nms_top_n_train=config.proposals,
        rpn_pre_nms_top_n_test=config.proposals * 2,
        rpn_post_nms_top_n_test=config.proposals,
        rpn_batch_size_per_image=config.proposals,
        box_batch_size_per_image=config.proposals,
    )


def _detection_target(case: Case, config: Config, device) -> dict:
    size = (config.height, config.width_px)
    boxes = landmarks_to_boxes(case.landmarks, image_shape=size)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    return {
        "boxes": torch.as_tensor(boxes, dtype=torch.float32, device=device),
        "labels": torch.arange(1, N_VERTEBRAE + 1, device=device),
        "masks": torch.as_tensor(vertebra_masks(case.landmarks, size), dtype=torch.uint8, device=device),
    }


def detect(detector, image: np.ndarray, device) -> tuple[np.ndarray, np.ndarray]:
    """(17, 4) boxes, one per tag label (the best scoring), NaN rows for labels without a detection; their scores."""
    detector.eval()
    with torch.no_grad():
        result = detector([torch.as_tensor(image, device=device)[None]])[0]
    boxes, scores = np.full((N_VERTEBRAE, 4), np.nan), np.zeros(N_VERTEBRAE)
    for box, label, score in zip(
        result["boxes"].cpu().numpy(), result["labels"].cpu().numpy(), result["scores"].cpu().numpy()
    ):
        k = int(label) - 1
        if 0 <= k < N_VERTEBRAE and score > scores[k]:
            boxes[k], scores[k] = box, score
    return boxes, scores


# --------------------------------------------------------------------------------------------- local stage


def _local_boxes(boxes: np.ndarray) -> np.ndarray:
    """Axis-aligned (x0, y0, x1, y1) -> (cx, cy, w, h, 0) with a square side (the larger of w, h)."""
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return np.column_stack(
        [(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, side, side, np.zeros(len(boxes))]
    )


def corners_from_heatmaps(box_map: torch.Tensor, point_maps: torch.Tensor) -> torch.Tensor:
    """(N, 4, 2) corners: point channels masked by the box channel; mean position of the pixels above 0.5, else
    the arg-max."""
    masked = point_maps * box_map[:, None]
    n, k, height, width = masked.shape
    ys, xs = torch.meshgrid(
        torch.arange(height, device=masked.device), torch.arange(width, device=masked.device), indexing="ij"
    )
    above = (masked > 0.5).float()
    count = above.sum(dim=(2, 3))
    mean = (
        torch.stack([(above * xs).sum(dim=(2, 3)), (above * ys).sum(dim=(2, 3))], dim=-1)
        / count.clamp(min=1)[..., None]
    )
    flat = masked.reshape(n, k, -1).argmax(dim=-1)
    peak = torch.stack([flat % width, flat // width], dim=-1).float()
    return torch.where(count[..., None] > 0, mean, peak)


# --------------------------------------------------------------------------------------------- refinement


def _curve(points: np.ndarray, degree: int):
    """x(y): least-squares polynomial inside the points' y range, straight lines (degree 1 fits of the end points)
    beyond it."""
    y, x = points[:, 1], points[:, 0]
    scale, offset = max(np.ptp(y), 1.0), y.mean()
    degree = int(min(degree, len(np.unique(np.round(y, 1))) - 1))
    coefficients = np.polyfit((y - offset) / scale, x, max(degree, 0))
    ends = max(3, len(points) // 6)
    order = np.argsort(y)

    def line(index):
        if np.ptp(y[index]) < 1e-3:
            return np.array([0.0, x[index].mean()])
        return np.polyfit(y[index], x[index], 1)

    top_line, bottom_line = line(order[:ends]), line(order[-ends:])
    lo, hi = y.min(), y.max()

    def at(q):
        q = np.asarray(q, dtype=np.float64)
        inside = np.polyval(coefficients, (np.clip(q, lo, hi) - offset) / scale)
        above = np.polyval(coefficients, (lo - offset) / scale) + np.polyval(top_line, q) - np.polyval(top_line, lo)
        below = (
            np.polyval(coefficients, (hi - offset) / scale) + np.polyval(bottom_line, q) - np.polyval(bottom_line, hi)
        )
        return np.where(q < lo, above, np.where(q > hi, below, inside))

    return at


def refine(landmarks: np.ndarray, curve_points: np.ndarray, config: Config) -> np.ndarray:
    """Polynomial curve refinement of (68, 2) landmarks (see module docstring)."""
    points = curve_points[np.all(np.isfinite(curve_points), axis=1)]
    if len(points) < 4:
        return landmarks
    keep = np.ones(len(points), bool)
    for _ in range(3):
        curve = _curve(points[keep], config.poly_degree)
        residual = np.abs(points[:, 0] - curve(points[:, 1]))
        new_keep = residual <= 3 * max(np.median(residual), 0.5)
        if new_keep.sum() < 4 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    curve = _curve(points[keep], config.poly_degree)
    corners = vertebra_corners(landmarks).copy()
    for v in range(len(corners)):
        for left, right in ((0, 1), (2, 3)):
            a, b = corners[v, left], corners[v, right]
            y0 = (a[1] + b[1]) / 2
            x0 = float(curve(y0))
            slope = float(curve(y0 + 0.5)) - float(curve(y0 - 0.5))  # dx/dy
            normal = np.degrees(np.arctan2(-slope, 1.0))  # direction of the curve's normal against the x axis
            current = np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0]))
            if abs(current - normal) > config.refine_tolerance:
                rotation = np.radians(normal - current)
                c, s = np.cos(rotation), np.sin(rotation)
                for index in (left, right):
                    d = corners[v, index] - (x0, y0)
                    corners[v, index] = (x0 + c * d[0] - s * d[1], y0 + s * d[0] + c * d[1])
    return corners.reshape(-1, 2)


# --------------------------------------------------------------------------------------------- train / predict


def train(*, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    rng = seed_everything(config.seed)
    generator = torch_generator(config.seed)
    cases = load_cases(data_dir, size=(config.height, config.width_px), ground_truth=True)
    targets = [global_targets(c, config) for c in cases]
    images = np.stack([c.image for c in cases])
    def stack(key):
        return np.stack([t[key] for t in targets])

    def shift(b, r):
        return shift_batch(b, r, fraction=config.shift)

    wsm = stack("wsm")
    losses, history = [], {}

    nets = {"a": _unet(config, 2), "b": _unet(config, 2), "c": _unet(config, N_VERTEBRAE + 1)}
    inputs = {"a": images, "b": images * wsm[:, 0], "c": images * wsm[:, 0]}
    for name, key in (("a", "wsm"), ("b", "tsm"), ("c", "boxes")):
        net = nets[name].to(device).train()
        history[f"unet_{name}"] = fit(
            net.parameters(),
            arrays={"x": inputs[name], "y": stack(key)},
            epochs=config.global_epochs,
            batch_size=config.batch_size,
            optimiser=torch.optim.Adam(net.parameters(), lr=config.lr),
            device=device,
            rng=rng,
            augment=shift,
            desc=f"coarse-to-fine U-Net {name.upper()}",
            progress=progress,
            loss_fn=lambda b, net=net: _heatmap_loss(net(b["x"][:, None]), b["y"]),
        )
    losses += history["unet_a"]

    predicted_wsm = _run(nets["a"], images, device)[:, 0]
    detector = _detector(config).to(device).train()
    det_targets = [_detection_target(c, config, device) for c in cases]
    optimiser = torch.optim.Adam(detector.parameters(), lr=config.lr)
    history["mask_rcnn"] = fit(
        detector.parameters(),
        arrays={"x": images * predicted_wsm, "i": np.arange(len(cases))},
        epochs=config.detector_epochs,
        batch_size=config.batch_size,
        optimiser=optimiser,
        device=device,
        rng=rng,
        desc="coarse-to-fine Mask R-CNN",
        progress=progress,
        loss_fn=lambda b: sum(detector(list(b["x"][:, None].float()), [det_targets[int(i)] for i in b["i"]]).values()),
    )

    nets["d"], nets["e"] = _unet(config, 2, local=True).to(device), _unet(config, 5, local=True).to(device)
    boxes = np.stack([_local_boxes(landmarks_to_boxes(c.landmarks)) for c in cases]).astype(np.float32)
    corners = np.stack([c.landmarks.reshape(N_VERTEBRAE, 4, 2) for c in cases]).astype(np.float32)
    box_masks = np.stack([vertebra_masks(c.landmarks, (config.height, config.width_px)) for c in cases])
    parameters = list(nets["d"].parameters()) + list(nets["e"].parameters())
    optimiser = torch.optim.Adam(parameters, lr=config.lr)

    def local_loss(batch):
        n = batch["images"].shape[0]
        local = batch["boxes"].reshape(-1, 5).clone()
        noise = torch.randn(len(local), 3, generator=generator).to(local.device)
        local[:, :2] += noise[:, :2] * config.jitter[0] * local[:, 2:4]
        local[:, 2:4] *= torch.exp(noise[:, 2:3] * config.jitter[1])
        owner = torch.arange(n, device=local.device).repeat_interleave(N_VERTEBRAE)
        def crop(maps, owner=owner, local=local):
            return rotated_crops(maps, owner, local, patch=config.patch, context=config.local_context)

        patches = crop(batch["images"][:, None])
        # the centred vertebra's own mask: channel v of case n for patch (n, v)
        own = crop(batch["masks"]).reshape(n, N_VERTEBRAE, N_VERTEBRAE, config.patch, config.patch)
        own = own[:, torch.arange(N_VERTEBRAE), torch.arange(N_VERTEBRAE)].reshape(-1, 1, config.patch, config.patch)
        box_target = torch.cat([own, 1 - own], dim=1)
        points = gaussian_maps(
            to_patch(batch["corners"].reshape(-1, 4, 2), local, patch=config.patch, context=config.local_context),
            (config.patch, config.patch),
            sigma=config.corner_sigma,
        )
        point_target = torch.cat([points, (1 - points.sum(dim=1, keepdim=True)).clamp(min=0)], dim=1)
        return _heatmap_loss(nets["d"](patches), box_target) + _heatmap_loss(nets["e"](patches), point_target)

    nets["d"].train(), nets["e"].train()
    history["local"] = fit(
        parameters,
        arrays={"images": images, "masks": box_masks, "boxes": boxes, "corners": corners},
        epochs=config.local_epochs,
        batch_size=config.batch_size,
        optimiser=optimiser,
        device=device,
        rng=rng,
        desc="coarse-to-fine U-Nets D+E",
        progress=progress,
        loss_fn=local_loss,
    )
    crops = [(c.landmarks[:, 1].max() - c.landmarks[:, 1].min(), np.ptp(c.landmarks[:, 0])) for c in cases]
    aspect = float(np.median([h / max(w, 1e-6) for h, w in crops])) * 0.75  # spine region a little wider than the spine
    return {
        "state": {name: net.state_dict() for name, net in nets.items()} | {"mask_rcnn": detector.state_dict()},
        "losses": losses,
        "history": history,
        "aspect": aspect,
        "config": asdict(config),
    }


def predict(*, checkpoint, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    channels = {"a": (2, False), "b": (2, False), "c": (N_VERTEBRAE + 1, False), "d": (2, True), "e": (5, True)}
    nets = {}
    for name, (out_channels, local) in channels.items():
        nets[name] = _unet(config, out_channels, local=local).to(device)
        nets[name].load_state_dict(checkpoint["state"][name])
        nets[name].eval()
    detector = _detector(config).to(device)
    detector.load_state_dict(checkpoint["state"]["mask_rcnn"])
    out = {}
    for case in progress_bar(
        load_cases(data_dir, size=(config.height, config.width_px), ground_truth=False),
        enabled=progress,
        desc="coarse-to-fine predict",
    ):
        if config.crop:
            case = peeling_crop(case, nets, config, checkpoint["aspect"], device)
        maps = global_maps(nets, case.image, device)
        positions, peaks = box_mask_positions(maps["tsm"], maps["boxes"])
        valid = valid_positions(positions, peaks)
        boxes, scores = detect(detector, case.image * maps["wsm"], device)
        sizes = boxes[:, 2:] - boxes[:, :2]
        size = (
            np.nanmedian(sizes, axis=0)
            if np.isfinite(sizes).any()
            else np.array([config.width_px / 5, config.height / 20])
        )
        # labels the detector missed take U-Net C's position (or an interpolated one) with the median box size
        centres = np.where(np.isfinite(boxes[:, :1]), (boxes[:, :2] + boxes[:, 2:]) / 2, np.nan)
        known = np.isfinite(centres[:, 0]) | valid
        fill = np.where(np.isfinite(centres), centres, np.where(valid[:, None], positions, np.nan))
        if known.sum() >= 2:
            index = np.flatnonzero(known)
            fill = np.column_stack([np.interp(np.arange(N_VERTEBRAE), index, fill[index, j]) for j in range(2)])
        else:  # neither the detector nor U-Net C placed two vertebrae: a straight column down the image's middle
            note_fallback(case.id, "straight-column")
            fill = np.column_stack(
                [np.full(N_VERTEBRAE, config.width_px / 2), np.linspace(0.1, 0.9, N_VERTEBRAE) * config.height]
            )
        missing = ~np.isfinite(boxes[:, 0])
        boxes[missing] = np.column_stack([fill[missing] - size / 2, fill[missing] + size / 2])
        local = torch.as_tensor(_local_boxes(boxes), dtype=torch.float32, device=device)
        image = torch.as_tensor(case.image, device=device)[None, None]
        with torch.no_grad(), autocast(device):
            patches = rotated_crops(
                image,
                torch.zeros(N_VERTEBRAE, dtype=torch.long, device=device),
                local,
                patch=config.patch,
                context=config.local_context,
            )
            box_map = nets["d"](patches).float().softmax(dim=1)[:, 0]
            point_maps = nets["e"](patches).float().softmax(dim=1)[:, :4]
            corners = from_patch(
                corners_from_heatmaps(box_map, point_maps), local, patch=config.patch, context=config.local_context
            )
        landmarks = corners.cpu().numpy().reshape(-1, 2)
        curve_points = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, positions[valid]])
        fallback = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]], boxes[:, [2, 3]]], axis=1)
        refined = refine(landmarks, curve_points, config)
        if 2 * unusable_vertebrae(refined).sum() > N_VERTEBRAE and known.sum() >= 2:
            note_fallback(case.id, "box-corners")  # most vertebrae take their boxes' corners, not U-Nets D and E's
        landmarks = repair_vertebrae(refined, fallback.reshape(-1, 2))
        landmarks = case.to_original(landmarks)
        height = case.original_height
        out[case.id] = {
            "angles": [float(a) for a in cobb_angles(landmarks, height)],
            "landmarks": landmarks.tolist(),
            "image_height": height,
        }
    return out
