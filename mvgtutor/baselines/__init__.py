"""Convolutional baselines with MVGFormer's forward contract (``{"logits": (B, num_classes, D, H, W)}``).

* ``VoxResNet``: the residual volumetric network of Chen et al. 2018, the paper's strongest CNN baseline.
* ``UNet3D``: a small DeepFinder-style 3D U-Net (Moebel et al. 2021).
"""

from mvgtutor.baselines.unet3d import UNet3D
from mvgtutor.baselines.voxresnet import VoxResNet

__all__ = ["UNet3D", "VoxResNet"]
