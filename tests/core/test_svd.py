"""Channel-wise SVD: shapes, dtypes, reconstruction and the sign convention (docs/method.md, Sign)."""
import re

import pytest
import torch

from avi_core import canonical_signs, decompose, recompose, scale_singular_value, singular_values

SHAPES = [(1, 4, 8, 8), (3, 4, 8, 8), (2, 4, 6, 10), (2, 4, 12, 5), (2, 16, 8, 8), (1, 4, 64, 64)]


@pytest.mark.parametrize("shape", SHAPES)
def test_decompose_shapes_and_reconstruction(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    s = decompose(x)
    b, c, h, w = shape
    n = min(h, w)
    assert s.U.shape == (b, c, h, n) and s.S.shape == (b, c, n) and s.V.shape == (b, c, n, w)
    assert s.n == n
    assert torch.allclose(recompose(s.U, s.S, s.V), x, atol=1e-5)
    assert torch.all(s.S[..., :-1] >= s.S[..., 1:]), "singular values must be descending"
    eye = torch.eye(n).expand(b, c, n, n)
    assert torch.allclose(s.U.transpose(-1, -2) @ s.U, eye, atol=1e-5)
    assert torch.allclose(s.V @ s.V.transpose(-1, -2), eye, atol=1e-5)
    assert torch.allclose(singular_values(x), s.S, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_decompose_returns_input_dtype_computed_in_float32(dtype):
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2)).to(dtype)
    s = decompose(x)
    assert s.U.dtype == s.S.dtype == s.V.dtype == dtype
    reference = decompose(x.float())
    assert torch.equal(s.S, reference.S.to(dtype)), "the SVD itself runs in float32 whatever the input dtype"
    assert singular_values(x).dtype == dtype


def test_sign_convention_largest_entry_of_u_is_positive():
    s = decompose(torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(3)))
    idx = s.U.abs().argmax(dim=-2, keepdim=True)
    assert torch.all(torch.gather(s.U, -2, idx) > 0)


def test_sign_convention_is_invariant_to_flipping_input_pairs():
    x = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    U, S, V = torch.linalg.svd(x, full_matrices=False)
    for trial in range(5):
        flips = torch.randint(0, 2, S.shape, generator=torch.Generator().manual_seed(trial)) * 2.0 - 1.0
        U2, V2 = U * flips.unsqueeze(-2), V * flips.unsqueeze(-1)
        assert torch.allclose(recompose(U2, S, V2), x, atol=1e-5), "a flipped pair still reconstructs x"
        a, b = canonical_signs(U, V), canonical_signs(U2, V2)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_decompose_keeps_device():
    x = torch.randn(1, 4, 8, 8)
    assert decompose(x).U.device == x.device


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (torch.randn(4, 8, 8), "4 dimensions"),
        (torch.randn(1, 1, 4, 8, 8), "4 dimensions"),
        (torch.ones(1, 4, 8, 8, dtype=torch.int64), "floating-point"),
        (torch.full((1, 4, 8, 8), float("nan")), "NaN/Inf"),
        (torch.randn(1, 4, 1, 8), "at least 2x2"),
        ([[1.0, 2.0]], "must be a tensor"),
        (torch.empty(0, 4, 8, 8), "must not be empty"),
    ],
)
def test_decompose_bad_input(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        decompose(bad)
    with pytest.raises(ValueError, match=fragment):
        singular_values(bad)


def test_recompose_bad_input_names_shapes():
    s = decompose(torch.randn(1, 4, 8, 6))
    with pytest.raises(ValueError, match=r"do not fit together.*\(1, 4, 8, 6\)"):
        recompose(s.U, s.S[..., :5], s.V)
    with pytest.raises(ValueError, match="one dimension less"):
        recompose(s.U, s.S[0], s.V)
    with pytest.raises(ValueError, match="NaN/Inf"):
        recompose(s.U, s.S * float("inf"), s.V)


def test_scale_singular_value_changes_one_value():
    x = torch.randn(2, 4, 8, 6, generator=torch.Generator().manual_seed(5))
    s = decompose(x)
    assert torch.allclose(scale_singular_value(s, 0, 1.0), x, atol=1e-5)
    y = scale_singular_value(s, 2, 3.0, channel=1)
    expected = s.S.clone()
    expected[:, 1, 2] *= 3.0
    assert torch.allclose(singular_values(y).sort(dim=-1, descending=True).values, expected.sort(dim=-1, descending=True).values, atol=1e-4)
    assert torch.allclose(y[:, [0, 2, 3]], x[:, [0, 2, 3]], atol=1e-5), "other channels are untouched"
    everywhere = scale_singular_value(s, 0, 0.0)
    assert torch.allclose(singular_values(everywhere)[..., :5], s.S[..., 1:], atol=1e-4), "σ_0 removed in every channel"
    with pytest.raises(ValueError, match=r"0 <= index < N = 6; got 6"):
        scale_singular_value(s, 6, 2.0)
    with pytest.raises(ValueError, match=r"0 <= channel < C = 4"):
        scale_singular_value(s, 0, 2.0, channel=4)
    with pytest.raises(ValueError, match="factor must be a finite number"):
        scale_singular_value(s, 0, float("inf"))
    for factor in (1e308, -1e6, 100.5):  # 1e308 would overflow float32 to Inf; ±100 is Scale Singular Value's range
        with pytest.raises(ValueError, match=re.escape(f"factor must be a finite number from -100 to 100; got {factor!r}")):
            scale_singular_value(s, 0, factor)
    assert torch.isfinite(scale_singular_value(s, 0, -100.0)).all()
