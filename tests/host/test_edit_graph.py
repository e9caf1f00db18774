"""The full edit graph: capture ×2, SVD ×2, train, integrate, inject, decode."""
import time

import pytest
import torch

from tests.host.avi_prompts import SMALL_TRAINING, base_nodes, capture, edit_prompt


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_edit_graph_runs_and_identity_reproduces_the_unedited_image(host, tiny_ckpt, prediction):
    start = time.perf_counter()
    result = host.run(edit_prompt(tiny_ckpt[prediction], rho=0.0, s_inf="Sx"))
    seconds = time.perf_counter() - start
    edited, unedited = result.output("decode"), result.output("unedited_decode")
    assert edited.shape == unedited.shape == (1, 128, 128, 3)
    assert (edited - unedited).abs().max().item() < 1e-4, "ρ = 0 with S_inf = Sx is the identity"
    plot = result.output("train", 1)
    assert plot.ndim == 4 and plot.shape[-1] == 3 and plot.std().item() > 0.01, "the loss curves image is a real plot"
    print(f"\nfull tiny edit graph ({prediction}, 20 ddim steps, 128 px, small training): {seconds:.2f} s")


def test_positive_rho_changes_the_image_and_a_rho_list_gives_a_batch(host, tiny_ckpt):
    result = host.run(edit_prompt(tiny_ckpt["eps"], rho_list="0, 0.5, 1", s_inf="Sx"))
    edited, unedited = result.output("decode"), result.output("unedited_decode")
    assert edited.shape == (3, 128, 128, 3)
    assert (edited[0] - unedited[0]).abs().max().item() < 1e-4, "the ρ = 0 member is the identity"
    diff_half = (edited[1] - unedited[0]).abs().mean().item()
    diff_full = (edited[2] - unedited[0]).abs().mean().item()
    assert diff_full > 1e-3 and diff_half > 1e-4, (diff_half, diff_full)
    y = result.output("integrate")["samples"]
    assert y.shape == (3, 4, 16, 16)
    assert result.output("integrate", 1) == "ρ = 0, ρ = 0.5, ρ = 1"
    single = host.run(edit_prompt(tiny_ckpt["eps"], rho=1.0, s_inf="S"))
    assert single.output("decode").shape == (1, 128, 128, 3)
    assert (single.output("decode") - single.output("unedited_decode")).abs().mean().item() > 1e-3


def test_batch_of_seeds_non_square_latent(host, tiny_ckpt):
    training = dict(SMALL_TRAINING, samples_per_pair=-1, epochs=1, batch_size=512)
    result = host.run(edit_prompt(tiny_ckpt["v"], size=64, width=96, batch=2, rho_list="0.25 1", training=training))
    assert result.output("integrate")["samples"].shape == (4, 4, 8, 12)
    assert result.output("decode").shape == (4, 64, 96, 3)
    phi = result.output("train")
    assert phi.info.training["pairs"] == 2 and phi.info.training["samples"] == 2 * (2500 + 1), "paper rule: 5000/P per pair"


def test_svd_decompose_refuses_a_latent_without_capture(host, tiny_ckpt):
    from devkit.comfy_host import ExecutionFailed

    p = base_nodes(tiny_ckpt["eps"], "a", "b", 64)
    p["svd"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["empty", 0]}}
    with pytest.raises(ExecutionFailed, match="no AVI capture metadata.*Use Capture Latent at Step.*or connect the model and give its σ explicitly"):
        host.run(p, outputs=["svd"])


