"""The pack's socket types and the objects that travel on them."""
from dataclasses import dataclass
from typing import Optional

import torch
from comfy_api.v0_0_2 import io

from ..avi_core import LatentSVD
from ..avi_core.conventions import carry_to_step
from .latent_meta import CaptureInfo, model_to_raw, vp_to_raw

AVISVD = io.Custom("AVI_SVD")
AVIPhi = io.Custom("AVI_PHI")


@dataclass(frozen=True)
class CapturedSVD:
    """An AVI_SVD: the decomposed matrix [B, C, H, W] (float32, CPU), its channel-wise SVD and its capture record.

    space "latent": the VP-normalised captured latent; "x0": the model's x0 prediction (model space),
    with `x_model`, the captured latent in model space, to carry an edit back to the captured step.
    """

    latent: torch.Tensor
    svd: LatentSVD
    info: CaptureInfo
    space: str = "latent"
    x_model: Optional[torch.Tensor] = None

    @property
    def shape(self) -> tuple:
        return tuple(self.latent.shape)

    def to_raw(self, y: torch.Tensor) -> torch.Tensor:
        """Raw LATENT samples at this capture's step from a matrix [R·B, C, H, W] of this space (R edits per sample, R-major)."""
        if self.space == "latent":
            return vp_to_raw(y, self.info)
        repeats = y.shape[0] // self.latent.shape[0]
        x_model, x0 = self.x_model.repeat(repeats, 1, 1, 1), self.latent.repeat(repeats, 1, 1, 1)
        return model_to_raw(carry_to_step(y, x_model, x0, self.info.sigma, self.info.model_kind), self.info)


def require_svd(value, name: str) -> CapturedSVD:
    """An AVI_SVD input, with a clear error for anything else."""
    if not isinstance(value, CapturedSVD):
        raise ValueError(f"{name} must be an AVI_SVD from SVD Decompose; got {type(value).__name__}")
    return value
