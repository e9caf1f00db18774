"""The paper's findings as nodes: a singular-value sweep in one batch, a whole trajectory in one run, distances and mobility."""
import time

import pytest
import torch

from avi_core.trajectory import consecutive_distances, mobility
from devkit.comfy_host import ExecutionFailed
from tests.host.avi_prompts import base_nodes, capture, inject, ksampler

RUN = dict(steps=20, sampler="ddim", scheduler="ddim_uniform")


def trajectory_node(keep="all", batch_from="empty", **run) -> dict:
    return {"class_type": "AVICaptureTrajectory", "inputs": {
        "model": ["ckpt", 0], "positive": ["original", 0], "negative": ["negative", 0], "latent_image": [batch_from, 0],
        "seed": 1, "cfg": 7.5, "sampler_name": run.get("sampler", "ddim"), "scheduler": run.get("scheduler", "ddim_uniform"),
        "steps": run.get("steps", 20), "keep_steps": keep}}


def test_a_trajectory_is_one_run_that_equals_the_captures_at_each_step(host, tiny_ckpt):
    p = base_nodes(tiny_ckpt["eps"], "a photo of a castle", "unused", 64, batch=2)
    p["trajectory"] = trajectory_node("0-19/3")
    p["at_9"] = capture("original", 0.8, step=9, **RUN)
    p["plain"] = ksampler(**RUN)
    result = host.run(p, outputs=["trajectory", "at_9", "plain"])
    trajectory, finished, labels = (result.output("trajectory", i) for i in range(3))
    assert trajectory.steps == (0, 3, 6, 9, 12, 15, 18) and trajectory.x.shape == (7, 2, 4, 8, 8)
    assert labels.startswith("step 0 (t = 951), step 3 (t = 801)")  # 20 ddim_uniform steps
    info = result.output("at_9")["avi_capture"]
    k = trajectory.index_of(9)
    assert torch.allclose(trajectory.x0[k], info.x0, atol=1e-5), "the trajectory keeps what Capture at that step keeps"
    assert (finished["samples"] - result.output("plain")["samples"]).abs().max() < 1e-4, "the run is a plain KSampler run"
    with pytest.raises(ValueError, match="step 10 was not kept.*0, 3, 6, 9"):
        trajectory.index_of(10)


@pytest.mark.parametrize("keep, message", [("0-25", "does not fit 20 sampling steps"), ("every", "'all' or step numbers")])
def test_bad_keep_steps_are_named(host, tiny_ckpt, keep, message):
    p = base_nodes(tiny_ckpt["eps"], "a castle", "unused", 64)
    p["trajectory"] = trajectory_node(keep)
    with pytest.raises(ExecutionFailed, match=message):
        host.run(p, outputs=["trajectory"])


def test_sweep_gives_one_latent_per_index_and_factor_and_factor_one_is_the_capture(host, tiny_ckpt):
    p = base_nodes(tiny_ckpt["eps"], "a photo of a castle", "unused", 64)
    p["capture"] = capture("original", 0.8, **RUN)
    p["svd"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture", 0], "space": "latent"}}
    p["sweep"] = {"class_type": "AVISingularValueSweep", "inputs": {"svd": ["svd", 0], "indices": "0, 2", "factors": "0, 1, 2",
                                                                    "channel": -1}}
    p["finish"] = inject(["sweep", 0])
    p["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["finish", 0], "vae": ["ckpt", 2]}}
    p["grid"] = {"class_type": "AVIImageGrid", "inputs": {"images": ["decode", 0], "labels": ["sweep", 1], "columns": 0, "padding": 4}}
    result = host.run(p, outputs=["sweep", "finish", "grid", "capture"])
    latents, labels = result.output("sweep", 0)["samples"], result.output("sweep", 1)
    assert latents.shape[0] == 6 and labels == "σ × 0, σ × 1, σ × 2"
    captured = result.output("capture")["samples"]
    assert torch.allclose(latents[2], captured[0], atol=1e-4) and torch.allclose(latents[3], captured[0], atol=1e-4), "factor 1"
    assert not torch.allclose(latents[0], captured[0], atol=1e-3) and not torch.allclose(latents[4], latents[5], atol=1e-3)
    grid = result.output("grid")
    assert grid.shape[2] == 3 * 64 + 2 * 4 and grid.shape[1] > 2 * 64, "three columns of factors, two rows of indices"
    p["sweep"]["inputs"]["indices"] = "0, 8"
    with pytest.raises(ExecutionFailed, match=r"indices must hold whole numbers from 0 to 7 \(N = 8 singular values\); got '8'"):
        host.run(p, outputs=["sweep"])


def test_distance_and_mobility_nodes_match_avi_core_and_are_fast(host, tiny_ckpt):
    p = base_nodes(tiny_ckpt["eps"], "a photo of a castle", "unused", 64, batch=3)
    p["trajectory"] = trajectory_node("all")
    p["distance"] = {"class_type": "AVITrajectoryDistance", "inputs": {"trajectory": ["trajectory", 0], "p": 4, "side": "left",
                                                                       "what": "latent"}}
    p["mobility"] = {"class_type": "AVIMobilityMap", "inputs": {"trajectory": ["trajectory", 0], "step_a": 3, "step_b": 10,
                                                                "channel": 1, "top": 8, "side": "left"}}
    result = host.run(p, outputs=["trajectory", "distance", "mobility"])
    trajectory = result.output("trajectory")
    expected = consecutive_distances(trajectory.vp(), 4, "left")
    assert result.output("distance", 0) == pytest.approx(float(expected.mean()), rel=1e-5)
    table = result.output("distance", 2).splitlines()
    assert len(table) == 1 + 19 and table[1].startswith("0 → 1 (t = 951)")
    assert result.output("distance", 1).shape[-1] == 3 and result.output("mobility", 0).shape[-1] == 3
    _, rank = mobility(trajectory.vp()[3, :, 1:2], trajectory.vp()[10, :, 1:2])
    lines = result.output("mobility", 1).splitlines()[1:]
    assert [int(line.split(" → ")[1]) for line in lines] == rank[0, 0, :8].tolist()


def test_a_50_step_trajectory_of_8_seeds_at_64x64_fits_and_is_analysed_in_seconds():
    """Issue bounds: 4×64×64, 8 seeds, 50 steps in under 1 GB; distance and mobility in under 10 s on 2 cores."""
    x = torch.randn(50, 8, 4, 64, 64)
    x0 = torch.randn(50, 8, 4, 64, 64)
    assert (x.numel() + x0.numel()) * 4 < 2**30 / 8, "x and x0 of the whole run: 52 MB"
    start = time.perf_counter()
    d = consecutive_distances(x, 4, "left")
    overlap, rank = mobility(x[9], x[24])
    elapsed = time.perf_counter() - start
    assert d.shape == (49, 8, 4) and overlap.shape == (8, 4, 64, 64) and rank.shape == (8, 4, 64)
    assert elapsed < 10, f"{elapsed:.1f} s"
