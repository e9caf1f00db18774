"""Grassmann geodesic distance between singular subspaces (section 4.3)."""
import math

import pytest
import torch

from avi_core import grassmann_distance, principal_angles, subspace_distance


def orthonormal(n, p, seed):
    q, _ = torch.linalg.qr(torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def test_equal_subspaces_have_distance_zero_even_with_another_basis():
    A = orthonormal(64, 4, 0)
    rotation = orthonormal(4, 4, 1)
    assert grassmann_distance(A, A).item() < 1e-7
    assert grassmann_distance(A, A @ rotation).item() < 1e-7
    assert grassmann_distance(A.float(), (A @ rotation).float()).item() < 1e-6


@pytest.mark.parametrize("p", [1, 4, 8])
def test_orthogonal_subspaces_have_distance_sqrt_p_pi_over_2(p):
    q = orthonormal(32, 2 * p, p)
    d = grassmann_distance(q[:, :p], q[:, p:])
    assert d.item() == pytest.approx(math.sqrt(p) * math.pi / 2, abs=1e-9)


def test_known_angles_are_recovered():
    angles = torch.tensor([0.0, 1e-6, 0.3, 1.2], dtype=torch.float64)
    e = torch.eye(8, dtype=torch.float64)
    A = e[:, :4]
    B = torch.stack([torch.cos(a) * e[:, i] + torch.sin(a) * e[:, 4 + i] for i, a in enumerate(angles)], dim=1)
    assert torch.allclose(principal_angles(A, B), angles, atol=1e-12)
    assert grassmann_distance(A, B).item() == pytest.approx(angles.norm().item(), abs=1e-12)


def test_subspace_distance_of_latents_batched():
    a = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    d_same = subspace_distance(a, a * 2.5, p=4)
    assert d_same.shape == (3, 4) and d_same.max().item() < 1e-6, "scaling a latent keeps its subspaces"
    b = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(3))
    d = subspace_distance(a, b, p=4)
    assert torch.all(d > 0.5) and torch.all(d <= 2 * math.pi / 2 + 1e-9)
    right = subspace_distance(a, b, p=4, side="right")
    assert right.shape == (3, 4) and not torch.allclose(right, d)
    assert torch.allclose(subspace_distance(a, a.transpose(-1, -2), p=3, side="right"), subspace_distance(a.transpose(-1, -2), a, p=3, side="right"))


def test_bad_input():
    a = torch.randn(1, 4, 8, 8)
    with pytest.raises(ValueError, match=r"p must satisfy 1 <= p <= N = 8; got p = 9"):
        subspace_distance(a, a, p=9)
    with pytest.raises(ValueError, match=r"a and b must have the same shape"):
        subspace_distance(a, torch.randn(1, 4, 8, 6))
    with pytest.raises(ValueError, match="side must be one of 'left', 'right'"):
        subspace_distance(a, a, side="both")
    with pytest.raises(ValueError, match=r"p <= n"):
        principal_angles(torch.randn(3, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match="NaN/Inf"):
        grassmann_distance(torch.full((4, 2), float("nan")), torch.randn(4, 2))
