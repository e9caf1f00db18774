"""The tiny SD1.5 and SDXL models (devkit/tiny_models_unet.py) through the stock loader and the pack's graphs."""
import re

import pytest
import torch

from tests.host.avi_prompts import capture, capture_inject_prompt, edit_prompt, invert

CLASSES = ["sd15", "sdxl"]
SAMPLERS = [("euler", "normal"), ("ddim", "ddim_uniform")]

# What comfy.model_detection.detect_unet_config reads from the real SD1.5 and SDXL base checkpoints.
REAL_UNET_CONFIGS = {
    "sd15": {"use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
             "adm_in_channels": None, "in_channels": 4, "out_channels": 4, "model_channels": 320,
             "num_res_blocks": [2, 2, 2, 2], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
             "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "channel_mult": [1, 2, 4, 4],
             "transformer_depth_middle": 1, "use_linear_in_transformer": False, "context_dim": 768,
             "use_temporal_resblock": False, "use_temporal_attention": False},
    "sdxl": {"use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
             "num_classes": "sequential", "adm_in_channels": 2816, "in_channels": 4, "out_channels": 4,
             "model_channels": 320, "num_res_blocks": [2, 2, 2], "transformer_depth": [0, 0, 2, 2, 10, 10],
             "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10], "channel_mult": [1, 2, 4],
             "transformer_depth_middle": 10, "use_linear_in_transformer": True, "context_dim": 2048,
             "use_temporal_resblock": False, "use_temporal_attention": False},
}


@pytest.fixture(scope="module")
def tiny_unet(host):
    """devkit.tiny_models_unet, importable once the host has set ComfyUI up."""
    from devkit import tiny_models_unet
    return tiny_models_unet


def samples(result, node, slot=0):
    return result.output(node, slot)["samples"]


def vp_std(result, node) -> float:
    """Standard deviation of a captured latent normalised to the VP scale, x·scale / sqrt(1 + σ²)."""
    info = result.output(node)["avi_capture"]
    sigma = float(info.sigmas[info.step])
    return (samples(result, node) * info.latent_scale.view(1, -1, 1, 1) / (1 + sigma ** 2) ** 0.5).std().item()


