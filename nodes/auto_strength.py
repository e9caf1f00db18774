"""Inject Latent's automatic strength: among AVI Integrate's ρ sweep, the ρ the model itself reads as the target's."""
import torch

import comfy.sample

from ..avi_core.strength import pick_strength, prompt_agreement, reproduction_gaps
from .latent_meta import RHO_KEY

AUTO = "auto"
EVERY = "every ρ"
AUTO_SWEEP = "0, 0.5, 1, 1.25, 1.5, 2"  # the ρ values the workflows give AVI Integrate for the auto pick
PICKS = (EVERY, AUTO)


def sweep_rhos(latent: dict, batch: int) -> list:
    """The ρ values of a sweep from AVI Integrate, checked against the latent's batch."""
    rhos = latent.get(RHO_KEY)
    if not rhos:
        raise ValueError(f"rho_pick 'auto' picks among the ρ values of AVI Integrate's y_pred (set its rho_list, e.g. "
                         f"'{AUTO_SWEEP}'); this latent does not come from AVI Integrate")
    if 0 not in rhos or len(rhos) < 2:
        raise ValueError(f"rho_pick 'auto' measures each ρ against ρ = 0 (x itself): give AVI Integrate a rho_list with 0 and "
                         f"the values to choose from, e.g. '{AUTO_SWEEP}'; got {', '.join(f'{r:g}' for r in rhos)}")
    if batch % len(rhos):
        raise ValueError(f"the latent's batch ({batch}) is not a multiple of its {len(rhos)} ρ values: it was changed after AVI Integrate")
    return list(rhos)


def denoised_at_step(model, latent: torch.Tensor, info, cfg, sampler_name, scheduler, cond, negative) -> torch.Tensor:
    """The model's x0 prediction (model space) for latents at the capture's step: one sampler step, its x0 kept."""
    seen = []
    comfy.sample.sample(model, torch.zeros_like(latent), info.steps, cfg, sampler_name, scheduler, cond, negative, latent,
                        disable_noise=True, start_step=info.step, last_step=info.step + 1, force_full_denoise=False,
                        callback=lambda i, x0, x, total: seen.append(x0.float().cpu()), disable_pbar=True, seed=info.seed)
    return seen[0]


def pick_per_seed(model, latent: dict, info, cfg, sampler_name, scheduler, positive, negative, target) -> tuple:
    """(indices of the chosen latents, one per seed; the chosen ρ per seed; the agreement [ρ, seed]): avi_core.strength's
    pick per seed, from the denoiser under both prompts at the capture's step (2 model evaluations per latent)."""
    if target is None:
        raise ValueError("rho_pick 'auto' compares the original and the target prompt: connect the target prompt")
    if info.x0 is None:
        raise ValueError("rho_pick 'auto' reads the edited x0 that AVI Integrate records for SVDs of x0 predictions "
                         "(SVD Decompose space 'x0'); this latent is an edit of noisy latents")
    samples = latent["samples"]
    rhos = sweep_rhos(latent, samples.shape[0])
    seeds = samples.shape[0] // len(rhos)
    d_original = denoised_at_step(model, samples, info, cfg, sampler_name, scheduler, positive, negative)
    d_target = denoised_at_step(model, samples, info, cfg, sampler_name, scheduler, target, negative)
    gap_o, gap_t = (g.view(len(rhos), seeds) for g in reproduction_gaps(info.x0, d_original, d_target))
    agreement = prompt_agreement(gap_o, gap_t, gap_t[rhos.index(0)])
    chosen = [pick_strength(rhos, agreement[:, b].tolist()) for b in range(seeds)]
    return [r * seeds + b for b, r in enumerate(chosen)], [rhos[r] for r in chosen], agreement


def picked_latent(latent: dict, picked: list) -> dict:
    """The LATENT reduced to the picked batch entries; a per-sample noise mask follows them, batch_index is dropped."""
    out = {k: v for k, v in latent.items() if k not in ("samples", "batch_index", "noise_mask")}
    out["samples"] = latent["samples"][picked]
    mask = latent.get("noise_mask")
    if mask is not None:
        out["noise_mask"] = mask[picked] if mask.shape[0] == latent["samples"].shape[0] > 1 else mask
    return out
