"""The trainer: resampled data, convergence, determinism, progress and cancellation."""
import statistics

import pytest
import torch

from avi_core import CapturedPairs, LossWeights, TrainingCancelled, TrainSettings, resample_pairs, samples_per_pair, to_vp, train_phi
from avi_core.conventions import vp_scale

SMALL = dict(hidden=128, samples_per_pair=255, batch_size=64)


def synthetic_pairs(p=1, c=4, h=16, w=16, sigma_x=2.0, sigma_z=0.8, kind="eps", seed=0):
    """Captured pairs as a sampler would give them: shared noise, z's x0 a perturbed copy of x's."""
    g = torch.Generator().manual_seed(seed)
    x0x = torch.randn((p, c, h, w), generator=g)
    x0z = x0x + 0.5 * torch.randn((p, c, h, w), generator=g)
    eps = torch.randn((p, c, h, w), generator=g)
    noisy = lambda x0, s: (1 - s) * x0 + s * eps if kind == "flow" else x0 + s * eps  # noqa: E731
    return CapturedPairs(
        to_vp(noisy(x0x, sigma_x), sigma_x, kind), to_vp(noisy(x0z, sigma_z), sigma_z, kind), x0x, x0z, sigma_x, sigma_z, kind
    )


def window_mean(history, name, start, size=20):
    return statistics.mean(h[name] for h in history[start:start + size])


def test_training_lowers_loss_by_a_large_margin_and_l3_l4_converge():
    result = train_phi(synthetic_pairs(), TrainSettings(epochs=40, **SMALL))
    h = result.history
    assert len(h) == 40 * 4 and h[-1]["step"] == 160 and h[-1]["epoch"] == 40
    assert result.final_losses["total"] < 0.4 * h[0]["total"]
    assert window_mean(h, "l3", 140) < window_mean(h, "l3", 0) / 20
    for name in ("l3", "l4", "total"):
        late, later = window_mean(h, name, 120), window_mean(h, name, 140)
        assert abs(late - later) < 0.1 * later, f"{name} still moving: {late:.2f} -> {later:.2f}"
    assert result.settings.k == 8 and result.samples == 256


def test_same_seed_identical_weights_other_seed_different():
    settings = TrainSettings(epochs=2, **SMALL, seed=7)
    a = train_phi(synthetic_pairs(), settings)
    b = train_phi(synthetic_pairs(), settings)
    c = train_phi(synthetic_pairs(), TrainSettings(epochs=2, **SMALL, seed=8))
    for (name, pa), pb, pc in zip(a.phi.state_dict().items(), b.phi.state_dict().values(), c.phi.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert a.history == b.history
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.phi.state_dict().values(), c.phi.state_dict().values()))


def test_progress_every_step_and_cancel_within_a_step():
    events = []
    train_phi(synthetic_pairs(), TrainSettings(epochs=2, **SMALL), progress=lambda s, t, l: events.append((s, t, l)))
    assert [e[0] for e in events] == list(range(1, 9)) and all(e[1] == 8 for e in events)
    assert set(events[0][2]) == {"step", "epoch", "l1", "l2", "l3", "l4", "total"}

    calls = []

    def stop_after_three():
        calls.append(1)
        return len(calls) > 3

    seen = []
    with pytest.raises(TrainingCancelled, match="stopped at step 3 of 8"):
        train_phi(synthetic_pairs(), TrainSettings(epochs=2, **SMALL), progress=lambda s, t, l: seen.append(s), should_stop=stop_after_three)
    assert seen == [1, 2, 3]


def test_cancel_check_may_raise_its_own_exception():
    class HostInterrupt(Exception):
        pass

    def interrupt():
        raise HostInterrupt()

    with pytest.raises(HostInterrupt):
        train_phi(synthetic_pairs(), TrainSettings(epochs=1, **SMALL), should_stop=interrupt)


def test_samples_per_pair_follows_the_paper():
    assert [samples_per_pair(p) for p in (1, 2, 3, 5, 6, 10)] == [5000, 2500, 1667, 1000, 500, 500]
    with pytest.raises(ValueError, match="pairs must be an integer >= 1; got int 0"):
        samples_per_pair(0)


@pytest.mark.parametrize("kind", ["eps", "v", "flow"])
def test_resampled_pairs_share_their_noise(kind):
    sx, sz = (0.9, 0.4) if kind == "flow" else (3.0, 1.0)
    pairs = synthetic_pairs(p=2, sigma_x=sx, sigma_z=sz, kind=kind)
    x, z = resample_pairs(pairs, 5, torch.Generator().manual_seed(0))
    assert x.shape == z.shape == (12, 4, 16, 16)
    assert torch.equal(x[:2], pairs.x) and torch.equal(z[:2], pairs.z), "the captured pairs come first"
    x0x = pairs.x0_x.repeat(5, 1, 1, 1)
    x0z = pairs.x0_z.repeat(5, 1, 1, 1)
    keep = lambda s: (1 - s) if kind == "flow" else 1.0  # noqa: E731
    eps_x = (x[2:] * vp_scale(sx, kind) - keep(sx) * x0x) / sx
    eps_z = (z[2:] * vp_scale(sz, kind) - keep(sz) * x0z) / sz
    assert torch.allclose(eps_x, eps_z, atol=1e-4)
    assert 0.9 < eps_x.std().item() < 1.1
    assert x.std().item() == pytest.approx(1.0, abs=0.15), "VP latents have about unit variance"


