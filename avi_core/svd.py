"""Channel-wise SVD of latents: x_c = U_c diag(S_c) V_c for every sample and channel."""
import math
from dataclasses import dataclass
from typing import Optional

import torch

from .checks import check_latent, check_matrices, check_tensor

# |factor| of one scaled singular value: beyond ±100 the latent leaves any range a sampler recovers from, and far beyond
# (1e308) float32 overflows to Inf. Scale Singular Value's widget and Singular Value Sweep's list keep to it too.
FACTOR_LIMIT = 100.0


@dataclass(frozen=True)
class LatentSVD:
    """SVD of a latent [B, C, H, W]: U [B, C, H, N], S [B, C, N] descending, V [B, C, N, W] (rows are right vectors)."""

    U: torch.Tensor
    S: torch.Tensor
    V: torch.Tensor

    @property
    def n(self) -> int:
        """Number of singular values per channel, N = min(H, W)."""
        return self.S.shape[-1]

    def to(self, *args, **kwargs) -> "LatentSVD":
        """Move or cast all three factors."""
        return LatentSVD(self.U.to(*args, **kwargs), self.S.to(*args, **kwargs), self.V.to(*args, **kwargs))


def canonical_signs(U: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fix the sign of each pair (u_i, v_i): the largest-magnitude entry of u_i is made positive (docs/method.md, Sign)."""
    check_matrices("U", U, "[..., H, N]")
    check_matrices("V", V, "[..., N, W]")
    if U.shape[:-2] != V.shape[:-2] or U.shape[-1] != V.shape[-2]:
        raise ValueError(f"U [..., H, N] and V [..., N, W] do not fit together; got U {tuple(U.shape)}, V {tuple(V.shape)}")
    return signs_fixed(U, V)


def signs_fixed(U: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """canonical_signs without checks."""
    idx = U.abs().argmax(dim=-2, keepdim=True)
    sign = torch.sign(torch.gather(U, -2, idx))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return U * sign, V * sign.transpose(-1, -2)


def decompose_float32(latent: torch.Tensor) -> LatentSVD:
    """Thin SVD in float32 with canonical signs, on the latent's device."""
    U, S, V = torch.linalg.svd(latent.float(), full_matrices=False)
    U, V = signs_fixed(U, V)
    return LatentSVD(U, S, V)


def decompose(latent: torch.Tensor) -> LatentSVD:
    """Channel-wise SVD of a latent [B, C, H, W], computed in float32, returned in the latent's dtype."""
    check_latent("latent", latent)
    return decompose_float32(latent).to(dtype=latent.dtype)


def recompose(U: torch.Tensor, S: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """U diag(S) V for stacked factors U [..., H, N], S [..., N], V [..., N, W]."""
    check_factors(U, S, V)
    return compose(U, S, V)


def compose(U: torch.Tensor, S: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """U diag(S) V without checks, for inner loops (Algorithm 1 lines 10 and 13)."""
    return (U * S.unsqueeze(-2)) @ V


def check_factors(U, S, V) -> None:
    """U [..., H, N], S [..., N], V [..., N, W] that fit together."""
    check_matrices("U", U, "[..., H, N]")
    check_tensor("S", S, U.ndim - 1, "[..., N] (one dimension less than U)")
    check_tensor("V", V, U.ndim, "[..., N, W] (as many dimensions as U)")
    n = S.shape[-1]
    if U.shape[-1] != n or V.shape[-2] != n or U.shape[:-2] != S.shape[:-1] or V.shape[:-2] != S.shape[:-1]:
        raise ValueError(
            f"U [..., H, N], S [..., N] and V [..., N, W] do not fit together; got U {tuple(U.shape)}, "
            f"S {tuple(S.shape)}, V {tuple(V.shape)}"
        )


def singular_values(latent: torch.Tensor) -> torch.Tensor:
    """Per-channel spectra S [B, C, N] of a latent, descending, in the latent's dtype."""
    check_latent("latent", latent)
    return torch.linalg.svdvals(latent.float()).to(latent.dtype)



def scale_singular_value(svd: LatentSVD, index: int, factor: float, channel: Optional[int] = None) -> torch.Tensor:
    """U diag(S') V with S'_index = factor·S_index, in one channel or all: the probe of the paper's Figures 2-4."""
    if not isinstance(svd, LatentSVD):
        raise ValueError(f"svd must be a LatentSVD (from decompose); got {type(svd).__name__}")
    n, channels = svd.n, svd.S.shape[-2]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
        raise ValueError(f"index must be an integer with 0 <= index < N = {n}; got {index!r}")
    if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < channels):
        raise ValueError(f"channel must be an integer with 0 <= channel < C = {channels}, or None for all; got {channel!r}")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or abs(factor) > FACTOR_LIMIT:
        raise ValueError(f"factor must be a finite number from {-FACTOR_LIMIT:g} to {FACTOR_LIMIT:g}; got {factor!r}")
    S = svd.S.clone()
    if channel is None:
        S[..., index] *= factor
    else:
        S[..., channel, index] *= factor
    return compose(svd.U, S, svd.V)
