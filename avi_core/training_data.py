"""Training data for Φ by forward-process resampling of captured pairs (DESIGN 2.6).

From each captured pair (x at σx, z at σz, same seed) and the model's x0 predictions at those
steps, draw x_i = x0_x + σx·ε_i and z_i = x0_z + σz·ε_i with a shared ε_i (both trajectories share
their seed), VP-normalise them, and add the captured pair itself.
"""
import math
from dataclasses import dataclass

import torch

from .checks import check_choice, check_latent, check_positive_int, check_same_shape
from .conventions import MODEL_KINDS, check_sigma, vp_forward_noise

PAPER_SAMPLES_ONE_PAIR = 5000
PAPER_SAMPLES_MANY_PAIRS = 500


def samples_per_pair(pairs: int) -> int:
    """Section 5: N = 5000 for one pair and 500 per pair above 5 pairs; 5000/P (rounded up) for 2-5 pairs."""
    check_positive_int("pairs", pairs)
    if pairs > 5:
        return PAPER_SAMPLES_MANY_PAIRS
    return math.ceil(PAPER_SAMPLES_ONE_PAIR / pairs)


@dataclass(frozen=True)
class CapturedPairs:
    """P captured pairs: VP latents x, z [P, C, H, W], model-space x0 predictions, their σ and the model kind."""

    x: torch.Tensor
    z: torch.Tensor
    x0_x: torch.Tensor
    x0_z: torch.Tensor
    sigma_x: float
    sigma_z: float
    kind: str = "eps"

    def __post_init__(self):
        check_latent("x", self.x)
        for name in ("z", "x0_x", "x0_z"):
            check_latent(name, getattr(self, name))
            check_same_shape(name, getattr(self, name), "x", self.x)
        check_choice("model kind", self.kind, MODEL_KINDS)
        object.__setattr__(self, "sigma_x", check_sigma(self.sigma_x))
        object.__setattr__(self, "sigma_z", check_sigma(self.sigma_z))

    @property
    def pairs(self) -> int:
        """Number of captured pairs P."""
        return self.x.shape[0]


def resample_pairs(pairs: CapturedPairs, n_per_pair: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, z) VP training latents [P·(n+1), C, H, W] in float32: n resampled pairs per capture plus the capture."""
    check_positive_int("samples per pair", n_per_pair, minimum=0)
    p, c, h, w = pairs.x.shape
    eps = torch.randn((n_per_pair, p, c, h, w), generator=generator, dtype=torch.float32)
    eps = eps.to(pairs.x.device)

    def draw(x0, sigma):
        return vp_forward_noise(x0.float().unsqueeze(0), sigma, eps, pairs.kind).flatten(0, 1)

    if n_per_pair == 0:
        return pairs.x.float(), pairs.z.float()
    x = torch.cat([pairs.x.float(), draw(pairs.x0_x, pairs.sigma_x)])
    z = torch.cat([pairs.z.float(), draw(pairs.x0_z, pairs.sigma_z)])
    return x, z
