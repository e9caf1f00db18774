"""Algorithm 1 against a literal transcription, the identity check, and Theorem 3.1 measured."""
import numpy as np
import pytest
import torch

from avi_core import attribute_vectors, build_phi, decompose, fidelity_distances, integrate, reverse_order
from avi_core.inference import integrate_svd


def literal_attribute_vectors(Ux, Vx, Uz, Vz, k, rho, z_vectors):
    """Algorithm 1 lines 6-9 for one matrix, column by column, as printed (numpy, float64)."""
    H, N = Ux.shape
    if z_vectors == "tail":
        Uz_rev = Uz[:, ::-1]  # line 6: U'z = Uz[:, ::-1]
        Vz_rev = Vz[::-1, :]  # line 7: V'z = Vz[::-1, :]
    else:  # section 3.2.1 prose: the top columns of Uz in reverse order
        Uz_rev = Uz[:, : N - k][:, ::-1]
        Vz_rev = Vz[: N - k, :][::-1, :]
    U_hat = np.zeros((H, N))
    V_hat = np.zeros((N, Vx.shape[1]))
    for j in range(k):  # lines 8-9, first block: Ux[:, :k], Vx[:k, :]
        U_hat[:, j] = Ux[:, j]
        V_hat[j, :] = Vx[j, :]
    for j in range(N - k):  # second block: (1-ρ)·Ux[:, k:] + ρ·U'z[:, :k]
        U_hat[:, k + j] = (1 - rho) * Ux[:, k + j] + rho * Uz_rev[:, j]
        V_hat[k + j, :] = (1 - rho) * Vx[k + j, :] + rho * Vz_rev[j, :]
    return U_hat, V_hat


def pair(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


@pytest.mark.parametrize("z_vectors", ["tail", "head"])
@pytest.mark.parametrize("shape, k", [((2, 4, 8, 8), 4), ((1, 4, 8, 8), 3), ((1, 4, 8, 8), 6), ((1, 4, 6, 10), 2), ((1, 16, 8, 8), 1), ((1, 4, 8, 8), 7)])
@pytest.mark.parametrize("rho", [0.0, 0.3, 1.0])
def test_attribute_vectors_equal_literal_algorithm(z_vectors, shape, k, rho):
    x, z = pair(shape, seed=k)
    sx, sz = decompose(x), decompose(z)
    U_hat, V_hat = attribute_vectors(sx, sz, k, rho, z_vectors)
    for b in range(shape[0]):
        for c in range(shape[1]):
            ref_U, ref_V = literal_attribute_vectors(
                sx.U[b, c].double().numpy(), sx.V[b, c].double().numpy(),
                sz.U[b, c].double().numpy(), sz.V[b, c].double().numpy(), k, rho, z_vectors,
            )
            np.testing.assert_allclose(U_hat[b, c].numpy(), ref_U, atol=1e-6)
            np.testing.assert_allclose(V_hat[b, c].numpy(), ref_V, atol=1e-6)


def test_tail_and_head_differ_and_default_is_tail():
    x, z = pair((1, 4, 8, 8), 1)
    sx, sz = decompose(x), decompose(z)
    tail, head = attribute_vectors(sx, sz, 4, 1.0, "tail"), attribute_vectors(sx, sz, 4, 1.0, "head")
    assert not torch.allclose(tail[0], head[0])
    assert torch.equal(attribute_vectors(sx, sz, 4)[0], tail[0])
    # tail takes z's weakest vectors first: column k of Û is Uz's last column
    assert torch.equal(tail[0][..., 4], sz.U[..., -1])
    # head takes z's strongest N-k vectors, reversed: the last column of Û is Uz's first
    assert torch.equal(head[0][..., -1], sz.U[..., 0])


def test_reverse_order_is_lines_11_12():
    U_hat, V_hat = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    U_t, V_t = reverse_order(U_hat, V_hat)
    assert torch.equal(U_t[..., 0], U_hat[..., -1]) and torch.equal(V_t[..., 0, :], V_hat[..., -1, :])
    # Ũ (S+Δs) Ṽ equals Û diag(reversed S+Δs) V̂
    s = torch.rand(2, 3, 8)
    lhs = (U_t * s.unsqueeze(-2)) @ V_t
    rhs = (U_hat * s.flip(-1).unsqueeze(-2)) @ V_hat
    assert torch.allclose(lhs, rhs, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 4, 8, 8), (3, 4, 6, 10), (2, 16, 8, 8), (1, 4, 64, 64)])
def test_identity_rho_zero_with_sx_returns_x(shape):
    x, z = pair(shape, 5)
    phi = build_phi(shape[2], shape[3], hidden=16)
    y = integrate(phi, x, z, rho=0.0, s_inf="Sx")
    assert y.shape == x.shape
    assert (y - x).abs().max().item() < 1e-5


