"""The pack's own reading beside Algorithm 1: aligned z vectors, S_inf Sx→S, ρ above 1, edits of x0 carried back."""
import re

import pytest
import torch

from avi_core import attribute_vectors, build_phi, decompose, integrate
from avi_core.conventions import SPACES, carry_to_step


def pair(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_aligned_blends_each_pair_from_k_toward_z_in_place(k):
    x, z = pair((1, 4, 8, 8), k)
    sx, sz = decompose(x), decompose(z)
    U, V = attribute_vectors(sx, sz, k, 0.25, "aligned")
    assert torch.equal(U[..., :k], sx.U[..., :k]) and torch.equal(V[..., :k, :], sx.V[..., :k, :])
    assert torch.allclose(U[..., k:], 0.75 * sx.U[..., k:] + 0.25 * sz.U[..., k:], atol=1e-6)
    assert torch.allclose(V[..., k:, :], 0.75 * sx.V[..., k:, :] + 0.25 * sz.V[..., k:, :], atol=1e-6)
    U1, _ = attribute_vectors(sx, sz, k, 1.0, "aligned")
    assert torch.equal(U1[..., k:], sz.U[..., k:])


def test_sx_to_s_moves_the_spectrum_with_rho_and_returns_x_at_zero():
    x, z = pair((2, 4, 8, 8), 3)
    phi = build_phi(8, 8, hidden=32, seed=1)
    sx, sz = decompose(x), decompose(z)
    with torch.no_grad():
        S, _ = phi(x.flatten(-2))
    rhos = [0.0, 0.5, 1.0, 1.5]
    y = integrate(phi, x, z, rho=rhos, k=2, s_inf="Sx→S", z_vectors="aligned")
    assert (y[0] - x).abs().max() < 1e-5, "ρ = 0 returns x whatever Φ predicts"
    for i, rho in enumerate(rhos):
        U, V = attribute_vectors(sx, sz, 2, rho, "aligned")
        expected = U @ torch.diag_embed(sx.S + rho * (S - sx.S)) @ V
        assert torch.allclose(y[i], expected, atol=1e-4), rho
    # ρ = 1 with S_inf Sx→S is Algorithm 1's line 10 (S_inf S)
    assert torch.allclose(y[2], integrate(phi, x, z, rho=1.0, k=2, s_inf="S", z_vectors="aligned"), atol=1e-5)


def test_sx_to_sz_moves_the_spectrum_towards_zs_own_with_no_phi():
    x, z = pair((2, 4, 8, 8), 5)
    sx, sz = decompose(x), decompose(z)
    rhos = [0.0, 0.5, 1.0]
    y = integrate(None, x, z, rho=rhos, k=1, s_inf="Sx→Sz", z_vectors="aligned")
    assert (y[0] - x).abs().max() < 1e-5, "ρ = 0 returns x"
    for i, rho in enumerate(rhos):
        U, V = attribute_vectors(sx, sz, 1, rho, "aligned")
        assert torch.allclose(y[i], U @ torch.diag_embed(sx.S + rho * (sz.S - sx.S)) @ V, atol=1e-4), rho
    assert torch.allclose(integrate(None, x, z, rho=1.0, k=1, s_inf="Sx"), integrate(build_phi(8, 8, hidden=8), x, z, rho=1.0, k=1, s_inf="Sx"))
    for mode in ("S", "S+Δs", "Sx→S"):
        with pytest.raises(ValueError, match=re.escape(f"S_inf '{mode}' uses Φ's predicted spectrum: give a Φ, or choose one of 'Sx', 'Sx→Sz'")):
            integrate(None, x, z, rho=1.0, s_inf=mode)


def test_rho_above_one_extrapolates_up_to_the_limit():
    x, z = pair((1, 4, 8, 8), 4)
    sx, sz = decompose(x), decompose(z)
    U2, _ = attribute_vectors(sx, sz, 4, 2.0, "aligned")
    assert torch.allclose(U2[..., 4:], 2 * sz.U[..., 4:] - sx.U[..., 4:], atol=1e-6)
    phi = build_phi(8, 8, hidden=8)
    for bad in (2.01, -0.1, float("inf")):
        with pytest.raises(ValueError, match=r"rho must be"):
            integrate(phi, x, z, rho=[1.0, bad])


@pytest.mark.parametrize("kind, sigma, weight", [("eps", 3.0, 1.0), ("v", 0.5, 1.0), ("flow", 0.25, 0.75)])
def test_an_edit_of_x0_is_carried_back_with_the_steps_own_noise(kind, sigma, weight):
    x0, noise = pair((1, 4, 8, 8), 9)
    x = (1 - sigma) * x0 + sigma * noise if kind == "flow" else x0 + sigma * noise
    assert torch.equal(carry_to_step(x0, x, x0, sigma, kind), x), "an unchanged x0 gives back the captured latent"
    edit = torch.randn(1, 4, 8, 8)
    moved = carry_to_step(x0 + edit, x, x0, sigma, kind)
    assert torch.allclose(moved - x, weight * edit, atol=1e-6), "the edit enters with the signal's weight at σ"
    with pytest.raises(ValueError, match="model kind"):
        carry_to_step(x0, x, x0, sigma, "edm")
    assert SPACES[0] == "x0", "the pack's default space is listed first"
