"""VE ↔ VP normalisation and the timestep-fraction → step mapping."""
import math

import pytest
import torch

from avi_core import from_vp, step_for_timestep_fraction, to_vp, vp_scale


def sd_schedule():
    """SD's discrete schedule (scaled-linear betas, 1000 steps): sigma(t) and t(sigma) by nearest index."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
    log_sigmas = sigmas.log()

    def sigma_to_t(sigma):
        return (log_sigmas[None, :] - torch.as_tensor(sigma, dtype=torch.float64).log()[:, None]).abs().argmin(1).double()

    return sigmas, sigma_to_t


def ddim_uniform(sigmas, steps):
    """ComfyUI's ddim_uniform: every (1000 // steps)-th sigma from index 1, descending, then 0."""
    stride = 1000 // steps
    picked = [float(sigmas[i]) for i in range(1, 1000, stride)][::-1]
    return torch.tensor(picked + [0.0])


@pytest.mark.parametrize("kind, sigma, scale", [("eps", 3.0, math.sqrt(10)), ("v", 0.0, 1.0), ("flow", 0.6, math.sqrt(0.16 + 0.36))])
def test_vp_scale_and_round_trip(kind, sigma, scale):
    assert vp_scale(sigma, kind) == pytest.approx(scale)
    x = torch.randn(2, 4, 8, 8)
    assert torch.allclose(to_vp(x, sigma, kind), x / scale)
    assert torch.allclose(from_vp(to_vp(x, sigma, kind), sigma, kind), x, atol=1e-6)


def test_vp_latents_have_unit_variance_at_every_step():
    x0 = torch.randn(64, 4, 16, 16)
    eps = torch.randn_like(x0)
    for sigma in (0.1, 1.0, 5.0, 14.6):
        assert to_vp(x0 + sigma * eps, sigma, "eps").std().item() == pytest.approx(1.0, abs=0.03)
    for sigma in (0.1, 0.5, 0.9):
        assert to_vp((1 - sigma) * x0 + sigma * eps, sigma, "flow").std().item() == pytest.approx(1.0, abs=0.03)


def test_tenth_step_of_fifty_ddim_uniform_is_point_eight():
    sigmas, sigma_to_t = sd_schedule()
    schedule = ddim_uniform(sigmas, 50)
    choice = step_for_timestep_fraction(0.8, schedule, sigma_to_t)
    assert (choice.step, choice.steps, choice.timestep) == (9, 50, 801.0)
    assert choice.target_timestep == pytest.approx(799.2)
    assert choice.sigma == pytest.approx(float(sigmas[801]), rel=1e-6)
    half = step_for_timestep_fraction(0.5, schedule, sigma_to_t)
    assert (half.step, half.timestep) == (24, 501.0)
    assert step_for_timestep_fraction(1.0, schedule, sigma_to_t).step == 0
    assert step_for_timestep_fraction(0.0, schedule, sigma_to_t).step == 49, "the final sigma (0) is never chosen"


def test_bad_input():
    sigmas, sigma_to_t = sd_schedule()
    with pytest.raises(ValueError, match=r"timestep fraction must be in \[0, 1\]; got 1.2"):
        step_for_timestep_fraction(1.2, ddim_uniform(sigmas, 10), sigma_to_t)
    with pytest.raises(ValueError, match="at least 2 values"):
        step_for_timestep_fraction(0.5, torch.tensor([1.0]), sigma_to_t)
    with pytest.raises(ValueError, match=r"sigmas must have 1 dimensions"):
        step_for_timestep_fraction(0.5, torch.ones(2, 2), sigma_to_t)
    with pytest.raises(ValueError, match="model kind must be one of 'eps', 'v', 'flow'; got 'x0'"):
        vp_scale(1.0, "x0")
    with pytest.raises(ValueError, match="sigma must be one finite number >= 0; got float nan"):
        vp_scale(float("nan"), "eps")
    with pytest.raises(ValueError, match=r"sigma of a flow model must be in \[0, 1\]; got 2.0"):
        vp_scale(2.0, "flow")
    with pytest.raises(ValueError, match="x_model must have 4 dimensions"):
        to_vp(torch.randn(4, 8, 8), 1.0, "eps")