def test_several_pairs_train_together():
    pairs = synthetic_pairs(p=3)
    result = train_phi(pairs, TrainSettings(epochs=1, hidden=32, samples_per_pair=20, batch_size=16))
    assert result.samples == 3 * 21 and len(result.history) == 4


def test_non_square_sixteen_channel_latents_train():
    result = train_phi(synthetic_pairs(c=16, h=8, w=12), TrainSettings(epochs=1, hidden=32, samples_per_pair=10, batch_size=8, k=3))
    assert result.phi.n_singular == 8 and result.phi.in_features == 96 and result.settings.k == 3


@pytest.mark.parametrize(
    "settings, fragment",
    [
        (TrainSettings(k=16), r"1 <= k < N = 16 .*k = 16"),
        (TrainSettings(epochs=0), "epochs must be an integer >= 1"),
        (TrainSettings(batch_size=0), "batch_size must be an integer >= 1"),
        (TrainSettings(lr=-1e-3), "lr must be a finite number > 0"),
        (TrainSettings(rho=1.5), r"rho must be in \[0, 1\]"),
        (TrainSettings(z_vectors="both"), "z_vectors must be one of"),
        (TrainSettings(hidden=0), "hidden must be an integer >= 1"),
        (TrainSettings(samples_per_pair=-1), "samples_per_pair must be an integer >= 0"),
        (TrainSettings(weights=(3, 10, 10, 10)), "weights must be a LossWeights"),
    ],
)
def test_bad_settings(settings, fragment):
    with pytest.raises(ValueError, match=fragment):
        train_phi(synthetic_pairs(), settings)


def test_bad_pairs():
    good = synthetic_pairs()
    with pytest.raises(ValueError, match=r"z and x must have the same shape; got \(1, 4, 8, 8\) and \(1, 4, 16, 16\)"):
        CapturedPairs(good.x, good.z[..., :8, :8], good.x0_x, good.x0_z, 2.0, 0.8)
    with pytest.raises(ValueError, match="x0_z contains 1 NaN/Inf"):
        bad = good.x0_z.clone()
        bad[0, 0, 0, 0] = float("nan")
        CapturedPairs(good.x, good.z, good.x0_x, bad, 2.0, 0.8)
    with pytest.raises(ValueError, match="sigma must be one finite number >= 0; got float -1.0"):
        CapturedPairs(good.x, good.z, good.x0_x, good.x0_z, -1.0, 0.8)
    with pytest.raises(ValueError, match="model kind must be one of 'eps', 'v', 'flow'; got 'edm'"):
        CapturedPairs(good.x, good.z, good.x0_x, good.x0_z, 2.0, 0.8, "edm")
    with pytest.raises(ValueError, match="pairs must be CapturedPairs"):
        train_phi((good.x, good.z))
    with pytest.raises(ValueError, match="weight l1 must be a finite number >= 0"):
        LossWeights(l1=float("nan"))


def test_trains_when_called_under_inference_mode():
    """Hosts such as ComfyUI run nodes under torch.inference_mode(); the trainer still needs autograd."""
    with torch.inference_mode():
        pairs = synthetic_pairs()
        result = train_phi(pairs, TrainSettings(epochs=1, **SMALL))
    assert result.history[-1]["total"] < result.history[0]["total"]


def test_training_set_does_not_depend_on_the_thread_count():
    """The one-off SVD pass runs chunks on parallel threads when torch has several; same numbers either way."""
    from avi_core.trainer import SVD_CHUNK, build_training_set

    settings = TrainSettings(k=5, hidden=8).resolved(16, 1)
    x, z = resample_pairs(synthetic_pairs(), 2 * SVD_CHUNK + 7, torch.Generator().manual_seed(0))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = build_training_set(x, z, settings)
        torch.set_num_threads(3)
        threaded = build_training_set(x, z, settings)
        assert torch.get_num_threads() == 3, "the caller's thread count is restored"
    finally:
        torch.set_num_threads(before)
    for name in ("U_hat", "V_hat", "Sx", "Sz"):
        assert torch.equal(getattr(serial, name), getattr(threaded, name)), name


