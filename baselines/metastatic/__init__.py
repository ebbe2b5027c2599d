"""Metastatic vertebral-body segmentation: the 3D U-Net of Klein et al. with its eight augmentation settings."""

METHODS = {
    f"unet3d-{combo.lower()}": ("baselines.metastatic.unet3d", {"augmentation": combo})
    for combo in ("N", "S", "T", "R", "ST", "SR", "TR", "STR")
}
