"""The in-process host and the tiny models behave as a real ComfyUI with a real SD2-family model."""
import os

import pytest
import torch

from devkit import comfy_host

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def tiny_models(host):
    """devkit.tiny_models, importable once the host has set ComfyUI up."""
    from devkit import tiny_models
    return tiny_models


def _loader_prompt(ckpt):
    return {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}}}


def test_pack_loads_from_custom_nodes_without_warnings(host):
    assert host.pack.success
    assert os.path.realpath(host.pack.path) == REPO_ROOT
    assert os.path.dirname(host.pack.path) == os.path.join(host.base_dir, "custom_nodes")
    assert comfy_host.problems(host.pack.log) == []


def test_tiny_model_pack_loads_without_warnings_and_registers_once(host):
    import comfy.supported_models
    loaded = host.install_pack(os.path.join(REPO_ROOT, "devkit", "tiny_model_pack"), "avi-tiny-models")
    assert loaded.success and comfy_host.problems(loaded.log) == []
    tiny = [m for m in comfy.supported_models.models if getattr(m, "avi_tiny_model", False)]
    assert [m.__name__ for m in tiny] == ["TinySD2", "TinySD15", "TinySDXL", "TinySD3", "TinyFlux"]
    assert comfy.supported_models.models[:len(tiny)] == tiny, "the tiny configs are detected before the stock ones"


def test_tiny_model_pack_copied_finds_the_repository_through_env(host, tmp_path, monkeypatch):
    import shutil
    import sys
    copy = shutil.copytree(os.path.join(REPO_ROOT, "devkit", "tiny_model_pack"), tmp_path / "tiny_copy")
    monkeypatch.setenv("AVI_REPO_ROOT", REPO_ROOT)
    loaded = host.install_pack(str(copy), "avi-tiny-copy")
    assert loaded.success and comfy_host.problems(loaded.log) == []
    module = sys.modules[loaded.path.replace(".", "_x_")]  # the name nodes.load_custom_node gives it
    assert module._devkit_dir() == os.path.join(REPO_ROOT, "devkit")
    monkeypatch.delenv("AVI_REPO_ROOT")
    with pytest.raises(ImportError, match="AVI_REPO_ROOT"):
        module._devkit_dir()


def test_register_is_idempotent_across_module_copies(host, tiny_models):
    import importlib.util
    import comfy.supported_models
    spec = importlib.util.spec_from_file_location("avi_tiny_models_copy", tiny_models.__file__)
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    try:
        other.register_tiny_configs()
        tiny = [m for m in comfy.supported_models.models if getattr(m, "avi_tiny_model", False)]
        assert tiny[0] is other.TinySD2 and comfy.supported_models.models[0] is tiny[0]
        assert [m.__name__ for m in tiny].count("TinySD2") == 1, "the copy replaced the first registration"
    finally:
        tiny_models.register_tiny_configs()
    assert comfy.supported_models.models[0] is tiny_models.TinySD2


def test_boot_is_idempotent_and_refuses_another_base(host, extra_model_dirs, tmp_path):
    assert comfy_host.boot(host.base_dir, pack_dir=REPO_ROOT, extra_model_paths=extra_model_dirs["yaml"]) is host
    with pytest.raises(RuntimeError, match="already"):
        comfy_host.boot(str(tmp_path), pack_dir=REPO_ROOT, extra_model_paths=extra_model_dirs["yaml"])


def test_boot_and_runs_write_nothing_outside_the_base_dir(host, writes_outside_base, make_txt2img, tiny_ckpt):
    host.run(make_txt2img(tiny_ckpt["eps"], steps=2))
    assert writes_outside_base() == []
    assert os.listdir(os.path.join(host.base_dir, "output"))  # SaveImage wrote into the base dir


def test_extra_model_paths_yaml_is_loaded_before_the_pack(host, extra_model_dirs):
    import folder_paths
    assert folder_paths.get_folder_paths("avi")[0] == extra_model_dirs["avi"]


