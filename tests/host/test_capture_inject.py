"""Capture Latent at Step and Inject Latent against a plain KSampler and the stock KSamplerAdvanced split."""
import pytest
import torch

from tests.host.avi_prompts import base_nodes, capture, capture_inject_prompt, inject, ksampler_advanced


def samples(result, node, slot=0):
    return result.output(node, slot)["samples"]


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("sampler, scheduler, expected_step", [("euler", "normal", 4), ("ddim", "ddim_uniform", 3)])
def test_capture_then_inject_equals_plain_run_and_stock_split(host, tiny_ckpt, prediction, sampler, scheduler, expected_step):
    run = dict(seed=3, steps=20, sampler=sampler, scheduler=scheduler)
    p = capture_inject_prompt(tiny_ckpt[prediction], **run)
    p["adv_end"] = ksampler_advanced(["empty", 0], start=0, end=["capture", 1], add_noise="enable", leftover="enable", **run)
    p["adv_continue"] = ksampler_advanced(["adv_end", 0], start=["capture", 1], end=10000, add_noise="disable", leftover="disable", **run)
    p["stock_from_capture"] = ksampler_advanced(["capture", 0], start=["capture", 1], end=10000, add_noise="disable", leftover="disable", **run)
    result = host.run(p, outputs=list(p))
    plain = samples(result, "plain")
    step = result.output("capture", 1)
    # ddim_uniform puts step 3 at t = 801; "normal" spaces σ linearly in t from 999, so step 4 (t ≈ 789) is nearest 0.8·T
    assert step == expected_step
    assert (samples(result, "inject") - plain).abs().max().item() < 1e-4
    assert (samples(result, "adv_continue") - plain).abs().max().item() < 1e-4
    assert (samples(result, "stock_from_capture") - samples(result, "inject")).abs().max().item() < 1e-5
    assert (samples(result, "capture") - samples(result, "adv_end")).abs().max().item() < 1e-5, \
        "the captured latent is what KSamplerAdvanced(end_at_step, leftover noise) returns"
    assert plain.abs().max().item() > 0.1 and torch.isfinite(plain).all()


def test_timestep_fraction_maps_to_the_reported_step(host, tiny_ckpt):
    p = base_nodes(tiny_ckpt["eps"], "a photo of a castle", "a photo of a dilapidated castle", 64)
    run = dict(seed=1, steps=50, sampler="ddim", scheduler="ddim_uniform")
    p["at_08"] = capture("original", 0.8, **run)
    p["at_05"] = capture("target", 0.5, **run)
    p["explicit"] = capture("original", 0.8, step=12, **run)
    result = host.run(p, outputs=["at_08", "at_05", "explicit"])
    assert result.output("at_08", 1) == 9 and result.output("at_05", 1) == 24 and result.output("explicit", 1) == 12
    texts = {d["node_id"]: d["text"] for d in result.events("progress_text")}
    assert "step 9 of 50 (t = 801 ≈ 0.80·T" in texts["at_08"]
    assert "step 24 of 50 (t = 501 ≈ 0.50·T" in texts["at_05"]
    assert "step 12 of 50 (t = 741 ≈ 0.74·T," in texts["explicit"]
    info = result.output("at_08")["avi_capture"]
    assert info.step == 9 and info.steps == 50 and len(info.sigmas) == 51
    assert info.model_kind == "eps" and info.latent_format == "SD15"
    assert torch.allclose(info.latent_scale, torch.full((4,), 0.18215))
    assert info.x0.shape == (1, 4, 8, 8)


def test_x0_is_the_samplers_prediction_at_the_captured_step(host, tiny_ckpt):
    """Euler: x_{s+1} = x_s + (x_s - x0_s)/σ_s · (σ_{s+1} - σ_s), with x0_s the captured prediction."""
    p = base_nodes(tiny_ckpt["eps"], "a photo of a castle", "unused", 64)
    run = dict(seed=2, steps=20, sampler="euler", scheduler="normal")
    p["s"] = capture("original", 0.0, step=6, **run)
    p["s_next"] = capture("original", 0.0, step=7, **run)
    result = host.run(p, outputs=["s", "s_next"])
    info = result.output("s")["avi_capture"]
    x_s = samples(result, "s") * 0.18215
    x_next = samples(result, "s_next") * 0.18215
    sig, sig_next = info.sigmas[6], info.sigmas[7]
    predicted = x_s + (x_s - info.x0) / sig * (sig_next - sig)
    assert (predicted - x_next).abs().max().item() < 1e-4


