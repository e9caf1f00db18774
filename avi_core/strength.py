"""Automatic strength: the model as its own judge of how far an edit has gone, with no classifier and no extra weights.

An edit of x0 predictions gives, per ρ, an edited x0 ŷ0(ρ) and the latent y(ρ) at x's step. At ρ = 0 the original
prompt's denoiser reproduces x's own x0 and the target prompt's misses it by ‖x0 − D_target(x)‖²; as ρ grows the
edit reads more and more as the target's. The agreement at ρ is the target's lead over the original in reproducing
ŷ0(ρ), in units of that miss: −1 at ρ = 0, 0 where both reproduce it equally well. The automatic strength is the
smallest ρ > 0 whose agreement reaches THRESHOLD; where none does, the model cannot tell, and the pack's default
strength (the ρ nearest FALLBACK) is taken rather than the sweep's strongest.
"""
import torch

THRESHOLD = -0.25  # chosen over the 8 kinds of bench/bench_edits.py (16 cases each): the most successes of -0.5, -0.25, 0
# Where no ρ reaches THRESHOLD: the pack's default ρ (avi_core.defaults.PACK). Over the 8 kinds at 40 cases, the sweep's
# strongest ρ (2) there put the pick 0.28 of success below the switch's frontier on hair colour, this 0.16.
FALLBACK = 1.0


def reproduction_gaps(y0: torch.Tensor, denoised_original: torch.Tensor, denoised_target: torch.Tensor) -> tuple:
    """Per latent, (‖ŷ0 − D_original(y)‖², ‖ŷ0 − D_target(y)‖²)."""
    gap = lambda a, b: (a.float() - b.float()).square().flatten(1).sum(1)  # noqa: E731
    return gap(y0, denoised_original), gap(y0, denoised_target)


def prompt_agreement(gap_original: torch.Tensor, gap_target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(gap_original − gap_target) / reference, where reference is the target's gap at ρ = 0 (x itself)."""
    return (gap_original - gap_target) / reference.clamp_min(torch.finfo(torch.float32).tiny)


def pick_strength(rhos: list, agreement: list, threshold: float = THRESHOLD, fallback: float = FALLBACK) -> int:
    """Index of the smallest ρ > 0 whose agreement reaches `threshold`; when none does, of the ρ > 0 nearest `fallback`
    (the smaller of two as near; the largest ρ when none is above 0)."""
    order = sorted(range(len(rhos)), key=lambda i: rhos[i])
    positive = [i for i in order if rhos[i] > 0]
    chosen = next((i for i in positive if agreement[i] >= threshold), None)
    if chosen is not None:
        return chosen
    return min(positive, key=lambda i: abs(rhos[i] - fallback)) if positive else order[-1]
