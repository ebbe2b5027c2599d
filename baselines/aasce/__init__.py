"""The nine AASCE 2019 challenge methods (Cobb-angle estimation from AP radiographs)."""

METHODS = {
    "keypoint-fusion": ("baselines.aasce.keypoint", {}),
    "seg4reg": ("baselines.aasce.seg4reg", {}),
    "top-down": ("baselines.aasce.topdown", {}),
    "detector-corners": ("baselines.aasce.detector_corners", {}),
    "centreline-cascade": ("baselines.aasce.centreline", {}),
    "rotated-proposals": ("baselines.aasce.rotated", {}),
    "coarse-to-fine": ("baselines.aasce.coarse_to_fine", {}),
    "scg-net": ("baselines.aasce.scgnet", {}),
    "multi-task": ("baselines.aasce.multitask", {}),
}