@pytest.mark.parametrize("prediction, expected", [("eps", "EPS"), ("v", "V_PREDICTION")])
def test_stock_checkpoint_loader_detects_tiny_checkpoints(host, tiny_models, tiny_sd2, tiny_ckpt, prediction, expected):
    result = host.run(_loader_prompt(tiny_ckpt[prediction]), outputs=["1"])
    model, clip, vae = (result.output("1", slot) for slot in range(3))
    assert isinstance(model.model.model_config, tiny_models.TinySD2)
    assert model.model.model_type.name == expected
    direct = tiny_sd2[prediction][0].model.diffusion_model.state_dict()
    assert all(torch.equal(t, direct[k]) for k, t in model.model.diffusion_model.state_dict().items())
    assert type(vae.first_stage_model).__name__ == "TAESD"
    assert clip.cond_stage_model.clip_h.num_layers == tiny_models.TINY_CLIP_CONFIG["num_hidden_layers"]


def test_txt2img_runs_and_prompts_change_the_image(host, tiny_ckpt, make_txt2img):
    with host.progress_events() as events:
        cat = host.run(make_txt2img(tiny_ckpt["eps"], "a photo of a cat"))
    dog = host.run(make_txt2img(tiny_ckpt["eps"], "a photo of a dog"))
    images = [r.output("6") for r in (cat, dog)]
    for image in images:
        assert image.shape == (1, 128, 128, 3)
        assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
        assert image.std() > 0.01
    assert (images[0] - images[1]).abs().max() > 0.05
    saved = cat.ui["outputs"]["7"]["images"]
    assert os.path.isfile(os.path.join(host.base_dir, "output", saved[0]["subfolder"], saved[0]["filename"]))
    sampler_steps = [e.value for e in events if e.node_id == "5"]
    assert {e.total for e in events if e.node_id == "5"} == {20}
    if comfy_host.progress_is_throttled():  # the first and the last step always, those between as time allows
        assert sampler_steps[0] == 1 and sampler_steps[-1] == 20 and sampler_steps == sorted(set(sampler_steps))
    else:
        assert sampler_steps == list(range(1, 21))
    assert "5" in cat.executed and cat.events("execution_success")
    assert cat.messages[-1] == ("executing", {"node": None, "prompt_id": cat.prompt_id})


SAMPLERS = [("euler", "normal"), ("ddim", "ddim_uniform")]