@pytest.mark.parametrize("model_class", CLASSES)
def test_stock_loader_detects_the_stock_class_and_samples(host, tiny_unet, class_ckpt, make_txt2img, model_class):
    import comfy.model_base
    import comfy.supported_models
    prompt = make_txt2img(class_ckpt(model_class), "a photo of a cat", save=False)
    prompt["12"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of a dog", "clip": ["1", 1]}}
    prompt["13"] = {"class_type": "KSampler", "inputs": {**prompt["5"]["inputs"], "positive": ["12", 0]}}
    result = host.run(prompt, outputs=["1", "5", "6", "13"])
    model, clip = result.output("1", 0), result.output("1", 1)
    stock = {"sd15": comfy.supported_models.SD15, "sdxl": comfy.supported_models.SDXL}[model_class]
    config = model.model.model_config
    assert isinstance(config, stock) and config.avi_tiny_model and model.model.model_type.name == "EPS"
    expected_base = {"sd15": comfy.model_base.BaseModel, "sdxl": comfy.model_base.SDXL}[model_class]
    assert type(model.model) is expected_base
    assert type(model.model.latent_format).__name__ == {"sd15": "SD15", "sdxl": "SDXL"}[model_class]
    encoders = {"sd15": ("clip_l",), "sdxl": ("clip_l", "clip_g")}[model_class]
    assert all(hasattr(clip.cond_stage_model, name) for name in encoders)
    cat, dog, image = samples(result, "5"), samples(result, "13"), result.output("6")
    assert torch.isfinite(cat).all() and torch.isfinite(dog).all()
    # Raw latents at the class's scale (SDXL's factor 0.13025 makes them 1.4× SD1.5's; measured max 16 and 23),
    # about unit std in model space (measured 1.03, 0.93); prompts move them (measured 9 % and 12 % of the std).
    model_space = cat * model.model.latent_format.scale_factor
    assert model_space.abs().max().item() < 5 and 0.3 < model_space.std().item() < 2
    assert (cat - dog).abs().mean().item() > 0.01 * cat.std().item()
    assert image.shape == (1, 128, 128, 3) and torch.isfinite(image).all() and image.std().item() > 0.05


def test_checkpoints_are_reproducible_small_and_written_atomically(host, tiny_unet, tmp_path):
    import os
    paths = [tiny_unet.write_checkpoint(str(tmp_path / f"{i}.safetensors"), "sdxl", seed=s) for i, s in enumerate((5, 5, 6))]
    data = [open(p, "rb").read() for p in paths]
    assert data[0] == data[1] and data[0] != data[2]
    assert len(data[0]) < 20 * 2 ** 20  # two full-vocabulary token tables and TAESD: measured 17.4 MB (SD1.5: 13.6 MB)
    with pytest.raises(ValueError, match=r"model_class must be one of \['sd15', 'sdxl'\], got 'sd3'"):
        tiny_unet.write_checkpoint(str(tmp_path / "x.safetensors"), "sd3")
    assert sorted(os.listdir(tmp_path)) == ["0.safetensors", "1.safetensors", "2.safetensors"]


@pytest.mark.parametrize("model_class", CLASSES)
def test_real_checkpoints_still_detect_as_the_stock_classes(host, tiny_unet, model_class):
    import comfy.model_detection
    import comfy.supported_models
    tiny_unet.register_configs()
    tiny_unet.register_configs()  # idempotent
    names = [m.__name__ for m in comfy.supported_models.models]
    assert names.count("TinySD15") == names.count("TinySDXL") == 1
    config = comfy.model_detection.model_config_from_unet_config(dict(REAL_UNET_CONFIGS[model_class]))
    assert type(config) is {"sd15": comfy.supported_models.SD15, "sdxl": comfy.supported_models.SDXL}[model_class]


def test_sdxl_prediction_uses_the_pooled_output(host, class_ckpt):
    model, clip = (host.run({"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": class_ckpt("sdxl")}}},
                            outputs=["1"]).output("1", slot) for slot in (0, 1))
    conds = [clip.encode_from_tokens_scheduled(clip.tokenize(t))[0] for t in ("a photo of a cat", "a photo of a dog")]
    assert conds[0][1]["pooled_output"].shape == (1, 64) and conds[0][0].shape == (1, 77, 96)
    gen = torch.Generator().manual_seed(1)
    x, sigma = torch.randn(1, 4, 16, 16, generator=gen) * 5.0, torch.full((1,), 5.0)

    def predict(pooled):
        y = model.model.encode_adm(pooled_output=pooled, width=128, height=128, device="cpu")
        assert y.shape == (1, model.model.adm_channels)
        with torch.inference_mode():
            return model.model.apply_model(x, sigma, c_crossattn=conds[0][0], y=y)

    cat, again, dog = (predict(c[1]["pooled_output"]) for c in (conds[0], conds[0], conds[1]))
    assert torch.equal(cat, again)
    # Only the pooled output differs: the ADM input reaches the prediction (measured mean 2 % of its std).
    assert (cat - dog).abs().mean().item() > 1e-3 * cat.std().item()


@pytest.mark.parametrize("model_class", CLASSES)
@pytest.mark.parametrize("sampler, scheduler", SAMPLERS)
def test_capture_then_inject_equals_the_plain_run(host, class_ckpt, model_class, sampler, scheduler):
    run = dict(seed=3, steps=20, sampler=sampler, scheduler=scheduler)
    p = capture_inject_prompt(class_ckpt(model_class), **run)
    result = host.run(p, outputs=["plain", "capture", "inject"])
    plain = samples(result, "plain")
    assert (samples(result, "inject") - plain).abs().max().item() < 1e-4
    assert plain.abs().max().item() > 0.1 and torch.isfinite(plain).all()
    # The VP-normalised latent the pack works on has about unit variance at 0.8·T (measured 0.976-0.984);
    # inject vs plain: measured 2e-5 to 4e-5.
    assert 0.7 <= vp_std(result, "capture") <= 1.3


@pytest.mark.parametrize("model_class", CLASSES)
def test_edit_graph_runs_and_rho_changes_the_image(host, class_ckpt, model_class):
    result = host.run(edit_prompt(class_ckpt(model_class), rho_list="0, 1", s_inf="Sx"))
    edited, unedited = result.output("decode"), result.output("unedited_decode")
    assert edited.shape == (2, 128, 128, 3) and torch.isfinite(edited).all()
    assert (edited[0] - unedited[0]).abs().max().item() < 1e-4, "ρ = 0 with S_inf = Sx is the identity"
    assert (edited[1] - unedited[0]).abs().mean().item() > 1e-3
    captured = result.output("integrate")["avi_capture"]
    assert captured.latent_format == {"sd15": "SD15", "sdxl": "SDXL"}[model_class]
    assert captured.model_family == {"sd15": "SD15", "sdxl": "SDXL"}[model_class], "the tiny config is named by its stock class"


