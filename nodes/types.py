"""The pack's socket types and the objects that travel on them."""
from dataclasses import dataclass

import torch
from comfy_api.latest import io

from ..avi_core import LatentSVD
from .latent_meta import CaptureInfo

AVISVD = io.Custom("AVI_SVD")
AVIPhi = io.Custom("AVI_PHI")


@dataclass(frozen=True)
class CapturedSVD:
    """An AVI_SVD: the VP-normalised latent [B, C, H, W] (float32, CPU), its channel-wise SVD and its capture record."""

    latent: torch.Tensor
    svd: LatentSVD
    info: CaptureInfo

    @property
    def shape(self) -> tuple:
        return tuple(self.latent.shape)


def require_svd(value, name: str) -> CapturedSVD:
    """An AVI_SVD input, with a clear error for anything else."""
    if not isinstance(value, CapturedSVD):
        raise ValueError(f"{name} must be an AVI_SVD from SVD Decompose; got {type(value).__name__}")
    return value
