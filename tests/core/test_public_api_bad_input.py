"""Bad input to the remaining public functions raises ValueError naming what was given and what fits."""
import pytest
import torch

import avi_core
from avi_core import CapturedPairs, SingularValuePredictor, build_phi, canonical_signs, from_vp, resample_pairs


def test_canonical_signs_bad_input():
    U, _, V = torch.linalg.svd(torch.randn(2, 8, 6), full_matrices=False)
    with pytest.raises(ValueError, match=r"do not fit together; got U \(2, 8, 6\), V \(2, 5, 6\)"):
        canonical_signs(U, V[:, :5])
    with pytest.raises(ValueError, match="U must have"):
        canonical_signs(torch.randn(3), V)
    with pytest.raises(ValueError, match="V contains"):
        canonical_signs(U, V * float("nan"))


def test_phi_bad_sizes():
    with pytest.raises(ValueError, match="hidden must be an integer >= 1; got int 0"):
        build_phi(8, 8, hidden=0)
    with pytest.raises(ValueError, match=r"in_features \(H\*W\) must be an integer >= 1"):
        SingularValuePredictor(0, 4)


def test_from_vp_and_resample_bad_input():
    with pytest.raises(ValueError, match="x_vp contains"):
        from_vp(torch.full((1, 4, 8, 8), float("inf")), 1.0, "eps")
    x = torch.randn(1, 4, 8, 8)
    pairs = CapturedPairs(x, x, x, x, 1.0, 0.5)
    with pytest.raises(ValueError, match="samples per pair must be an integer >= 0; got int -2"):
        resample_pairs(pairs, -2, torch.Generator())
    assert resample_pairs(pairs, 0, torch.Generator())[0].shape == (1, 4, 8, 8)


def test_public_api_is_documented():
    """Every name exported by avi_core has a docstring (docs/core.md's API table lists them)."""
    undocumented = [name for name in avi_core.__all__ if not isinstance(getattr(avi_core, name), (str, int, tuple, dict))
                    and not (getattr(avi_core, name).__doc__ or "").strip()]
    assert undocumented == []