def test_inject_refuses_mismatched_settings_and_plain_latents(host, tiny_ckpt):
    from devkit.comfy_host import ExecutionFailed

    p = base_nodes(tiny_ckpt["eps"], "a photo of a castle", "unused", 64)
    p["capture"] = capture("original", 0.8, steps=10)
    p["bad_sampler"] = inject(["capture", 0], sampler="euler")
    with pytest.raises(ExecutionFailed, match="captured with sampler 'ddim' but Inject Latent is set to 'euler'"):
        host.run(p, outputs=["bad_sampler"])
    del p["bad_sampler"]
    p["bad_scheduler"] = inject(["capture", 0], scheduler="karras")
    with pytest.raises(ExecutionFailed, match="captured with scheduler 'ddim_uniform'"):
        host.run(p, outputs=["bad_scheduler"])
    del p["bad_scheduler"]
    p["plain_latent"] = inject(["empty", 0])
    with pytest.raises(ExecutionFailed, match="no AVI capture metadata.*Capture Latent at Step"):
        host.run(p, outputs=["plain_latent"])
    del p["plain_latent"]
    p["ckpt_v"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_ckpt["v"]}}
    p["other_model"] = {**inject(["capture", 0]), "inputs": {**inject(["capture", 0])["inputs"], "model": ["ckpt_v", 0]}}
    with pytest.raises(ExecutionFailed, match="captured from a eps model; this model is v"):
        host.run(p, outputs=["other_model"])


def test_capture_rejects_out_of_range_step(host, tiny_ckpt):
    from devkit.comfy_host import ExecutionFailed

    p = base_nodes(tiny_ckpt["eps"], "a photo of a castle", "unused", 64)
    p["capture"] = capture("original", 0.8, steps=10, step=10)
    with pytest.raises(ExecutionFailed, match=r"step must be below the 10 sampling steps \(0..9\).*got 10"):
        host.run(p, outputs=["capture"])


def stock_advanced(latent, positive, start, end, last, run):
    """KSamplerAdvanced continuing a latent (no new noise) from step start to end with the given prompt."""
    node = ksampler_advanced(latent, start=start, end=end, add_noise="disable", leftover="disable" if last else "enable", **run)
    node["inputs"]["positive"] = [positive, 0]
    return node


def test_inject_with_a_target_equals_the_stock_prompt_switch(host, tiny_ckpt):
    run = dict(seed=5, steps=20, sampler="ddim", scheduler="ddim_uniform")
    p = base_nodes(tiny_ckpt["eps"], "a photo of a castle", "a photo of a red castle", 128)
    p["capture"] = capture("original", 0.6, **run)
    p["all_target"] = inject(["capture", 0], target_steps=-1)
    p["five_target"] = inject(["capture", 0], target_steps=5)
    p["no_target"] = inject(["capture", 0], target_steps=0)
    p["plain"] = inject(["capture", 0])
    p["stock_all"] = stock_advanced(["capture", 0], "target", ["capture", 1], 10000, True, run)
    p["stock_a"] = stock_advanced(["capture", 0], "target", ["capture", 1], 12, False, run)
    p["stock_b"] = stock_advanced(["stock_a", 0], "original", 12, 10000, True, run)
    result = host.run(p, outputs=list(p))
    assert result.output("capture", 1) == 7, "0.6·T is step 7 of 20 ddim_uniform steps (t = 601)"
    close = lambda a, b: (samples(result, a) - samples(result, b)).abs().max().item() < 1e-5  # noqa: E731
    assert close("all_target", "stock_all") and close("five_target", "stock_b") and close("no_target", "plain")
    assert not close("all_target", "plain") and not close("five_target", "all_target")


@pytest.mark.parametrize("sampling, name", [("x0", "X0"), ("img_to_img", "IMG_TO_IMG")])
def test_models_that_predict_x0_are_refused_by_their_sampling_class(host, tiny_ckpt, sampling, name):
    """Stock ModelSamplingDiscrete turns the model into an x0 / image-to-image predictor (subclasses of EPS): refused by name."""
    from devkit.comfy_host import ExecutionFailed
    p = base_nodes(tiny_ckpt["eps"], "a castle", "unused", 64)
    p["sampling"] = {"class_type": "ModelSamplingDiscrete", "inputs": {"model": ["ckpt", 0], "sampling": sampling, "zsnr": False}}
    p["capture"] = capture("original", 0.8, steps=4)
    p["capture"]["inputs"]["model"] = ["sampling", 0]
    with pytest.raises(ExecutionFailed, match=f"eps-, v-prediction and flow models; this model samples as .*{name}"):
        host.run(p, outputs=["capture"])


