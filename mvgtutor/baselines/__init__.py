"""Baselines with MVGFormer's forward contract (``{"logits": (B, num_classes, D, H, W)}``), and their comparison.

* ``VoxResNet``: the residual volumetric network of Chen et al. 2018, the paper's strongest CNN baseline.
* ``UNet3D``: a small DeepFinder-style 3D U-Net (Moebel et al. 2021).
* ``monai_nets``: DynUNet (nnU-Net), MedNeXt-M, UNETR and Swin UNETR from MONAI, set up for 32^3 patches.
* ``compare``: parameters, forward FLOPs per sample, training samples/s and held-out scores of trained runs.
* ``results``: the committed results files (one per profile, with provenance) that chapter 10 reads.

Build any of them by name with ``mvgtutor.train.models.build_model``.
"""

from mvgtutor.baselines.unet3d import UNet3D
from mvgtutor.baselines.voxresnet import VoxResNet

__all__ = ["UNet3D", "VoxResNet"]
