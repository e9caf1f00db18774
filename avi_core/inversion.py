"""DDIM inversion: a deterministic sampler's trajectory walked backwards, from a clean latent to its starting noise.

ComfyUI's ddim and euler samplers take the Euler step of the probability-flow ODE in σ,
x_{i+1} = x_i + (σ_{i+1} − σ_i)·d(x_i, σ_i), d = (x − D(x, σ))/σ, for eps, v and flow models alike
(D: the model's x0 prediction). Inversion solves that step for x_i given x_{i+1}, from the last
step to the first. Plain DDIM inversion (Song et al. 2021, eq. 13 run backwards) takes d at x_{i+1};
`refine` fixed-point iterations solve the step exactly, so that sampling the inverted latent
gives the clean latent back even with guidance.
"""
import math
from typing import Callable, Optional

import torch

from .checks import check_latent, check_positive_int, describe

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]  # D(x, σ): the model's x0 prediction at noise level σ
REFINE_MAX = 20


def check_sigmas(sigmas) -> torch.Tensor:
    """A sampler schedule: at least two finite σ >= 0, strictly descending (as KSampler's, ending at 0)."""
    s = torch.as_tensor(sigmas, dtype=torch.float64).flatten() if not isinstance(sigmas, torch.Tensor) else sigmas.double().flatten()
    if s.numel() < 2 or not bool(torch.isfinite(s).all()) or bool((s < 0).any()) or not bool((s[1:] < s[:-1]).all()):
        raise ValueError(f"sigmas must be a strictly descending schedule of at least two finite values >= 0 "
                         f"(a sampler's, ending at 0); got {describe(sigmas)}")
    return s


def check_refine(refine) -> int:
    """Fixed-point iterations per step, 0 .. REFINE_MAX."""
    value = check_positive_int("refine", refine, minimum=0)
    if value > REFINE_MAX:
        raise ValueError(f"refine must be at most {REFINE_MAX} iterations per step; got {value}")
    return value


def inversion_step(denoise: Denoiser, x_next: torch.Tensor, sigma: float, sigma_next: float, refine: int = 0) -> torch.Tensor:
    """x with x_next = x + (σ_next − σ)·(x − D(x, σ))/σ: the Euler step solved for its start (refine = 0: d taken at x_next)."""
    x = x_next
    for _ in range(refine + 1):
        x = x_next + (sigma - sigma_next) * (x - denoise(x, sigma)) / sigma
    return x


def ddim_invert(denoise: Denoiser, x0: torch.Tensor, sigmas, refine: int = 0,
                callback: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
    """The latent at sigmas[0] whose Euler/DDIM trajectory over `sigmas` ends at x0 (model space, [B, C, H, W])."""
    check_latent("x0", x0)
    s = check_sigmas(sigmas)
    refine = check_refine(refine)
    x = x0
    steps = s.numel() - 1
    for n, i in enumerate(range(steps - 1, -1, -1)):
        x = inversion_step(denoise, x, float(s[i]), float(s[i + 1]), refine)
        if callback is not None:
            callback(n, x)
    return x


def euler_sample(denoise: Denoiser, x: torch.Tensor, sigmas) -> torch.Tensor:
    """The Euler/DDIM trajectory of x over `sigmas` (k-diffusion sample_euler without churn): what inversion undoes."""
    s = check_sigmas(sigmas)
    for i in range(s.numel() - 1):
        sigma, sigma_next = float(s[i]), float(s[i + 1])
        x = x + (sigma_next - sigma) * (x - denoise(x, sigma)) / sigma
    return x


def evaluations(steps: int, refine: int) -> int:
    """Model evaluations of an inversion: refine + 1 per step."""
    return steps * (refine + 1)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ over the whole tensor."""
    return float((a - b).double().norm() / max(float(b.double().norm()), math.ulp(1.0)))