def test_flow_models_are_classified_as_flow_unless_their_noise_has_another_scale(host, tiny_ckpt):
    """Stock ModelSamplingSD3 makes a CONST (flow) model; newer ComfyUI's CONST reads noise_scale, which AVI refuses ≠ 1."""
    import sys

    model_info = next(m for name, m in sys.modules.items() if name.endswith("nodes.model_info") and hasattr(m, "model_kind"))
    p = base_nodes(tiny_ckpt["eps"], "a castle", "unused", 64)
    p["sampling"] = {"class_type": "ModelSamplingSD3", "inputs": {"model": ["ckpt", 0], "shift": 3.0}}
    flow = host.run(p, outputs=["sampling"]).output("sampling", 0)
    assert model_info.model_kind(flow) == "flow"
    scaled = flow.clone()
    sampling = type(flow.get_model_object("model_sampling"))(flow.model.model_config)
    sampling.noise_scale = 0.5
    scaled.add_object_patch("model_sampling", sampling)
    with pytest.raises(ValueError, match="noise has unit scale; this model samples with noise_scale 0.5"):
        model_info.model_kind(scaled)


def test_a_capture_continued_from_a_capture_is_the_stock_prompt_switch_at_its_step(host, tiny_ckpt):
    """z branched off x: the target prompt from x's step to z's, no new noise; as KSamplerAdvanced from x with leftover noise."""
    run = dict(seed=5, steps=20, sampler="ddim", scheduler="ddim_uniform")
    p = base_nodes(tiny_ckpt["eps"], "a photo of a castle", "a photo of a red castle", 128)
    p["x"] = capture("original", 0.6, **run)
    p["z_branch"] = capture("target", 0.5, **dict(run, seed=999), start=("x", 0))
    p["z_scratch"] = capture("target", 0.5, **run)
    p["z_next"] = capture("target", 0.0, step=10, **run, start=("x", 0))
    p["stock"] = stock_advanced(["x", 0], "target", ["x", 1], ["z_branch", 1], False, run)
    result = host.run(p, outputs=list(p))
    assert (result.output("x", 1), result.output("z_branch", 1)) == (7, 9), "0.6·T and 0.5·T are steps 7 and 9 of 20"
    assert (samples(result, "z_branch") - samples(result, "stock")).abs().max().item() < 1e-5
    assert (samples(result, "z_branch") - samples(result, "z_scratch")).abs().max().item() > 1e-3, "a branch is not z's own run"
    info = result.output("z_branch")["avi_capture"]
    assert info.seed == 5 and info.step == 9 and info.x0.shape == (1, 4, 16, 16), "the seed is x's: the node's own is unused"
    texts = {d["node_id"]: d["text"] for d in result.events("progress_text")}
    assert "continued from the capture at step 7 (its seed 5" in texts["z_branch"]
    # x0 at a later step of the branch is what the sampler predicts there: step 10 follows from step 9's state
    sig, sig_next = info.sigmas[9], info.sigmas[10]
    x9, x10 = samples(result, "z_branch") * 0.18215, samples(result, "z_next") * 0.18215
    assert ((x9 + (x9 - info.x0) / sig * (sig_next - sig)) - x10).abs().max().item() < 1e-4


def test_a_continued_capture_refuses_another_schedule_and_an_earlier_step(host, tiny_ckpt):
    from devkit.comfy_host import ExecutionFailed

    run = dict(seed=5, steps=20, sampler="ddim", scheduler="ddim_uniform")
    p = base_nodes(tiny_ckpt["eps"], "a photo of a castle", "a photo of a red castle", 64)
    p["x"] = capture("original", 0.6, **run)
    for name, change, message in (("steps", dict(steps=30), "steps is set to 30: set it to 20"),
                                  ("sampler", dict(sampler="euler"), "sampler_name is set to 'euler': set it to 'ddim'"),
                                  ("earlier", dict(), "a capture continued from it is taken at that step or later, but step 3")):
        p["z"] = capture("target", 0.8 if name == "earlier" else 0.5, **dict(run, **change), start=("x", 0))
        with pytest.raises(ExecutionFailed, match=message):
            host.run(p, outputs=["z"])
