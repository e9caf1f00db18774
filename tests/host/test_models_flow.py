"""Tiny real SD3 and Flux dev checkpoints (devkit/tiny_models_flow.py) through the stock loader, sampler and the pack's graph."""
import pytest
import torch

from tests.host.avi_prompts import SMALL_TRAINING, base_nodes, capture, capture_inject_prompt, edit_prompt, ksampler

CLASSES = ["sd3", "flux"]
FLUX_GUIDANCE = 3.5  # what ComfyUI's Flux dev example sets


def samples(result, node, slot=0):
    return result.output(node, slot)["samples"]


def guided(prompt: dict, model_class: str, guidance: float = FLUX_GUIDANCE) -> dict:
    """Flux as the stock Flux dev graph runs it: FluxGuidance on the prompts, cfg 1 everywhere; SD3 unchanged."""
    if model_class != "flux":
        return prompt
    out = dict(prompt)
    for name in ("original", "target"):
        out[f"{name}_guided"] = {"class_type": "FluxGuidance", "inputs": {"conditioning": [name, 0], "guidance": guidance}}
    for node_id, node in prompt.items():
        inputs = dict(node["inputs"])
        for key, value in inputs.items():
            if isinstance(value, list) and value[0] in ("original", "target") and key != "conditioning":
                inputs[key] = [f"{value[0]}_guided", value[1]]
        if "cfg" in inputs and node["class_type"] != "AVIInvertLatent":
            inputs["cfg"] = 1.0
        out[node_id] = {**node, "inputs": inputs}
    return out


def nearest_step(host, prompt: dict, fraction: float, run: dict) -> int:
    """The step of the prompt's model whose σ is nearest fraction (t = σ·T for flow models)."""
    import comfy.samplers
    model = host.run({"ckpt": prompt["ckpt"]}, outputs=["ckpt"]).output("ckpt", 0)
    sigmas = comfy.samplers.KSampler(model, steps=run["steps"], device="cpu", sampler=run["sampler"], scheduler=run["scheduler"]).sigmas
    return int((sigmas[:-1] - fraction).abs().argmin())


def vp_std(result, node) -> float:
    """Std of a captured latent in the pack's VP normalisation (x / sqrt((1-σ)² + σ²) in model space)."""
    latent = result.output(node)
    info = latent["avi_capture"]
    raw = latent["samples"].float()
    x = (raw * info.latent_scale.view(1, -1, 1, 1) + info.latent_shift.view(1, -1, 1, 1)) * (1 - info.sigma)
    return (x / ((1 - info.sigma) ** 2 + info.sigma ** 2) ** 0.5).std().item()


@pytest.fixture(scope="module")
def flow(host):
    """devkit.tiny_models_flow, importable once the host has set ComfyUI up."""
    from devkit import tiny_models_flow
    return tiny_models_flow


@pytest.mark.parametrize("model_class", CLASSES)
def test_stock_loader_detects_the_tiny_flow_classes(host, flow, class_ckpt, model_class):
    import comfy.model_base
    import comfy.model_detection
    import comfy.model_sampling
    import comfy.supported_models
    import comfy.utils
    import folder_paths

    result = host.run({"ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": class_ckpt(model_class)}}},
                      outputs=["ckpt"])
    model, clip, vae = (result.output("ckpt", slot) for slot in range(3))
    base, config, sampling, shift = {
        "sd3": (comfy.model_base.SD3, flow.TinySD3, comfy.model_sampling.ModelSamplingDiscreteFlow, 3.0),
        "flux": (comfy.model_base.Flux, flow.TinyFlux, comfy.model_sampling.ModelSamplingFlux, 1.15),
    }[model_class]
    assert type(model.model) is base and type(model.model.model_config) is config
    ms = model.model.model_sampling
    assert isinstance(ms, sampling) and isinstance(ms, comfy.model_sampling.CONST) and ms.shift == pytest.approx(shift)
    assert model.model.latent_format.latent_channels == 16 and vae.latent_channels == 16
    assert type(vae.first_stage_model).__name__ == "TAESD"
    sd = comfy.utils.load_torch_file(folder_paths.get_full_path("checkpoints", class_ckpt(model_class)))
    written = flow.MODEL_CLASSES[model_class][1]
    detected = comfy.model_detection.detect_unet_config(sd, "model.diffusion_model.")
    # Compared once the config class applied its overrides (heads, rotary axes): the configuration models are built from.
    assert config(detected).unet_config == config(written).unet_config, "what is written is what loads"
    assert {k: v for k, v in detected.items() if k not in config.unet_extra_config} == \
        {k: v for k, v in written.items() if k not in config.unet_extra_config}
    # A real checkpoint's configuration (here: the stock classes' own keys at full width) still detects as the stock class.
    real = {"sd3": {**written, "depth": 24}, "flux": {**written, "hidden_size": 3072}}[model_class]
    assert type(comfy.model_detection.model_config_from_unet_config(real)) is {"sd3": comfy.supported_models.SD3,
                                                                               "flux": comfy.supported_models.Flux}[model_class]
    with torch.inference_mode():
        cond = clip.encode_from_tokens_scheduled(clip.tokenize("a photo of a cat"))
    assert torch.isfinite(cond[0][0]).all() and cond[0][1]["pooled_output"].shape[-1] == {"sd3": 64, "flux": 32}[model_class]


