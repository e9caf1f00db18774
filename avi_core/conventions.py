"""Latent conventions (docs/method.md, Capture and Latent convention): VE ↔ VP normalisation and timestep fractions → sampler steps."""
import math
from dataclasses import dataclass
from typing import Callable

import torch

from .checks import check_choice, check_latent, check_tensor, check_unit_interval, describe

MODEL_KINDS = ("eps", "v", "flow")
# What Algorithm 1 decomposes: "latent" is the captured (noisy) latent, VP-normalised, as the paper
# does; "x0" is the model's clean prediction at the captured step, with the latent's own noise
# (x − x0) added back after the edit (bench/diagnose_edit.py: edits of the noisy latent are undone).
SPACES = ("x0", "latent")
# ComfyUI counts a model's timesteps 0..T−1 with T = 1000; a timestep fraction f stands for f·(T − 1).
NUM_TIMESTEPS = 1000
LAST_TIMESTEP = NUM_TIMESTEPS - 1


def families_differ(a: str, b: str) -> bool:
    """Two model classes (ComfyUI's, e.g. SD15, SD20) differ only where both are recorded: "" is a capture or Φ file
    made before the class was recorded, which only format and kind tell apart."""
    return bool(a and b and a != b)


def check_sigma(sigma) -> float:
    """A finite σ >= 0."""
    value = float(sigma) if isinstance(sigma, (int, float, torch.Tensor)) and not isinstance(sigma, bool) else None
    if isinstance(sigma, torch.Tensor) and sigma.numel() != 1:
        value = None
    if value is None or not math.isfinite(value) or value < 0:
        raise ValueError(f"sigma must be one finite number >= 0; got {describe(sigma)}")
    return value


def vp_scale(sigma, kind: str) -> float:
    """sqrt(1 + σ²) for eps/v (x = x0 + σε), sqrt((1-σ)² + σ²) for flow (x = (1-σ)x0 + σε)."""
    check_choice("model kind", kind, MODEL_KINDS)
    s = check_sigma(sigma)
    if kind == "flow":
        if s > 1:
            raise ValueError(f"sigma of a flow model must be in [0, 1]; got {s}")
        return math.sqrt((1.0 - s) ** 2 + s**2)
    return math.sqrt(1.0 + s**2)


def to_vp(x_model: torch.Tensor, sigma, kind: str) -> torch.Tensor:
    """Unit-variance (VP) latent from the sampler's model-space latent at σ."""
    check_latent("x_model", x_model)
    return x_model / vp_scale(sigma, kind)


def from_vp(x_vp: torch.Tensor, sigma, kind: str) -> torch.Tensor:
    """Model-space latent at σ from a VP latent (inverse of to_vp)."""
    check_latent("x_vp", x_vp)
    return x_vp * vp_scale(sigma, kind)


def carry_to_step(y0: torch.Tensor, x_model: torch.Tensor, x0: torch.Tensor, sigma, kind: str) -> torch.Tensor:
    """x + a(σ)·(y0 − x0): an edited x0 prediction back at the captured step, keeping that step's noise (a = 1, or 1 − σ for flow)."""
    check_choice("model kind", kind, MODEL_KINDS)
    s = check_sigma(sigma)
    return x_model + (1.0 - s if kind == "flow" else 1.0) * (y0 - x0)


def vp_forward_noise(x0: torch.Tensor, sigma: float, noise: torch.Tensor, kind: str) -> torch.Tensor:
    """VP latent of the forward process, (x0 + σε)/sqrt(1+σ²), or ((1-σ)x0 + σε)/s for flow, in one pass, unchecked."""
    scale = vp_scale(sigma, kind)
    signal = (1.0 - sigma if kind == "flow" else 1.0) / scale
    return torch.add(x0 * signal, noise, alpha=sigma / scale)


@dataclass(frozen=True)
class StepChoice:
    """The sampler step chosen for a timestep fraction, and the timestep it stands for."""

    step: int
    steps: int
    timestep: float
    target_timestep: float
    sigma: float


def step_for_timestep_fraction(
    fraction: float,
    sigmas: torch.Tensor,
    sigma_to_timestep: Callable[[torch.Tensor], torch.Tensor],
    num_timesteps: int = NUM_TIMESTEPS,
) -> StepChoice:
    """Step i < steps whose timestep t(σ_i) is nearest fraction·(T-1) (docs/method.md, Capture; T-1 = 999 as ComfyUI counts).

    `sigmas` is the sampler's schedule (steps + 1 values, the last one usually 0); the final
    sigma is never chosen since nothing would be left to denoise after it.
    """
    fraction = check_unit_interval("timestep fraction", fraction)
    check_tensor("sigmas", sigmas, 1, "[steps + 1]")
    if sigmas.numel() < 2:
        raise ValueError(f"sigmas must hold at least 2 values (steps + 1); got {describe(sigmas)}")
    candidates = sigmas[:-1].float()
    timesteps = torch.as_tensor(sigma_to_timestep(candidates), dtype=torch.float64).flatten()
    target = fraction * (num_timesteps - 1)
    step = int(torch.argmin((timesteps - target).abs()).item())
    return StepChoice(step, candidates.numel(), float(timesteps[step]), target, float(candidates[step]))
