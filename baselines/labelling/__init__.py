"""Vertebra labelling in radiographs: heatmap U-Net with and without the residual corrector (Bayat et al.)."""

METHODS = {
    "unet-heatmaps": ("baselines.labelling.residual_corrector", {"corrector": False}),
    "unet-residual-corrector": ("baselines.labelling.residual_corrector", {"corrector": True}),
}