@pytest.mark.parametrize("model_class", CLASSES)
def test_samples_finite_images_that_follow_the_prompt_and_the_shift(host, class_ckpt, model_class):
    p = guided(base_nodes(class_ckpt(model_class), "a photo of a cat", "a photo of a dog", 128), model_class)
    p["empty"] = {"class_type": "EmptySD3LatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}}
    run = dict(seed=0, steps=20, sampler="euler", scheduler="simple")
    p["cat"] = guided({"n": ksampler(**run, cfg=5.0)}, model_class)["n"]
    p["dog"] = {**p["cat"], "inputs": {**p["cat"]["inputs"], "positive": [p["cat"]["inputs"]["positive"][0].replace("original", "target"), 0]}}
    p["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["cat", 0], "vae": ["ckpt", 2]}}
    if model_class == "flux":
        # ModelSamplingFlux sets the shift from the image size (1.15 at 1024 px, the default): 128 px gives 0.4675.
        p["shifted"] = {"class_type": "ModelSamplingFlux", "inputs": {"model": ["ckpt", 0], "max_shift": 1.15, "base_shift": 0.5,
                                                                      "width": 128, "height": 128}}
        p["low_guidance"] = {"class_type": "FluxGuidance", "inputs": {"conditioning": ["original", 0], "guidance": 1.0}}
        p["cat_low_guidance"] = {**p["cat"], "inputs": {**p["cat"]["inputs"], "positive": ["low_guidance", 0]}}
    else:
        p["shifted"] = {"class_type": "ModelSamplingSD3", "inputs": {"model": ["ckpt", 0], "shift": 6.0}}
    p["cat_shifted"] = {**p["cat"], "inputs": {**p["cat"]["inputs"], "model": ["shifted", 0]}}
    result = host.run(p, outputs=list(p))
    cat, dog, shifted = samples(result, "cat"), samples(result, "dog"), samples(result, "cat_shifted")
    assert cat.shape == (1, 16, 16, 16) and torch.isfinite(cat).all()
    model = result.output("ckpt", 0)
    x0 = model.model.latent_format.process_in(cat)
    # The crude velocity shrinks the noise to about 0.4-0.6 in model space (measured 0.37 flux, 0.61 sd3 at cfg 1 / 5).
    assert 0.2 < x0.std().item() < 1.0 and x0.abs().max().item() < 5
    assert (cat - dog).abs().mean().item() > 0.02 * cat.std().item(), "the prompt changes the image"
    assert (cat - shifted).abs().mean().item() > 0.02 * cat.std().item(), "the shift changes the schedule"
    assert result.output("shifted", 0).get_model_object("model_sampling").shift == pytest.approx(
        {"sd3": 6.0, "flux": 0.5 + 0.65 / 3840 * (64 - 256)}[model_class])
    if model_class == "flux":
        assert (cat - samples(result, "cat_low_guidance")).abs().mean().item() > 0.02 * cat.std().item(), "the guidance embedding"
    image = result.output("decode")
    assert image.shape == (1, 128, 128, 3) and torch.isfinite(image).all() and image.std().item() > 0.03


@pytest.mark.parametrize("model_class", CLASSES)
@pytest.mark.parametrize("sampler, scheduler", [("euler", "simple"), ("ddim", "ddim_uniform")])
def test_capture_then_inject_equals_the_plain_stock_run(host, class_ckpt, model_class, sampler, scheduler):
    run = dict(seed=3, steps=20, sampler=sampler, scheduler=scheduler)
    p = capture_inject_prompt(class_ckpt(model_class), **run)
    p = guided(p, model_class)
    result = host.run(p, outputs=["plain", "capture", "inject"])
    plain = samples(result, "plain")
    info = result.output("capture")["avi_capture"]
    assert info.model_kind == "flow" and info.latent_format == {"sd3": "SD3", "flux": "Flux"}[model_class]
    assert info.x0.shape == (1, 16, 16, 16) and abs(info.sigma - 0.8) < 0.03
    assert (samples(result, "inject") - plain).abs().max().item() < 1e-4
    assert torch.isfinite(plain).all() and plain.std().item() > 0.1
    # The pack's VP latent at 0.8·T has about unit variance (measured 0.99-1.01).
    assert 0.8 < vp_std(result, "capture") < 1.2


@pytest.mark.parametrize("model_class", CLASSES)
def test_a_timestep_fraction_captures_at_that_sigma(host, class_ckpt, model_class):
    """For flow models t = σ·T: 0.8·T is the step whose σ is nearest 0.8 (SD3 counts σ·1000, Flux σ itself)."""
    run = dict(seed=1, steps=20, sampler="euler", scheduler="simple")
    p = base_nodes(class_ckpt(model_class), "a photo of a castle", "unused", 64)
    wanted = {fraction: nearest_step(host, p, fraction, run) for fraction in (0.8, 0.5)}
    p["at_08"] = capture("original", 0.8, **run)
    p["at_05"] = capture("original", 0.5, **run)
    result = host.run(guided(p, model_class), outputs=["at_08", "at_05"])
    assert (result.output("at_08", 1), result.output("at_05", 1)) == (wanted[0.8], wanted[0.5])
    assert abs(result.output("at_08")["avi_capture"].reached_fraction - 0.8) < 0.05


@pytest.mark.parametrize("model_class", CLASSES)
def test_edit_graph_runs_and_rho_changes_the_image(host, class_ckpt, model_class):
    p = edit_prompt(class_ckpt(model_class), original="a photo of a woman", target="a photo of a smiling woman",
                    sampler="euler", scheduler="simple", tx=0.6, tz=0.5, rho_list="0, 1", s_inf="Sx→S")
    result = host.run(guided(p, model_class))
    edited, unedited = result.output("decode"), result.output("unedited_decode")
    assert edited.shape == (2, 128, 128, 3) and torch.isfinite(edited).all()
    assert (edited[0] - unedited[0]).abs().max().item() < 1e-4, "ρ = 0 with S_inf Sx→S is the identity"
    assert (edited[1] - unedited[0]).abs().mean().item() > 1e-3, "ρ = 1 changes the image"
    assert result.output("integrate")["samples"].shape == (2, 16, 16, 16)


def saved_phi(host, class_ckpt, tiny_ckpt, source: str) -> str:
    """Train a small Φ on one class's captures and save it; its file name."""
    ckpt = tiny_ckpt["eps"] if source == "eps" else class_ckpt(source)
    p = guided(edit_prompt(ckpt, training=dict(SMALL_TRAINING, epochs=1)), source)
    p["save"] = {"class_type": "AVISavePhi", "inputs": {"phi": ["train", 0], "filename": f"flow_refusal_{source}", "if_exists": "overwrite"}}
    return host.run(p, outputs=["save"]).output("save")


@pytest.mark.parametrize("trained, applied", [("sd3", "flux"), ("flux", "sd3"), ("sd3", "eps"), ("eps", "flux")])
def test_a_phi_for_another_model_class_is_refused(host, class_ckpt, tiny_ckpt, trained, applied):
    from devkit.comfy_host import ExecutionFailed

    name = saved_phi(host, class_ckpt, tiny_ckpt, trained)
    ckpt = tiny_ckpt["eps"] if applied == "eps" else class_ckpt(applied)
    p = guided(edit_prompt(ckpt, phi_from=["load", 0]), applied)
    p["load"] = {"class_type": "AVILoadPhi", "inputs": {"phi_name": name}}
    expected = {("sd3", "flux"): r"trained on SD3 latents \(SD3 flow model, 16 channels\); got Flux latents \(Flux flow model, 16 channels\)",
                ("flux", "sd3"): r"trained on Flux latents \(Flux flow model, 16 channels\); got SD3 latents \(SD3 flow model, 16 channels\)",
                ("sd3", "eps"): r"trained on SD3 latents \(SD3 flow model, 16 channels\); got SD15 latents \(SD20 eps model, 4 channels\)",
                ("eps", "flux"): r"trained on SD15 latents \(SD20 eps model, 4 channels\); got Flux latents \(Flux flow model, 16 channels\)",
                }[(trained, applied)]
    with pytest.raises(ExecutionFailed, match=expected) as failure:
        host.run(p, outputs=["integrate"])
    print(f"\n{trained} Φ on {applied}: {failure.value}")