def _advanced(prompt, latent, start, end, add_noise, leftover, seed, steps):
    """A KSamplerAdvanced node with the settings of the prompt's KSampler (node 5)."""
    common = {k: prompt["5"]["inputs"][k] for k in ("model", "cfg", "sampler_name", "scheduler", "positive", "negative")}
    return {"class_type": "KSamplerAdvanced", "inputs": {
        **common, "noise_seed": seed, "steps": steps, "add_noise": add_noise, "latent_image": latent,
        "start_at_step": start, "end_at_step": end, "return_with_leftover_noise": leftover}}


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("sampler, scheduler", SAMPLERS)
def test_ksampler_advanced_split_equals_full_run(host, tiny_ckpt, make_txt2img, prediction, sampler, scheduler):
    steps, split, seed = 20, 8, 3
    prompt = make_txt2img(tiny_ckpt[prediction], sampler=sampler, scheduler=scheduler, steps=steps, seed=seed)
    prompt["8"] = _advanced(prompt, ["4", 0], 0, split, "enable", "enable", seed, steps)
    prompt["9"] = _advanced(prompt, ["8", 0], split, 10000, "disable", "disable", seed, steps)
    result = host.run(prompt, outputs=["5", "9"])
    full, resumed = result.output("5")["samples"], result.output("9")["samples"]
    assert full.shape == (1, 4, 16, 16) and full.std() > 0.1
    # Absolute, as users compare latents: the tiny UNet denoises (devkit/tiny_models.py), so raw
    # latents stay at SD's scale and float32 round-off stays near 1e-5 (measured 1e-5 to 4e-5).
    assert (full - resumed).abs().max().item() <= 1e-4


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("sampler, scheduler", SAMPLERS)
def test_tiny_models_sample_like_a_real_sd2_model(host, tiny_ckpt, make_txt2img, prediction, sampler, scheduler):
    import comfy.samplers
    steps, seed = 20, 0
    prompt = make_txt2img(tiny_ckpt[prediction], "a photo of a cat", sampler=sampler, scheduler=scheduler,
                          steps=steps, seed=seed, save=False)
    prompt["12"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of a dog", "clip": ["1", 1]}}
    prompt["13"] = {"class_type": "KSampler", "inputs": {**prompt["5"]["inputs"], "positive": ["12", 0]}}
    model = host.run(prompt, outputs=["1"]).output("1", 0)
    sigmas = comfy.samplers.KSampler(model, steps=steps, device="cpu", sampler=sampler, scheduler=scheduler).sigmas
    # 0.8·T: the step whose sigma is nearest sigma(t = 799) (ddim_uniform: 3 of 20, normal: 4 of 20).
    step = int((sigmas - model.model.model_sampling.percent_to_sigma(0.2)).abs().argmin())
    prompt["8"] = _advanced(prompt, ["4", 0], 0, step, "enable", "enable", seed, steps)
    result = host.run(prompt, outputs=["5", "6", "8", "13"])
    cat, dog = result.output("5")["samples"], result.output("13")["samples"]
    assert torch.isfinite(cat).all() and torch.isfinite(dog).all()
    # SD's raw latents: within about ±15, std a few units (measured max 9-15, std 2.7-5.5).
    assert cat.abs().max().item() < 20 and 0.3 < cat.std().item() < 10
    # The VP-normalised latent the pack works on has about unit variance at 0.8·T (measured 0.96-1.01).
    vp = result.output("8")["samples"] * 0.18215 / (1 + sigmas[step].item() ** 2) ** 0.5
    assert 0.7 <= vp.std().item() <= 1.3
    # Prompts change the result visibly (measured mean |cat - dog| 5-7 % of the std).
    assert (cat - dog).abs().mean().item() > 0.01 * cat.std().item()
    image = result.output("6")
    assert torch.isfinite(image).all() and image.std().item() > 0.05


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_tiny_unet_prediction_follows_the_noise(host, tiny_sd2, prediction):
    """eps_hat ≈ the UNet's input x / sqrt(1 + σ²) at high noise; v models imply the same noise estimate."""
    model = tiny_sd2[prediction][0].model
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, 4, 16, 16, generator=gen) * 0.5
    noise = torch.randn(2, 4, 16, 16, generator=gen)
    context = torch.randn(2, 77, 64, generator=gen)
    for sigma, least in ((14.6, 0.98), (5.0, 0.98), (1.0, 0.8)):
        s = torch.full((2,), sigma)
        x = x0 + sigma * noise
        with torch.inference_mode():
            denoised = model.apply_model(x, s, c_crossattn=context)
        implied = (x - denoised) / sigma
        assert torch.corrcoef(torch.stack([implied.flatten(), noise.flatten()]))[0, 1].item() > least, sigma
        assert implied.abs().max().item() < 10


def test_object_info_has_the_server_structure(host, tiny_ckpt):
    info = host.object_info()
    ksampler = info["KSampler"]
    assert set(ksampler) >= {"input", "input_order", "output", "output_is_list", "output_name", "name",
                             "display_name", "description", "python_module", "category", "output_node"}
    seed = ksampler["input"]["required"]["seed"]
    assert seed[0] == "INT" and seed[1]["control_after_generate"] is True
    assert ksampler["input_order"]["required"][0] == "model"
    assert ksampler["output"] == ["LATENT"]  # a tuple in Python, a list over JSON
    ckpts = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert set(tiny_ckpt.values()) <= set(ckpts)
    v3 = [name for name, node in info.items() if node["python_module"].startswith("comfy_extras")]
    assert v3 and all("input_order" in info[name] for name in v3)