def test_noiseless_pairs_share_one_row_and_train_the_same_phi():
    """Pairs of x0 predictions (σ = 0) resample to copies of themselves: held once, trained to the same Φ."""
    from avi_core.trainer import TrainSettings as Settings, train_with_autograd, training_set
    g = torch.Generator().manual_seed(3)
    x0x, x0z = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    pairs = CapturedPairs(x0x, x0z, x0x, x0z, 0.0, 0.0, "eps")
    settings = Settings(hidden=32, samples_per_pair=40, batch_size=16, epochs=2, k=1, z_vectors="aligned")
    shared = training_set(pairs, settings.resolved(8, 2), torch.Generator().manual_seed(0), "cpu", share_rows=True)
    assert shared.x.shape[0] == 2 and len(shared) == 2 * 41, "two stored rows stand for 82 samples"
    with torch.enable_grad():
        fast = train_with_autograd(pairs, settings, None, None, None, share_rows=True)
        full = train_with_autograd(pairs, settings, None, None, None, share_rows=False)
    assert fast.samples == full.samples == 82 and len(fast.history) == len(full.history)
    for a, b in zip(fast.phi.parameters(), full.phi.parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    for name, value in full.final_losses.items():
        assert fast.final_losses[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


@pytest.mark.parametrize("shape, rows", [((4, 8, 8), 37), ((3, 5, 5), 21), ((1, 3, 1), 11), ((2, 3, 3), 3)])
def test_replayed_noise_equals_one_randn_call_and_leaves_the_generator_alike(shape, rows):
    """Pieces of a draw (any row size, a tail under 16 values too) give the values and generator state of one call."""
    from avi_core.training_data import record_noise
    whole_gen, piece_gen = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    whole = torch.randn((rows, *shape), generator=whole_gen, dtype=torch.float32)
    noise = record_noise(rows, shape, piece_gen)
    assert torch.equal(torch.rand(4, generator=whole_gen), torch.rand(4, generator=piece_gen)), "the batch order after it"
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(1))
    assert torch.equal(noise.replay(order), whole[order])
    assert torch.equal(noise.replay(torch.tensor([rows - 1, 0, rows - 1])), whole[[rows - 1, 0, rows - 1]])


@pytest.mark.parametrize("kind, p", [("eps", 1), ("flow", 3)])
def test_streamed_training_set_trains_the_same_phi_as_the_held_one(kind, p):
    """hold_bytes = 0 streams the resampled pairs (drawn again, decomposed per batch): the same Φ to round-off."""
    from avi_core.trainer import StreamedTrainingSet, TrainSettings as Settings, train_with_autograd, training_set
    g = torch.Generator().manual_seed(4)
    x, z, x0x, x0z = (torch.randn(p, 2, 8, 6, generator=g) for _ in range(4))
    sigma = 0.5 if kind == "flow" else 3.0
    pairs = CapturedPairs(x, z, x0x, x0z, sigma, sigma * 0.6, kind)
    settings = Settings(hidden=32, samples_per_pair=30, batch_size=16, epochs=2)
    streamed = training_set(pairs, settings.resolved(6, p), torch.Generator().manual_seed(0), "cpu", True, hold_bytes=0)
    assert isinstance(streamed, StreamedTrainingSet) and len(streamed) == p * 31
    held = training_set(pairs, settings.resolved(6, p), torch.Generator().manual_seed(0), "cpu", True)
    rows = torch.tensor([len(held) - 1, 0, 5, p, 2 * p + 1])
    for name in ("x", "z", "U_hat", "V_hat", "Sx", "Sz"):
        assert torch.allclose(getattr(streamed.batch(rows)[0], name), getattr(held.rows(rows), name), atol=1e-6), name
    with torch.enable_grad():
        a = train_with_autograd(pairs, settings, None, None, None, hold_bytes=0)
        b = train_with_autograd(pairs, settings, None, None, None)
    assert a.samples == b.samples == p * 31 and [h["total"] for h in a.history] == pytest.approx([h["total"] for h in b.history], rel=1e-5)
    for u, v in zip(a.phi.parameters(), b.phi.parameters()):
        assert torch.allclose(u, v, rtol=1e-4, atol=1e-6)
    assert a.final_losses == pytest.approx(b.final_losses, rel=1e-5)


def test_the_paper_defaults_stream_large_latents_and_hold_small_ones():
    from avi_core.trainer import HOLD_BYTES, held_bytes
    one = lambda c, n: CapturedPairs(*(torch.zeros(1, c, n, n) for _ in range(4)), 3.0, 1.0)  # noqa: E731
    assert held_bytes(one(4, 16), 5000) < HOLD_BYTES < held_bytes(one(4, 64), 5000)
    assert held_bytes(one(4, 128), 5000) == 4 * 5001 * 4 * 4 * 128 * 128, "x, z, Û, V̂ at 4×128×128: 5.2 GB"