def test_inference_matches_line_10_for_each_s_inf_and_rho():
    x, z = pair((2, 4, 8, 8), 6)
    phi = build_phi(8, 8, hidden=32, seed=3)
    sx, sz = decompose(x), decompose(z)
    with torch.no_grad():
        S, dS = phi(x.flatten(-2))
    rhos = [0.0, 0.25, 1.0]
    for mode, s_used in (("S", S), ("S+Δs", S + dS), ("Sx", sx.S)):
        y = integrate(phi, x, z, rho=rhos, s_inf=mode)
        assert y.shape == (3, 2, 4, 8, 8)
        for i, rho in enumerate(rhos):
            U_hat, V_hat = attribute_vectors(sx, sz, 4, rho)
            expected = U_hat @ torch.diag_embed(s_used) @ V_hat
            assert torch.allclose(y[i], expected, atol=1e-5), (mode, rho)
    single = integrate(phi, x, z, rho=0.25)
    assert single.shape == x.shape and torch.allclose(single, integrate(phi, x, z, rho=[0.25])[0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_integrate_half_precision_inputs(dtype):
    x, z = pair((1, 4, 8, 8), 7)
    phi = build_phi(8, 8, hidden=16)
    y = integrate(phi, x.to(dtype), z.to(dtype), rho=0.0, s_inf="Sx")
    assert y.dtype == dtype
    assert torch.allclose(y.float(), x.to(dtype).float(), atol=2e-2)


def test_theorem_3_1_measured_on_random_pairs(capsys):
    """‖Û - Ux‖ <= ‖Û - Uz‖ (k = N/2, ρ = 1), counted over 4 families x 250 pairs x 4 channels."""
    g = torch.Generator().manual_seed(0)
    families = {
        "independent": lambda x: torch.randn(x.shape, generator=g),
        "z = x + 0.3·noise": lambda x: x + 0.3 * torch.randn(x.shape, generator=g),
        "z = x + 0.05·noise": lambda x: x + 0.05 * torch.randn(x.shape, generator=g),
        "z = 0.5·x + noise": lambda x: 0.5 * x + torch.randn(x.shape, generator=g),
    }
    holds = {}
    for name, make_z in families.items():
        x = torch.randn((250, 4, 32, 32), generator=g)
        sx, sz = decompose(x), decompose(make_z(x))
        for mode in ("tail", "head"):
            for ord in ("fro", 2):
                dx, dz = fidelity_distances(sx, sz, 16, 1.0, mode, ord)
                holds[(name, mode, ord)] = (dx <= dz + 1e-6).float().mean().item()
    with capsys.disabled():
        print("\nTheorem 3.1 holds in this fraction of 1000 matrices per row:")
        for key, frac in holds.items():
            print(f"  {key[0]:<22} z_vectors={key[1]:<4} norm={key[2]!s:<3} {frac:.4f}")
    # Always for independent latents; nearly always otherwise. The inequality can fail when z is
    # very close to x (the printed proof bounds each side separately, which does not order them).
    assert all(frac == 1.0 for (name, _, _), frac in holds.items() if name == "independent")
    assert all(frac >= 0.9 for frac in holds.values())


def test_bad_input_names_what_fits():
    x, z = pair((1, 4, 8, 8), 8)
    sx, sz = decompose(x), decompose(z)
    phi = build_phi(8, 8, hidden=8)
    with pytest.raises(ValueError, match=r"1 <= k < N = 8.*k = 8"):
        attribute_vectors(sx, sz, 8)
    with pytest.raises(ValueError, match=r"1 <= k < N = 8.*k = 0"):
        attribute_vectors(sx, sz, 0)
    with pytest.raises(ValueError, match="integer"):
        attribute_vectors(sx, sz, 4.5)
    with pytest.raises(ValueError, match=r"rho must be in \[0, 2\] \(above 1 extrapolates\); got 2.5"):
        attribute_vectors(sx, sz, 4, 2.5)
    with pytest.raises(ValueError, match="rho must be a number"):
        attribute_vectors(sx, sz, 4, float("nan"))
    with pytest.raises(ValueError, match="z_vectors must be one of 'tail', 'head', 'aligned'; got 'middle'"):
        attribute_vectors(sx, sz, 4, 1.0, "middle")
    with pytest.raises(ValueError, match=r"same shape.*\(1, 4, 8, 8\).*\(1, 4, 6, 6\)"):
        attribute_vectors(sx, decompose(torch.randn(1, 4, 6, 6)), 3)
    with pytest.raises(ValueError, match=r"x and z must have the same shape; got \(1, 4, 8, 8\) and \(2, 4, 8, 8\)"):
        integrate(phi, x, torch.randn(2, 4, 8, 8))
    with pytest.raises(ValueError, match="NaN/Inf"):
        integrate(phi, x, z * float("nan"))
    with pytest.raises(ValueError, match="S_inf must be one of"):
        integrate(phi, x, z, s_inf="T")
    with pytest.raises(ValueError, match="non-empty list"):
        integrate(phi, x, z, rho=[])
    with pytest.raises(ValueError, match=r"rho must be in \[0, 2\] \(above 1 extrapolates\); got -0.1"):
        integrate(phi, x, z, rho=[0.5, -0.1])
    with pytest.raises(ValueError, match=r"Φ expects latents with H\*W = 64.*\(1, 4, 6, 6\)"):
        integrate(phi, torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6))
    with pytest.raises(ValueError, match="LatentSVD"):
        integrate_svd(phi, x, x, sz, [1.0], 4)
    with pytest.raises(ValueError, match="ord must be"):
        fidelity_distances(sx, sz, 4, ord="nuc")
