"""Capture metadata carried in LATENT dicts, and the conversions raw LATENT ↔ model space ↔ VP (docs/method.md, Latent convention).

A LATENT from Capture Latent at Step keeps its `samples` in raw VAE units (as KSamplerAdvanced
returns them with leftover noise) and adds `avi_capture`: where on the trajectory it was taken,
how to map it into the model's space, and the model's x0 prediction there.
"""
from dataclasses import dataclass, replace
from typing import Optional

import torch

from ..avi_core import from_vp, to_vp
from ..avi_core.conventions import LAST_TIMESTEP

CAPTURE_KEY = "avi_capture"
RHO_KEY = "avi_rho"  # AVI Integrate's ρ values, in the order of its ρ-major batch
USE_CAPTURE = "Use Capture Latent at Step to take latents from a sampler trajectory"


@dataclass(frozen=True)
class CaptureInfo:
    """Where a latent sits on a sampler trajectory and how its raw values map to the model's space.

    latent_scale/latent_shift [C] give the model's process_in as raw·scale + shift (probed from the
    model's latent format at capture). x0 is the model's clean prediction there, in model space.
    checksum ties the record to the samples it was written for.
    """

    sigma: float
    step: int
    steps: int
    timestep: float
    fraction: Optional[float]
    sampler: str
    scheduler: str
    seed: int
    cfg: float
    model_kind: str
    latent_format: str
    latent_scale: torch.Tensor
    latent_shift: torch.Tensor
    sigmas: tuple
    x0: Optional[torch.Tensor]
    checksum: tuple
    start: str = ""  # "" = the seed's noise; else the inverted latent the capture started from
    model_family: str = ""  # model_info.model_family of the capturing model; "" when it could not be told

    @property
    def reached_fraction(self) -> float:
        """The fraction of T the captured step stands for (ComfyUI counts timesteps 0..999)."""
        return self.timestep / LAST_TIMESTEP

    def describe(self) -> str:
        """One line for people: step, the timestep and fraction of T actually reached, σ, sampler."""
        origin = "from an inverted latent" if self.start else f"seed {self.seed}"
        return (f"step {self.step} of {self.steps} (t = {self.timestep:g} ≈ {self.reached_fraction:.2f}·T, σ = {self.sigma:.4g}), "
                f"{self.sampler}/{self.scheduler}, {origin}")

    def far_from_fraction(self, tolerance: float = 0.05):
        """A warning when the step nearest the fraction asked for is far from it (few steps), else None."""
        if self.fraction is None or abs(self.reached_fraction - self.fraction) <= tolerance:
            return None
        return (f"warning: {self.fraction:g}·T was asked, but with {self.steps} {self.scheduler} steps the nearest step "
                f"({self.step}) is at {self.reached_fraction:.2f}·T; use more steps to get closer")


def checksum(samples: torch.Tensor) -> tuple:
    """Shape and two float64 sums: cheap, and any edit of the samples changes it."""
    s = samples.detach().double()
    return tuple(samples.shape), round(s.sum().item(), 6), round(s.abs().sum().item(), 6)


def read_capture(latent, name: str, allow_changed: bool = False) -> CaptureInfo:
    """The capture record of a LATENT input, refusing latents without one or changed since."""
    if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor):
        raise ValueError(f"{name} must be a LATENT; got {type(latent).__name__}")
    info = latent.get(CAPTURE_KEY)
    if not isinstance(info, CaptureInfo):
        raise ValueError(f"{name} has no AVI capture metadata (σ, step, schedule). {USE_CAPTURE}.")
    bad = int((~torch.isfinite(latent["samples"])).sum().item())
    if bad:
        raise ValueError(f"{name} holds {bad} NaN/Inf value(s) out of {latent['samples'].numel()}; a latent must be finite "
                         f"(the node before it produced NaN or Inf, e.g. a LatentMultiply by NaN: check that node's inputs)")
    if not allow_changed and checksum(latent["samples"]) != info.checksum:
        raise ValueError(
            f"{name} was changed after it was captured (its samples no longer match the capture at "
            f"{info.describe()}); connect the LATENT straight from Capture Latent at Step or AVI Integrate."
        )
    return info


def with_capture(latent: dict, samples: torch.Tensor, info: CaptureInfo, keep_x0: bool = True) -> dict:
    """A LATENT dict with new samples and the capture record bound to them (per-sample keys dropped if the batch changed);
    non-finite samples are refused."""
    bad = int((~torch.isfinite(samples)).sum().item())
    if bad:  # refused where it arises, so no later node is blamed for it
        raise ValueError(f"this node's result holds {bad} NaN/Inf value(s) out of {samples.numel()}, so nothing was passed on: "
                         "check its inputs")
    per_sample = ("batch_index", "noise_mask", RHO_KEY) if samples.shape[0] != latent["samples"].shape[0] else ()
    out = {k: v for k, v in latent.items() if k not in ("samples", CAPTURE_KEY) + per_sample}
    out["samples"] = samples
    out[CAPTURE_KEY] = replace(info, checksum=checksum(samples), x0=info.x0 if keep_x0 else None)
    return out


def without_capture(latent: dict, samples: torch.Tensor) -> dict:
    """A plain LATENT dict (finished latents carry no capture record)."""
    out = {k: v for k, v in latent.items() if k not in ("samples", CAPTURE_KEY, RHO_KEY)}
    out["samples"] = samples
    return out


def channel_view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[C] → [1, C, 1, 1] on like's device and dtype."""
    return v.to(like.device, like.dtype).view(1, -1, *([1] * (like.ndim - 2)))


def raw_to_model(raw: torch.Tensor, info: CaptureInfo) -> torch.Tensor:
    """Sampler-state latent from raw LATENT samples: process_in, then flow models' (1-σ) scaling."""
    x = raw.float() * channel_view(info.latent_scale, raw.float()) + channel_view(info.latent_shift, raw.float())
    return x * (1.0 - info.sigma) if info.model_kind == "flow" else x


def model_to_raw(x: torch.Tensor, info: CaptureInfo) -> torch.Tensor:
    """Raw LATENT samples from a sampler-state latent (inverse of raw_to_model)."""
    if info.model_kind == "flow":
        x = x / (1.0 - info.sigma)
    return (x - channel_view(info.latent_shift, x)) / channel_view(info.latent_scale, x)


def raw_to_vp(raw: torch.Tensor, info: CaptureInfo) -> torch.Tensor:
    """VP-normalised model-space latent (what avi_core works on) from raw samples."""
    return to_vp(raw_to_model(raw, info), info.sigma, info.model_kind)


def vp_to_raw(vp: torch.Tensor, info: CaptureInfo) -> torch.Tensor:
    """Raw LATENT samples from a VP latent at the capture's σ."""
    return model_to_raw(from_vp(vp, info.sigma, info.model_kind), info)
