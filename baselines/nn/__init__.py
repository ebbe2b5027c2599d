"""Shared torch building blocks for the baselines (2D here; 3D in ``blocks3d``/``unet3d``).

Modules: ``unet`` (UNet, residual U-Net, conv/residual blocks), ``pyramid`` (pyramid pooling, dilated pyramid,
PSPNet), ``backbones`` (torchvision ResNet/DenseNet/VGG/EfficientNet with random weights, a compact ResNet,
classifiers/regressors), ``hrnet`` (compact HRNet), ``heatmaps`` (soft-argmax, heatmap read-out, SimpleBaseline),
``detection`` (Faster R-CNN / RetinaNet / Mask R-CNN builders), ``grl`` (gradient reversal, domain discriminator),
``converters`` (landmarks ↔ masks, boxes, heatmaps), ``training`` (device, seeding and determinism, mixed precision,
the one optimisation loop every AASCE method drives, progress bars), ``volumes`` (3D image IO, spatial augmentation,
resampling, sliding-window inference for the CT methods); ``spine_targets`` holds the curve targets of AASCE methods
5-9. AASCE cases are read and prepared by ``baselines.data`` for every method.
Each module's docstring documents its public API; those signatures are stable for the method modules.
"""
