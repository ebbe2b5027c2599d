"""Lumbosacral bone/disc/nerve segmentation: supervised 3D U-Net, semi-cGAN and fewshot-GAN (Liu et al.)."""

METHODS = {
    "unet3d": ("baselines.lumbosacral.semi_supervised", {"method": "unet"}),
    "semi-cgan": ("baselines.lumbosacral.semi_supervised", {"method": "semi-cgan"}),
    "fewshot-gan": ("baselines.lumbosacral.semi_supervised", {"method": "fewshot-gan"}),
}