def test_runtime_error_names_node_and_type(host, tmp_path):
    import folder_paths
    broken = os.path.join(folder_paths.get_folder_paths("checkpoints")[0], "broken.safetensors")
    with open(broken, "wb") as f:
        f.write(b"not a checkpoint")
    try:
        with pytest.raises(comfy_host.ExecutionFailed, match=r"node 1 \(CheckpointLoaderSimple\) failed"):
            host.run(_loader_prompt("broken.safetensors"), outputs=["1"])
    finally:
        os.remove(broken)


def test_invalid_prompt_reports_node_errors(host, tiny_ckpt, make_txt2img):
    prompt = make_txt2img(tiny_ckpt["eps"], sampler="no_such_sampler")
    with pytest.raises(comfy_host.PromptInvalid, match=r"node 5 \(KSampler\)") as info:
        host.run(prompt)
    assert not info.value.validation.ok
    assert host.validate(make_txt2img(tiny_ckpt["eps"])).ok


def test_interrupt_stops_a_running_sampler_and_is_cleared(host, tiny_ckpt, make_txt2img):
    import comfy.model_management
    prompt = make_txt2img(tiny_ckpt["eps"], steps=20)
    with host.progress_events() as events, host.interrupt_after(events=3) as state:
        with pytest.raises(comfy_host.ExecutionInterrupted, match="node 5"):
            host.run(prompt)
    assert state["fired"] and len(events) == 3
    assert not comfy.model_management.processing_interrupted()
    with host.interrupt_after(seconds=60) as idle:
        pass  # a timer that never fired leaves nothing behind
    assert not idle["fired"] and not comfy.model_management.processing_interrupted()
    with host.interrupt_after(seconds=1.0) as timed:
        with pytest.raises(comfy_host.ExecutionInterrupted):
            host.run(make_txt2img(tiny_ckpt["eps"], steps=500))
    assert timed["fired"] and timed["events"] < 500
    assert host.run(prompt, outputs=["5"]).output("5")["samples"].shape == (1, 4, 16, 16)


def test_shared_executor_serves_unchanged_nodes_from_cache(host, tiny_ckpt, make_txt2img):
    prompt = make_txt2img(tiny_ckpt["eps"], steps=2, save=False)
    executor = host.new_executor()
    first = host.run(prompt, executor=executor)
    second = host.run(prompt, executor=executor)
    assert set(first.executed) == set(prompt) and second.executed == []
    assert set(second.cached) == set(prompt)
    assert set(host.run(prompt).executed) == set(prompt)  # a fresh executor runs everything


def test_direct_loader_and_models(host, tiny_models, tiny_sd2):
    model, clip, vae = tiny_sd2["eps"]
    assert tiny_sd2["v"][0].model.model_type.name == "V_PREDICTION"
    with torch.inference_mode():
        conds = [clip.encode_from_tokens_scheduled(clip.tokenize(t))[0][0] for t in ("a red car", "a green tree")]
        image = vae.decode(torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0)) * 5)
    assert conds[0].shape == (1, 77, tiny_models.TINY_CONTEXT_DIM)
    assert (conds[0] - conds[1]).abs().max() > 0.1
    assert image.shape == (2, 128, 128, 3) and image.min() >= 0 and image.max() <= 1 and image.std() > 0.05


def test_tiny_checkpoint_is_reproducible_and_small(host, tiny_models, tmp_path):
    paths = [tiny_models.write_tiny_checkpoint(str(tmp_path / f"{i}.safetensors"), "v", seed=s)
             for i, s in enumerate((5, 5, 6))]
    data = [open(p, "rb").read() for p in paths]
    assert data[0] == data[1] and data[0] != data[2]
    assert len(data[0]) < 16 * 2 ** 20
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