# SD1.5 and SD2 share the SD15 latent format, eps prediction and 4 channels: the Φ file's model family
# (the host's config class) is what refuses one on the other.
PAIRS = [("sd15", "sdxl"), ("sdxl", "sd15"), ("sdxl", "sd2"), ("sd15", "sd2"), ("sd2", "sd15")]


def checkpoint_of(model_class, class_ckpt, tiny_ckpt):
    """The checkpoint name of a class: the tiny SD1.5/SDXL ones, or the tiny SD2 eps one for "sd2"."""
    return tiny_ckpt["eps"] if model_class == "sd2" else class_ckpt(model_class)


@pytest.fixture(scope="module")
def saved_phi(host, class_ckpt, tiny_ckpt):
    """saved_phi("sd15") -> (Φ file name trained on that class at 128 px, checkpoint name), trained once."""
    saved = {}

    def phi_of(model_class):
        if model_class not in saved:
            p = edit_prompt(checkpoint_of(model_class, class_ckpt, tiny_ckpt))
            p["save"] = {"class_type": "AVISavePhi", "inputs": {
                "phi": ["train", 0], "filename": f"class_{model_class}", "if_exists": "overwrite"}}
            saved[model_class] = host.run(p, outputs=["save"]).output("save")
        return saved[model_class]

    return phi_of


@pytest.mark.parametrize("trained_on, used_on", PAIRS)
def test_a_phi_for_another_model_class_is_refused(host, class_ckpt, tiny_ckpt, saved_phi, trained_on, used_on):
    from devkit.comfy_host import ExecutionFailed
    p = edit_prompt(checkpoint_of(used_on, class_ckpt, tiny_ckpt), phi_from=["load", 0])
    p["load"] = {"class_type": "AVILoadPhi", "inputs": {"phi_name": saved_phi(trained_on)}}
    formats = {"sd15": "SD15", "sd2": "SD15", "sdxl": "SDXL"}
    families = {"sd15": "SD15", "sd2": "SD20", "sdxl": "SDXL"}
    with pytest.raises(ExecutionFailed) as refused:
        host.run(p, outputs=["integrate"])
    message = str(refused.value)
    print(f"\n{trained_on} Φ on {used_on}: {message.splitlines()[0]}")
    # What the file was trained for and what was given, by latent format and model family.
    assert re.search(f"trained on {formats[trained_on]} latents \\({families[trained_on]} eps model, 4 channels\\); "
                     f"got {formats[used_on]} latents \\({families[used_on]} eps model, 4 channels\\)", message), message


def test_captures_of_sd15_and_sd2_do_not_mix(host, class_ckpt, tiny_ckpt):
    """One latent format, kind and size, two model classes: a pair across them, an inject or a capture from an inversion
    on the other class are refused."""
    from devkit.comfy_host import ExecutionFailed
    p = edit_prompt(class_ckpt("sd15"))
    p["sd2"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_ckpt["eps"]}}
    p["target_sd2"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of a young male person", "clip": ["sd2", 1]}}
    p["negative_sd2"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["sd2", 1]}}
    p["capture_z"]["inputs"].update(model=["sd2", 0], positive=["target_sd2", 0], negative=["negative_sd2", 0])
    with pytest.raises(ExecutionFailed, match="x and z must come from one model class; got x from SD15 and z from SD20"):
        host.run(p, outputs=["train"])
    p["unedited_inject"]["inputs"].update(model=["sd2", 0], positive=["target_sd2", 0], negative=["negative_sd2", 0])
    with pytest.raises(ExecutionFailed, match="captured with the model class SD15; this model is SD20"):
        host.run(p, outputs=["unedited_inject"])
    p["inverted"] = invert(["empty", 0], refine=0, positive="target_sd2")
    p["inverted"]["inputs"].update(model=["sd2", 0], negative=["negative_sd2", 0])
    p["capture_inverted"] = capture("original", 0.8, start=("inverted", 0))
    with pytest.raises(ExecutionFailed, match="inverted with the model class SD20; this model is SD15"):
        host.run(p, outputs=["capture_inverted"])
