"""avi_core.strength: the automatic strength's rule on known agreements."""
import torch

from avi_core.strength import pick_strength, prompt_agreement, reproduction_gaps


def test_the_smallest_positive_rho_the_target_explains_is_picked():
    rhos = [0.0, 0.5, 1.0, 1.25, 2.0]
    assert pick_strength(rhos, [-1.0, -0.2, 0.1, 0.4, 0.9], threshold=0.0) == 2
    assert pick_strength(rhos, [-1.0, -0.2, 0.1, 0.4, 0.9], threshold=0.3) == 3
    assert pick_strength(rhos, [5.0, -0.2, -0.1, 0.0, 0.9], threshold=0.0) == 3, "ρ = 0 is never picked; reaching counts"


def test_the_default_rho_when_the_target_never_explains_the_edit_and_order_does_not_matter():
    rhos = [0.0, 0.5, 1.0, 1.25, 1.5, 2.0]
    assert pick_strength(rhos, [-1.0, -0.9, -0.8, -0.7, -0.6, -0.5], threshold=0.0) == 2, "ρ = 1, not the strongest"
    assert pick_strength([0.0, 0.5, 1.5, 2.0], [-1.0, -0.5, -0.4, -0.3], threshold=0.0) == 1, "of two as near, the smaller"
    assert pick_strength([0.0, 1.5, 2.0], [-1.0, -0.5, -0.4], threshold=0.0, fallback=2.0) == 2
    assert pick_strength([1.5, 0.5, 1.0], [0.3, 0.2, 0.9], threshold=0.0) == 1, "the smallest ρ, wherever it stands in the list"
    assert pick_strength([1.5, 0.5, 1.0], [-0.3, -0.2, -0.9], threshold=0.0) == 2
    assert pick_strength([0.0, -0.5], [-1.0, -0.2], threshold=0.0) == 0, "no ρ above 0: the largest"


def test_agreement_is_the_targets_lead_in_units_of_its_miss_at_rho_0():
    y0 = torch.zeros(3, 4, 2, 2)
    original = torch.stack([torch.zeros(4, 2, 2), torch.ones(4, 2, 2), torch.ones(4, 2, 2)])
    target = torch.stack([torch.ones(4, 2, 2), torch.zeros(4, 2, 2), torch.ones(4, 2, 2)])
    gap_o, gap_t = reproduction_gaps(y0, original, target)
    assert gap_o.tolist() == [0.0, 16.0, 16.0] and gap_t.tolist() == [16.0, 0.0, 16.0]
    assert prompt_agreement(gap_o, gap_t, gap_t[0]).tolist() == [-1.0, 1.0, 0.0], "−1 at ρ = 0 (x itself)"
