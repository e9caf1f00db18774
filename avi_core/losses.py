"""The four AVI losses of section 3.2 and their weighted sum L_AVI.

Each term is a squared Frobenius norm per sample, summed over the sample's channels (a latent
[C, H, W] is C matrices), then averaged over the batch.
"""
from dataclasses import asdict, dataclass

import torch

from .checks import check_positive_float, check_same_shape, check_tensor


@dataclass(frozen=True)
class LossWeights:
    """λ1..λ4 of L_AVI; the paper's values are λ1 = 3, λ2 = λ3 = λ4 = 10."""

    l1: float = 3.0
    l2: float = 10.0
    l3: float = 10.0
    l4: float = 10.0

    def __post_init__(self):
        for name, value in asdict(self).items():
            check_positive_float(f"weight {name}", value, allow_zero=True)
        if not any(asdict(self).values()):
            # L_AVI would be 0 at every step: no gradient, and Φ would come back as initialised, looking trained.
            raise ValueError("the loss weights λ1..λ4 are all 0, so the loss is 0 at every step and Φ would stay untrained; "
                             "set at least one above 0 (the paper: 3, 10, 10, 10)")


def squared_frobenius(a: torch.Tensor, b: torch.Tensor, sample_weights: torch.Tensor = None) -> torch.Tensor:
    """‖a - b‖²_F per sample (summed over every dimension but the first), batch-averaged (or weighted: Σ w_i·L_i)."""
    per_sample = (a - b).square().flatten(1).sum(1)
    return per_sample.mean() if sample_weights is None else (per_sample * sample_weights).sum()


def loss_target(y_hat: torch.Tensor, z: torch.Tensor, sample_weights=None) -> torch.Tensor:
    """L1 = ‖ŷ - z‖²_F (section 3.2.1)."""
    return squared_frobenius(y_hat, z, sample_weights)


def loss_original(y_tilde: torch.Tensor, x: torch.Tensor, sample_weights=None) -> torch.Tensor:
    """L2 = ‖ỹ - x‖²_F (section 3.2.1)."""
    return squared_frobenius(y_tilde, x, sample_weights)


def loss_singular_target(S: torch.Tensor, Sz: torch.Tensor, sample_weights=None) -> torch.Tensor:
    """L3 = ‖S - Sz‖²_F (section 3.2.2)."""
    return squared_frobenius(S, Sz, sample_weights)


def loss_singular_original(S: torch.Tensor, delta_s: torch.Tensor, Sx: torch.Tensor, sample_weights=None) -> torch.Tensor:
    """L4 = ‖S + Δs - Sx‖²_F (section 3.2.2)."""
    return squared_frobenius(S + delta_s, Sx, sample_weights)


def weighted_terms(y_hat, y_tilde, x, z, S, delta_s, Sx, Sz, weights: LossWeights, sample_weights=None) -> dict[str, torch.Tensor]:
    """l1..l4 and total = Σ λi·Li (L_AVI), unchecked, for the training loop (sample_weights: a batch of distinct rows
    standing for repeated samples, w_i = their share of the batch)."""
    w = sample_weights
    terms = {
        "l1": loss_target(y_hat, z, w),
        "l2": loss_original(y_tilde, x, w),
        "l3": loss_singular_target(S, Sz, w),
        "l4": loss_singular_original(S, delta_s, Sx, w),
    }
    terms["total"] = sum(getattr(weights, name) * value for name, value in terms.items())
    return terms


def avi_loss(y_hat, y_tilde, x, z, S, delta_s, Sx, Sz, weights: LossWeights = LossWeights()) -> dict[str, torch.Tensor]:
    """L_AVI = λ1 L1 + λ2 L2 + λ3 L3 + λ4 L4 with its four terms: latents [B, C, H, W], spectra [B, C, N]."""
    check_tensor("x", x, 4, "[B, C, H, W]")
    for name, t in (("y_hat", y_hat), ("y_tilde", y_tilde), ("z", z)):
        check_tensor(name, t, 4, "[B, C, H, W]")
        check_same_shape(name, t, "x", x)
    check_tensor("S", S, 3, "[B, C, N]")
    for name, t in (("delta_s", delta_s), ("Sx", Sx), ("Sz", Sz)):
        check_tensor(name, t, 3, "[B, C, N]")
        check_same_shape(name, t, "S", S)
    if S.shape[:2] != x.shape[:2] or S.shape[-1] != min(x.shape[-2:]):
        raise ValueError(f"spectra must be [B, C, N] for latents [B, C, H, W] with N = min(H, W); "
                         f"got S {tuple(S.shape)} for x {tuple(x.shape)}")
    if not isinstance(weights, LossWeights):
        raise ValueError(f"weights must be a LossWeights; got {type(weights).__name__}")
    return weighted_terms(y_hat, y_tilde, x, z, S, delta_s, Sx, Sz, weights)
