"""Φ, the singular value predictor of section 3.2.2: one latent channel in, (S, Δs) out, shared across channels."""
import torch
from torch import nn

from .checks import check_latent, check_positive_int

# Width of the three hidden layers. "paper" is section 5's 4096; "compact" trains ~9x faster on a CPU
# and reaches a final loss within a few percent of it (bench/bench_core.py measures both).
PHI_PRESETS = {"paper": 4096, "compact": 512}


class SingularValuePredictor(nn.Module):
    """Three Linear+ReLU layers of width `hidden`, then two Linear heads to N: S and Δs (section 5)."""

    def __init__(self, in_features: int, n_singular: int, hidden: int = PHI_PRESETS["paper"]):
        super().__init__()
        check_positive_int("in_features (H*W)", in_features)
        check_positive_int("n_singular (N)", n_singular)
        check_positive_int("hidden", hidden)
        self.in_features, self.n_singular, self.hidden = in_features, n_singular, hidden
        self.trunk = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
        )
        self.head_s = nn.Linear(hidden, n_singular)
        self.head_delta = nn.Linear(hidden, n_singular)

    def forward(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, Δs), each [..., N], from flattened channels [..., H*W] (Algorithm 1 line 3)."""
        h = self.trunk(flat)
        return self.head_s(h), self.head_delta(h)


def build_phi(height: int, width: int, hidden: int = PHI_PRESETS["paper"], seed: int = 0) -> SingularValuePredictor:
    """Φ for H×W latents with a seeded initialisation (same seed, same weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SingularValuePredictor(height * width, min(height, width), hidden)


def check_phi_fits(phi: SingularValuePredictor, latent: torch.Tensor) -> None:
    """Φ was built for this latent's H×W."""
    h, w = latent.shape[-2:]
    if phi.in_features != h * w or phi.n_singular != min(h, w):
        raise ValueError(
            f"Φ expects latents with H*W = {phi.in_features} and N = {phi.n_singular}; "
            f"got a latent of shape {tuple(latent.shape)} (H*W = {h * w}, N = {min(h, w)})"
        )


def predict(phi: SingularValuePredictor, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, Δs) [B, C, N] for every channel of a latent [B, C, H, W], in float32 on Φ's device."""
    check_latent("latent", latent)
    check_phi_fits(phi, latent)
    param = next(phi.parameters())
    return phi(latent.flatten(-2).to(device=param.device, dtype=param.dtype))
