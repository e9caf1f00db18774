"""DDIM inversion: inverting then sampling gives the clean latent back; refine solves the step exactly; bad input is named."""
import pytest
import torch

from avi_core.inversion import REFINE_MAX, ddim_invert, euler_sample, evaluations, inversion_step, relative_error


def gaussian_denoiser(scale: float, kind: str = "eps"):
    """The exact x0 prediction for data ~ N(0, scale²) per element, with a nonlinear term so steps do not commute."""
    def denoise(x, sigma):
        signal = 1.0 - sigma if kind == "flow" else 1.0
        gain = signal * scale**2 / (signal**2 * scale**2 + sigma**2)
        return gain * x + 0.05 * torch.tanh(x)
    return denoise


def schedule(kind: str, steps: int) -> torch.Tensor:
    """A descending σ schedule ending at 0: SD-like (14.6 → 0.03) or flow (1 → 0)."""
    if kind == "flow":
        return torch.cat([torch.linspace(1.0, 0.02, steps), torch.zeros(1)])
    return torch.cat([torch.logspace(1.165, -1.5, steps), torch.zeros(1)])


@pytest.mark.parametrize("kind", ["eps", "flow"])
def test_refined_inversion_is_the_exact_inverse_of_the_euler_sampler(kind):
    denoise, sigmas = gaussian_denoiser(0.8, kind), schedule(kind, 30)
    x0 = 0.8 * torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    plain = relative_error(euler_sample(denoise, ddim_invert(denoise, x0, sigmas, refine=0), sigmas), x0)
    refined = relative_error(euler_sample(denoise, ddim_invert(denoise, x0, sigmas, refine=6), sigmas), x0)
    assert refined < 1e-4, refined
    assert plain > 10 * refined, (plain, refined)  # plain DDIM inversion is only first-order exact


def test_one_inversion_step_undoes_one_euler_step():
    denoise = gaussian_denoiser(1.0)
    x = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 3.0
    x_next = x + (2.5 - 3.0) * (x - denoise(x, 3.0)) / 3.0  # a 50-step schedule's steps are this small
    assert relative_error(inversion_step(denoise, x_next, 3.0, 2.5, refine=10), x) < 1e-5


def test_inversion_reports_every_step_and_counts_its_evaluations():
    calls, seen = [], []
    denoise = gaussian_denoiser(1.0)
    counting = lambda x, s: (calls.append(s), denoise(x, s))[1]  # noqa: E731
    ddim_invert(counting, torch.zeros(1, 1, 4, 4), schedule("eps", 5), refine=2, callback=lambda n, x: seen.append(n))
    assert seen == [0, 1, 2, 3, 4]
    assert len(calls) == evaluations(5, 2) == 15
    assert calls[0] == pytest.approx(float(schedule("eps", 5)[4])), "the first inverted step is the sampler's last"


@pytest.mark.parametrize("sigmas, message", [
    ([1.0], "at least two"), ([0.0, 1.0], "descending"), ([2.0, float("nan"), 0.0], "finite"), ([1.0, -0.5], ">= 0"),
])
def test_bad_schedules_are_named(sigmas, message):
    with pytest.raises(ValueError, match="strictly descending") as err:
        ddim_invert(gaussian_denoiser(1.0), torch.zeros(1, 1, 4, 4), sigmas)
    assert message in str(err.value) or "got" in str(err.value)


@pytest.mark.parametrize("refine", [-1, REFINE_MAX + 1, 1.5, True])
def test_bad_refine_is_named(refine):
    with pytest.raises(ValueError, match="refine"):
        ddim_invert(gaussian_denoiser(1.0), torch.zeros(1, 1, 4, 4), schedule("eps", 3), refine=refine)


def test_nan_latent_is_refused():
    x0 = torch.zeros(1, 1, 4, 4)
    x0[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ddim_invert(gaussian_denoiser(1.0), x0, schedule("eps", 3))