def test_svd_decompose_accepts_an_explicit_sigma_and_refuses_changed_captures(host, tiny_ckpt):
    from devkit.comfy_host import ExecutionFailed

    p = base_nodes(tiny_ckpt["eps"], "a", "b", 64)
    p["capture"] = capture("original", 0.8, steps=10)
    p["svd_explicit"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["empty", 0], "model": ["ckpt", 0], "sigma": 2.0,
                                                                    "space": "latent"}}
    p["svd_captured"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture", 0], "space": "latent"}}
    p["svd_x0"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture", 0]}}
    result = host.run(p, outputs=["svd_explicit", "svd_captured", "svd_x0"])
    svd = result.output("svd_explicit")
    assert svd.info.sigma == 2.0 and svd.info.step == -1 and svd.latent.shape == (1, 4, 8, 8)
    captured = result.output("svd_captured")
    info = captured.info
    expected = result.output("capture")["samples"] * 0.18215 / (1 + info.sigma ** 2) ** 0.5
    assert torch.allclose(captured.latent, expected, atol=1e-5), "VP latent = process_in(raw) / sqrt(1 + σ²)"
    assert torch.allclose(captured.svd.U @ torch.diag_embed(captured.svd.S) @ captured.svd.V, captured.latent, atol=1e-4)
    x0 = result.output("svd_x0")  # the default space: the model's x0 prediction, with the latent kept to carry an edit back
    assert x0.space == "x0" and torch.equal(x0.latent, info.x0) and not torch.allclose(x0.latent, captured.latent, atol=1e-2)
    assert torch.allclose(x0.x_model, result.output("capture")["samples"] * 0.18215, atol=1e-5)
    p["svd_explicit"]["inputs"].pop("space")
    with pytest.raises(ExecutionFailed, match="space 'x0' needs the model's x0 prediction.*set space to 'latent'"):
        host.run(p, outputs=["svd_explicit"])
    p["changed"] = {"class_type": "LatentMultiply", "inputs": {"samples": ["capture", 0], "multiplier": 1.5}}
    p["svd_changed"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["changed", 0]}}
    with pytest.raises(ExecutionFailed, match="was changed after it was captured"):
        host.run(p, outputs=["svd_changed"])


def test_train_refuses_pairs_with_different_seeds(host, tiny_ckpt):
    from devkit.comfy_host import ExecutionFailed

    p = edit_prompt(tiny_ckpt["eps"])
    p["capture_z"]["inputs"]["seed"] = 99
    with pytest.raises(ExecutionFailed, match="same seed.*got seeds 1 and 99"):
        host.run(p, outputs=["train"])


def test_explore_nodes(host, tiny_ckpt):
    p = edit_prompt(tiny_ckpt["eps"], space="latent")  # the paper's probe scales σ_i of the noisy latent
    p["scale"] = {"class_type": "AVIScaleSingularValue", "inputs": {"svd": ["svd_x", 0], "index": 0, "factor": 1.0, "channel": -1}}
    p["scaled_finish"] = {"class_type": "AVIInjectLatent", "inputs": {**p["unedited_inject"]["inputs"], "latent": ["scale", 0]}}
    p["scale_half"] = {"class_type": "AVIScaleSingularValue", "inputs": {"svd": ["svd_x", 0], "index": 0, "factor": 0.5, "channel": 2}}
    p["distance"] = {"class_type": "AVISubspaceDistance", "inputs": {"a": ["svd_x", 0], "b": ["svd_z", 0], "p": 4, "side": "left"}}
    p["distance_self"] = {"class_type": "AVISubspaceDistance", "inputs": {"a": ["svd_x", 0], "b": ["svd_x", 0], "p": 4, "side": "right"}}
    p["svd_x0"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture_x", 0], "space": "x0"}}
    p["scale_x0"] = {"class_type": "AVIScaleSingularValue", "inputs": {"svd": ["svd_x0", 0], "index": 0, "factor": 1.0, "channel": -1}}
    p["scale_x0_half"] = {"class_type": "AVIScaleSingularValue", "inputs": {"svd": ["svd_x0", 0], "index": 0, "factor": 0.5, "channel": -1}}
    result = host.run(p, outputs=["scaled_finish", "unedited_inject", "scale_half", "distance", "distance_self", "scale_x0",
                                  "scale_x0_half", "capture_x"])
    same = result.output("scaled_finish")["samples"] - result.output("unedited_inject")["samples"]
    assert same.abs().max().item() < 1e-3, "factor 1 changes nothing"
    x0_space = result.output("svd_x0")
    captured = result.output("capture_x")["samples"]
    assert (result.output("scale_x0")["samples"] - captured).abs().max().item() < 1e-4, "in x0 space too"
    moved = (result.output("scale_x0_half")["samples"] - captured) * 0.18215  # model space: the x0 change, noise kept
    s0 = x0_space.svd
    expected_change = -0.5 * s0.S[..., :1].unsqueeze(-1) * s0.U[..., :, :1] @ s0.V[..., :1, :]
    assert torch.allclose(moved, expected_change, atol=1e-4), "halving σ_0 of x0 moves the latent by −½σ_0 u_0 v_0ᵀ"
    svd_x = result.output("svd_x")
    half = result.output("scale_half")["samples"] * 0.18215 / (1 + svd_x.info.sigma ** 2) ** 0.5
    expected = svd_x.svd.S.clone()
    expected[0, 2, 0] *= 0.5
    got = torch.linalg.svdvals(half)
    assert torch.allclose(got, expected.sort(dim=-1, descending=True).values, rtol=1e-4, atol=1e-4)
    d = result.output("distance")
    assert 0 < d <= 2 * 3.1416 / 2 + 1e-6
    assert result.output("distance_self") < 1e-6
    assert result.output("distance", 1).shape[-1] == 3


def test_sweep_grid_lays_out_one_column_per_rho(host, tiny_ckpt):
    p = edit_prompt(tiny_ckpt["eps"], size=64, batch=2, rho_list="0, 0.5, 1")
    p["grid"] = {"class_type": "AVIImageGrid", "inputs": {"images": ["decode", 0], "labels": ["integrate", 1], "columns": 0, "padding": 4}}
    result = host.run(p, outputs=["grid", "decode"])
    grid, images = result.output("grid"), result.output("decode")
    assert images.shape == (6, 64, 64, 3)
    caption = 16
    assert grid.shape == (1, caption + 2 * 64 + 4, 3 * 64 + 2 * 4, 3), "2 rows (seeds) × 3 columns (ρ) with a caption strip"
    # the batch is ρ-major ([ρ0 seed0, ρ0 seed1, ρ0.5 seed0, ...]): column = ρ, row = seed
    assert torch.equal(grid[0, caption:caption + 64, 68:132], images[2]), "row 0, column 1: ρ = 0.5, first seed"
    assert torch.equal(grid[0, caption + 68:caption + 132, 0:64], images[1]), "row 1, column 0: ρ = 0, second seed"
    assert torch.equal(grid[0, caption + 68:caption + 132, 136:200], images[5])
    assert grid[0, :caption].min().item() < 0.5, "captions are drawn"


def test_integrate_refuses_a_phi_of_the_other_space_and_rho_zero_returns_x_in_both(host, tiny_ckpt):
    from devkit.comfy_host import ExecutionFailed

    for space in ("latent", "x0"):
        p = edit_prompt(tiny_ckpt["eps"], size=64, space=space, rho=0.0, s_inf="Sx→S" if space == "x0" else "Sx")
        result = host.run(p, outputs=["inject", "unedited_inject"])
        same = result.output("inject")["samples"] - result.output("unedited_inject")["samples"]
        assert same.abs().max().item() < 1e-3, f"ρ = 0 finishes to the original image ({space})"
    p = edit_prompt(tiny_ckpt["eps"], size=64, space="latent")
    p["svd_x0"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture_x", 0], "space": "x0"}}
    p["svd_z0"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture_z", 0], "space": "x0"}}
    p["integrate"]["inputs"].update(x=["svd_x0", 0], z=["svd_z0", 0])
    with pytest.raises(ExecutionFailed, match="trained on SVDs of the 'latent' space; got SVDs of the 'x0' space"):
        host.run(p, outputs=["inject"])
    p["integrate"]["inputs"].update(z=["svd_z", 0])
    with pytest.raises(ExecutionFailed, match="x and z must be decomposed in the same space"):
        host.run(p, outputs=["inject"])


def test_integrate_without_phi_moves_towards_zs_own_spectrum(host, tiny_ckpt):
    from devkit.comfy_host import ExecutionFailed

    p = edit_prompt(tiny_ckpt["eps"], size=64, tx=0.6, rho_list="0, 1", s_inf="Sx→Sz")
    for node in ("train", "loss_plot"):
        del p[node]
    del p["integrate"]["inputs"]["phi"]
    result = host.run(p, outputs=["inject", "unedited_inject"])
    edited, unedited = result.output("inject")["samples"], result.output("unedited_inject")["samples"]
    assert (edited[0] - unedited[0]).abs().max().item() < 1e-3, "ρ = 0 finishes to the original image"
    assert (edited[1] - unedited[0]).abs().mean().item() > 1e-3, "ρ = 1 edits, with nothing trained"
    p["integrate"]["inputs"]["s_inf"] = "Sx→S"
    with pytest.raises(ExecutionFailed, match="S_inf 'Sx→S' uses Φ's predicted spectrum: give a Φ"):
        host.run(p, outputs=["inject"])



def test_z_on_a_coarser_run_trains_and_edits_and_a_phi_of_the_full_run_accepts_it(host, tiny_ckpt):
    p = edit_prompt(tiny_ckpt["eps"], size=64, tx=0.6, space="x0", s_inf="Sx→S",
                    training=dict(SMALL_TRAINING, k=1, z_vectors="aligned"))
    # a second z on the full 20-step run and a Φ trained on it, beside the edit's own Φ
    p["capture_z_full"] = dict(p["capture_z"], inputs=dict(p["capture_z"]["inputs"]))
    p["svd_z_full"] = dict(p["svd_z"], inputs=dict(p["svd_z"]["inputs"], latent=["capture_z_full", 0]))
    p["train_full"] = dict(p["train"], inputs=dict(p["train"]["inputs"], z=["svd_z_full", 0]))
    p["capture_z"]["inputs"]["steps"] = 10  # ddim_uniform: 10 steps reach t = 501 at step 4, 20 steps at step 9
    result = host.run(p, outputs=["train", "svd_z", "svd_z_full", "inject", "unedited_inject"])
    zc, zf = result.output("svd_z").info, result.output("svd_z_full").info
    assert (zc.step, zc.steps, zf.step, zf.steps) == (4, 10, 9, 20) and zc.timestep == zf.timestep
    assert result.output("train").info.timestep_z == zc.timestep
    edited, unedited = result.output("inject")["samples"], result.output("unedited_inject")["samples"]
    assert (edited - unedited).abs().mean().item() > 1e-3, "the edit with z of 10 steps changes the image"
    p["integrate"]["inputs"]["phi"] = ["train_full", 0]
    reused = host.run(p, outputs=["inject"])
    assert reused.output("inject")["samples"].shape == edited.shape, "a Φ trained on the 20-step z integrates the 10-step z"
