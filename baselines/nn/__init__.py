"""Shared torch building blocks for the baselines (2D here; 3D in ``blocks3d``/``unet3d``).

Modules: ``unet`` (UNet, residual U-Net, conv/residual blocks), ``pyramid`` (pyramid pooling, dilated pyramid,
PSPNet), ``backbones`` (torchvision ResNet/DenseNet/VGG/EfficientNet with random weights, a compact ResNet,
classifiers/regressors), ``hrnet`` (compact HRNet), ``heatmaps`` (soft-argmax, heatmap read-out, SimpleBaseline),
``detection`` (Faster R-CNN / RetinaNet / Mask R-CNN builders), ``grl`` (gradient reversal, domain discriminator),
``converters`` (landmarks ↔ masks, boxes, heatmaps), ``training`` (seeding, mixed precision, progress bars);
``aasce_cases`` and ``spine_targets`` hold the case loader and curve targets of AASCE methods 5-9.
Each module's docstring documents its public API; those signatures are stable for the method modules.
"""
