"""Each AVI loss against a hand computation (explicit sums over samples, channels and entries)."""
import pytest
import torch

from avi_core import LossWeights, avi_loss


def hand_frobenius(a, b):
    """Σ over channels and entries of (a - b)², averaged over samples, with plain loops."""
    per_sample = []
    for i in range(a.shape[0]):
        total = 0.0
        for value_a, value_b in zip(a[i].flatten().tolist(), b[i].flatten().tolist()):
            total += (value_a - value_b) ** 2
        per_sample.append(total)
    return sum(per_sample) / len(per_sample)


def inputs(seed=0, b=2, c=3, h=4, w=5):
    g = torch.Generator().manual_seed(seed)
    n = min(h, w)
    lat = lambda: torch.randn((b, c, h, w), generator=g, dtype=torch.float64)  # noqa: E731
    spec = lambda: torch.rand((b, c, n), generator=g, dtype=torch.float64) * 5  # noqa: E731
    return dict(y_hat=lat(), y_tilde=lat(), x=lat(), z=lat(), S=spec(), delta_s=spec(), Sx=spec(), Sz=spec())


def test_each_term_equals_hand_computation():
    t = inputs()
    terms = avi_loss(**t)
    assert terms["l1"].item() == pytest.approx(hand_frobenius(t["y_hat"], t["z"]), rel=1e-12)
    assert terms["l2"].item() == pytest.approx(hand_frobenius(t["y_tilde"], t["x"]), rel=1e-12)
    assert terms["l3"].item() == pytest.approx(hand_frobenius(t["S"], t["Sz"]), rel=1e-12)
    assert terms["l4"].item() == pytest.approx(hand_frobenius(t["S"] + t["delta_s"], t["Sx"]), rel=1e-12)


def test_total_is_weighted_sum_with_paper_defaults():
    t = inputs(1)
    terms = avi_loss(**t)
    expected = 3 * terms["l1"] + 10 * terms["l2"] + 10 * terms["l3"] + 10 * terms["l4"]
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-12)
    w = LossWeights(1.0, 0.0, 2.0, 0.5)
    custom = avi_loss(**t, weights=w)
    assert custom["total"].item() == pytest.approx((terms["l1"] + 2 * terms["l3"] + 0.5 * terms["l4"]).item(), rel=1e-12)


def test_zero_when_predictions_are_exact():
    t = inputs(2)
    t.update(y_hat=t["z"], y_tilde=t["x"], S=t["Sz"], delta_s=t["Sx"] - t["Sz"])
    assert avi_loss(**t)["total"].item() == pytest.approx(0.0, abs=1e-20)


def test_bad_input():
    t = inputs(3)
    with pytest.raises(ValueError, match=r"y_hat and x must have the same shape; got \(2, 3, 4, 4\) and \(2, 3, 4, 5\)"):
        avi_loss(**{**t, "y_hat": t["y_hat"][..., :4]})
    with pytest.raises(ValueError, match=r"Sx and S must have the same shape"):
        avi_loss(**{**t, "Sx": t["Sx"][..., :3]})
    with pytest.raises(ValueError, match="spectra must be"):
        avi_loss(**{k: (v[..., :3] if k in ("S", "delta_s", "Sx", "Sz") else v) for k, v in t.items()})
    with pytest.raises(ValueError, match="NaN/Inf"):
        avi_loss(**{**t, "z": t["z"] * float("inf")})
    with pytest.raises(ValueError, match="weights must be a LossWeights"):
        avi_loss(**t, weights=(3, 10, 10, 10))
    with pytest.raises(ValueError, match="weight l2 must be a finite number >= 0; got float -1.0"):
        LossWeights(l2=-1.0)
    with pytest.raises(ValueError, match="the loss weights λ1..λ4 are all 0, so the loss is 0 at every step"):
        LossWeights(0.0, 0.0, 0.0, 0.0)
    assert LossWeights(0.0, 0.0, 0.0, 1e-3).l4 == 1e-3, "one weight above 0 trains"
