"""torchvision detectors (Faster R-CNN, RetinaNet, Mask R-CNN) with random initialisation and grey-level input.

``faster_rcnn(...)``, ``retinanet(...)`` and ``mask_rcnn(...)`` take keyword arguments only:
``num_classes`` (including background for the R-CNNs; vertebra detection uses 2), ``in_channels`` (1),
``backbone`` (``resnet18|34|50|101|152`` from torchvision with ``weights=None``, or ``compact`` — a four-stage
residual network of ``base_channels`` width for CPU presets), ``fpn_channels`` (256 in the papers),
``min_size``/``max_size`` (the resize torchvision's transform applies), ``anchor_sizes`` (pixels; one per FPN
level, or any other count to put every size on every level), ``aspect_ratios`` (height / width) and, for the
R-CNNs, ``box_representation`` (units of the two-layer box head; torchvision's 1024). Further keyword
arguments go to the torchvision class (e.g. ``box_detections_per_img``, ``rpn_batch_size_per_image``).
``faster_rcnn(pyramid=False)`` is the single-level ("C4") form: the RPN and the RoI pooling both work on the
backbone's ``layer3`` output (stride 16; 1024 channels for ResNet-50/101) instead of a feature pyramid, with every
anchor size on that one level; the box head stays torchvision's two fully connected layers on 7×7 RoI features
(Detectron's C4 head runs ``layer4`` on each RoI instead; not reproduced). Masks need the pyramid.
Batch normalisation is trainable (nothing is pretrained, so torchvision's frozen statistics would be meaningless).
Inputs are lists of ``(in_channels, H, W)`` tensors in [0, 1], normalised inside by mean 0.5 and std 0.25.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

from baselines.nn.backbones import RESNETS, CompactResNet, replace_first_conv


def _body(backbone: str, in_channels: int, base_channels: int) -> tuple[nn.Module, list[int]]:
    """The classification network whose ``layer1``..``layer4`` the detectors read, and those layers' widths."""
    if backbone == "compact":
        body = CompactResNet(in_channels=in_channels, base_channels=base_channels)
        return body, list(body.widths)
    if backbone in RESNETS:
        body = replace_first_conv(getattr(torchvision.models, backbone)(weights=None), in_channels)
        expansion = 4 if backbone not in ("resnet18", "resnet34") else 1
        return body, [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]
    raise ValueError(f"detector backbone must be 'compact' or one of {', '.join(RESNETS)}, got {backbone!r}")


class SingleLevelBackbone(nn.Module):
    """``layer3`` features of a backbone as the one feature map ``"0"`` (torchvision detectors read
    ``out_channels``)."""

    def __init__(self, *, backbone: str, in_channels: int, base_channels: int):
        super().__init__()
        body, widths = _body(backbone, in_channels, base_channels)
        self.body = IntermediateLayerGetter(body, return_layers={"layer3": "0"})
        self.out_channels = widths[2]

    def forward(self, x):
        return self.body(x)


def fpn_backbone(
    *,
    backbone: str = "resnet50",
    in_channels: int = 1,
    fpn_channels: int = 256,
    base_channels: int = 16,
    returned_layers: tuple[int, ...] = (1, 2, 3, 4),
    extra_blocks=None,
) -> BackboneWithFPN:
    body, widths = _body(backbone, in_channels, base_channels)
    return BackboneWithFPN(
        body,
        return_layers={f"layer{level}": str(index) for index, level in enumerate(returned_layers)},
        in_channels_list=[widths[level - 1] for level in returned_layers],
        out_channels=fpn_channels,
        extra_blocks=extra_blocks if extra_blocks is not None else LastLevelMaxPool(),
    )


def _anchors(anchor_sizes: tuple[int, ...], aspect_ratios: tuple[float, ...], levels: int) -> AnchorGenerator:
    sizes = tuple((size,) for size in anchor_sizes) if len(anchor_sizes) == levels else (tuple(anchor_sizes),) * levels
    return AnchorGenerator(sizes=sizes, aspect_ratios=(tuple(aspect_ratios),) * levels)


def _common(in_channels: int, min_size: int, max_size: int) -> dict:
    return {
        "min_size": min_size,
        "max_size": max_size,
        "image_mean": [0.5] * in_channels,
        "image_std": [0.25] * in_channels,
    }


def faster_rcnn(
    *,
    num_classes: int = 2,
    in_channels: int = 1,
    backbone: str = "resnet50",
    fpn_channels: int = 256,
    base_channels: int = 16,
    min_size: int = 800,
    max_size: int = 1333,
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512),
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0),
    box_representation: int = 1024,
    mask: bool = False,
    pyramid: bool = True,
    **kwargs,
) -> FasterRCNN:
    # torchvision's box head: RoI features 7×7 -> two fully connected layers of `box_representation` units
    resolution = 7
    if pyramid:
        body = fpn_backbone(
            backbone=backbone, in_channels=in_channels, fpn_channels=fpn_channels, base_channels=base_channels
        )
        levels = 5
    else:
        if mask:
            raise ValueError("the mask branch needs the feature pyramid (pyramid=True)")
        body = SingleLevelBackbone(backbone=backbone, in_channels=in_channels, base_channels=base_channels)
        kwargs.setdefault(
            "box_roi_pool", MultiScaleRoIAlign(featmap_names=["0"], output_size=resolution, sampling_ratio=2)
        )
        levels = 1
    if mask:
        # torchvision's default mask head ends with 256 channels; its predictor needs the class count explicitly
        kwargs.setdefault("mask_predictor", MaskRCNNPredictor(256, 256, num_classes))
    return (MaskRCNN if mask else FasterRCNN)(
        body,
        num_classes=None,
        box_head=TwoMLPHead(body.out_channels * resolution**2, box_representation),
        box_predictor=FastRCNNPredictor(box_representation, num_classes),
        rpn_anchor_generator=_anchors(anchor_sizes, aspect_ratios, levels=levels),
        **_common(in_channels, min_size, max_size),
        **kwargs,
    )


def mask_rcnn(**kwargs) -> MaskRCNN:
    """Faster R-CNN with the mask branch (same arguments)."""
    return faster_rcnn(mask=True, **kwargs)


def retinanet(
    *,
    num_classes: int = 1,
    in_channels: int = 1,
    backbone: str = "resnet50",
    fpn_channels: int = 256,
    base_channels: int = 16,
    min_size: int = 800,
    max_size: int = 1333,
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512),
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0),
    **kwargs,
) -> RetinaNet:
    """RetinaNet on FPN levels P3–P7 (P6, P7 from P5 as in torchvision); ``num_classes`` excludes background."""
    body = fpn_backbone(
        backbone=backbone,
        in_channels=in_channels,
        fpn_channels=fpn_channels,
        base_channels=base_channels,
        returned_layers=(2, 3, 4),
        extra_blocks=LastLevelP6P7(fpn_channels, fpn_channels),
    )
    return RetinaNet(
        body,
        num_classes=num_classes,
        anchor_generator=_anchors(anchor_sizes, aspect_ratios, levels=5),
        **_common(in_channels, min_size, max_size),
        **kwargs,
    )


def detection_targets(boxes: torch.Tensor, *, labels_start: int = 1, masks: torch.Tensor | None = None) -> dict:
    """A torchvision detection target for boxes of one class (label ``labels_start``; RetinaNet uses 0)."""
    target = {"boxes": boxes.float(), "labels": torch.full((len(boxes),), labels_start, dtype=torch.int64)}
    if masks is not None:
        target["masks"] = masks.to(torch.uint8)
    return target
