"""Host tests: one real in-process ComfyUI per pytest process, with tiny SD2 checkpoints installed."""
import os

import pytest
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_CHECKPOINTS = {"eps": "tiny_sd2_eps.safetensors", "v": "tiny_sd2_v.safetensors"}
# Names a ComfyUI writes beside itself when its base directory is not redirected.
COMFY_WRITES = ("models", "output", "input", "temp", "user", "custom_nodes", "comfyui.db", "comfyui.log")


def tree_snapshot(root: str) -> dict:
    """Relative path -> (size, mtime) of every file under root, bytecode caches left out."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="session")
def comfy_tree_before():
    """The embedded ComfyUI tree as it was before this process booted it."""
    from devkit import comfy_host
    return tree_snapshot(comfy_host.default_comfy_dir())


@pytest.fixture(scope="session")
def writes_outside_base(host, comfy_tree_before):
    """A check: files ComfyUI wrote into its own tree or ComfyUI folders it made in the repository."""
    def check() -> list:
        now = tree_snapshot(host.comfy_dir)
        changed = sorted(k for k in set(now) | set(comfy_tree_before) if now.get(k) != comfy_tree_before.get(k))
        for folder in (REPO_ROOT, os.path.join(REPO_ROOT, "devkit")):
            changed += [os.path.join(folder, n) for n in COMFY_WRITES if os.path.lexists(os.path.join(folder, n))]
        return changed
    return check


@pytest.fixture(scope="session")
def extra_model_dirs(tmp_path_factory):
    """Folders an extra_model_paths.yaml adds before the pack loads: {"avi": path, "yaml": file}."""
    root = tmp_path_factory.mktemp("extra_models")
    avi = root / "avi"
    avi.mkdir()
    yaml_file = root / "extra_model_paths.yaml"
    yaml_file.write_text(f"avi_tests:\n  base_path: {root}\n  avi: avi\n")
    return {"avi": str(avi), "yaml": str(yaml_file)}


@pytest.fixture(scope="session")
def host(tmp_path_factory, comfy_tree_before, extra_model_dirs):
    """The booted host: base dir in tmp, the pack from this repository, tiny checkpoints in models/."""
    from devkit import comfy_host
    # Tiny tensors: OpenMP hand-offs between threads cost more than the work, badly so on a
    # shared 2-core machine (a 20-step run: ~1 s on one thread, 10-25 s on two, measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("comfy_base")
    booted = comfy_host.boot(str(base), pack_dir=REPO_ROOT, extra_model_paths=extra_model_dirs["yaml"])
    from devkit import tiny_models  # importable once ComfyUI is set up
    for prediction, name in TINY_CHECKPOINTS.items():
        tiny_models.write_tiny_checkpoint(os.path.join(base, "models", "checkpoints", name), prediction)
    yield booted
    torch.set_num_threads(threads)


@pytest.fixture
def every_progress_update(host, monkeypatch):
    """Every ProgressBar update reaches the hook inside the test: the host's throttle, where it has one, is opened."""
    # What the pack reports is then seen step by step; what a throttled host forwards of it is its own choice.
    import comfy.utils

    from devkit.comfy_host import progress_is_throttled
    if progress_is_throttled():
        monkeypatch.setattr(comfy.utils, "PROGRESS_THROTTLE_MIN_INTERVAL", 0.0)
        monkeypatch.setattr(comfy.utils, "PROGRESS_THROTTLE_MIN_PERCENT", 0.0)


@pytest.fixture(scope="session")
def digits_ckpt(host):
    """The shipped trained tiny digits model as Load Checkpoint lists it: the pack registers it at load
    (nodes/demo_models.py), nothing is placed in models/."""
    import folder_paths
    from bench.bench_quality import CHECKPOINT
    name = os.path.basename(CHECKPOINT)
    path = folder_paths.get_full_path("checkpoints", name)
    assert path and os.path.realpath(path) == os.path.realpath(CHECKPOINT), path
    return name


@pytest.fixture(scope="session")
def people_ckpt(host):
    """The shipped tiny people model as Load Checkpoint lists it (registered by the pack at load, like the digits model)."""
    import folder_paths
    name = "avi_demo_tiny_people_sd2.safetensors"
    path = folder_paths.get_full_path("checkpoints", name)
    assert path and os.path.realpath(path) == os.path.realpath(os.path.join(REPO_ROOT, "demo_models", name)), path
    return name


@pytest.fixture(scope="session")
def tiny_ckpt(host):
    """Checkpoint names as CheckpointLoaderSimple lists them: {"eps": name, "v": name}."""
    return dict(TINY_CHECKPOINTS)


# Tiny random models of the other classes the pack supports: class -> (devkit module that writes it, file name).
CLASS_CHECKPOINTS = {
    "sd15": ("devkit.tiny_models_unet", "tiny_sd15.safetensors"),
    "sdxl": ("devkit.tiny_models_unet", "tiny_sdxl.safetensors"),
    "sd3": ("devkit.tiny_models_flow", "tiny_sd3.safetensors"),
    "flux": ("devkit.tiny_models_flow", "tiny_flux.safetensors"),
}


@pytest.fixture(scope="session")
def class_ckpt(host):
    """class_ckpt("sdxl") -> the checkpoint name CheckpointLoaderSimple lists, written into models/ on first use."""
    import importlib
    written = {}

    def name_of(model_class: str) -> str:
        if model_class not in written:
            module, file_name = CLASS_CHECKPOINTS[model_class]
            writer = importlib.import_module(module)
            writer.write_checkpoint(os.path.join(host.base_dir, "models", "checkpoints", file_name), model_class)
            written[model_class] = file_name
        return written[model_class]

    return name_of


@pytest.fixture(scope="session")
def tiny_sd2(host):
    """In-memory (model_patcher, clip, vae) per prediction type, through ComfyUI's loader."""
    from devkit import tiny_models
    folder = os.path.join(host.base_dir, "models", "checkpoints")
    return {p: tiny_models.load_tiny_checkpoint(os.path.join(folder, n)) for p, n in TINY_CHECKPOINTS.items()}


def txt2img_prompt(ckpt: str, positive: str = "a photo of a cat", negative: str = "blurry", *,
                   size: int = 128, steps: int = 20, sampler: str = "euler", scheduler: str = "normal",
                   seed: int = 0, cfg: float = 7.0, save: bool = True) -> dict:
    """Stock text-to-image API prompt; node ids: 1 loader, 2/3 prompts, 4 latent, 5 KSampler, 6 decode, 7 save."""
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler,
            "scheduler": scheduler, "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
    }
    prompt["7"] = {"class_type": "SaveImage" if save else "PreviewImage",
                   "inputs": {"images": ["6", 0], **({"filename_prefix": "tiny"} if save else {})}}
    return prompt


@pytest.fixture(scope="session")
def make_txt2img():
    """Factory for the stock text-to-image prompt (see txt2img_prompt)."""
    return txt2img_prompt
