"""Tiny real SD2-family models for tests and the demo: ComfyUI's own classes, random seeded weights."""
# Import only once ComfyUI is importable with its arguments set (devkit.comfy_host.prepare, or
# inside a running ComfyUI): this module subclasses comfy.supported_models.SD20 at import time.
import contextlib
import math
import os

import torch

import comfy.model_base
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import comfy.supported_models_base
import comfy.taesd.taesd
from comfy.text_encoders import sd2_clip

TINY_CONTEXT_DIM = 64

# Exactly what comfy.model_detection.detect_unet_config reads back from a tiny checkpoint, so the
# model written and the model loaded are built from the same configuration.
TINY_UNET_CONFIG = {
    "use_checkpoint": False,
    "image_size": 32,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 32,
    "num_res_blocks": [1, 1],
    "transformer_depth": [1, 1],
    "transformer_depth_output": [1, 1, 1, 1],
    "channel_mult": [1, 2],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": True,
    "context_dim": TINY_CONTEXT_DIM,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}

# Overrides of comfy/text_encoders/sd2_clip_config.json: SD2's text model, shrunk. The vocabulary
# stays full size because the real SD2 tokenizer emits ids up to 49407. Three layers, not two:
# SD2 reads the penultimate layer (-2) and comfy/sd1_clip.py asserts abs(layer_idx) < num_layers.
TINY_CLIP_CONFIG = {
    "hidden_size": TINY_CONTEXT_DIM,
    "intermediate_size": 128,
    "num_attention_heads": 2,
    "num_hidden_layers": 3,
    "projection_dim": TINY_CONTEXT_DIM,
    "vocab_size": 49408,
    "max_position_embeddings": 77,
}

# Weights are stored in half precision (small file); loading casts them back exactly.
STORAGE_DTYPE = torch.float16


class TinySD2ClipModel(sd2_clip.SD2ClipModel):
    """SD2's CLIP-H text encoder wrapper (penultimate layer) with the tiny configuration."""

    def __init__(self, device="cpu", dtype=None, model_options={}, **kwargs):
        # SDClipModel applies "<model_name>_model_config" entries over the json configuration.
        model_options = {**model_options, "clip_h_model_config": dict(TINY_CLIP_CONFIG)}
        super().__init__(device=device, dtype=dtype, model_options=model_options, **kwargs)


class TinySD2(comfy.supported_models.SD20):
    """SD2 model family with a tiny UNet (32 channels, two levels) and a tiny text encoder."""

    avi_tiny_model = True
    unet_config = {
        "context_dim": TINY_CONTEXT_DIM,
        "model_channels": 32,
        "use_linear_in_transformer": True,
        "adm_in_channels": None,
        "use_temporal_attention": False,
    }
    # SD20 forces 64-channel heads, wider than the tiny UNet's 32 channels.
    unet_extra_config = {"num_heads": -1, "num_head_channels": 16, "attn_precision": torch.float32}

    def model_type(self, state_dict, prefix=""):
        """V_PREDICTION when the checkpoint carries ComfyUI's "v_pred" marker key, else EPS."""
        # SD20 probes output_blocks.11, which the two-level tiny UNet does not have.
        if "v_pred" in state_dict:
            return comfy.model_base.ModelType.V_PREDICTION
        return comfy.model_base.ModelType.EPS

    def clip_target(self, state_dict={}):
        """The real SD2 tokenizer with the tiny SD2 text encoder."""
        return comfy.supported_models_base.ClipTarget(sd2_clip.SD2Tokenizer, TinySD2ClipModel)


TINY_CONFIGS = (TinySD2,)


def register_tiny_configs() -> None:
    """Put the tiny config classes first in comfy.supported_models.models (idempotent)."""
    models = comfy.supported_models.models
    names = {c.__name__ for c in TINY_CONFIGS}
    # Match by name and marker: this file may be imported twice under different module names.
    models[:] = [m for m in models if not (getattr(m, "avi_tiny_model", False) and m.__name__ in names)]
    models[0:0] = list(TINY_CONFIGS)


def init_weights(module: torch.nn.Module, seed: int) -> None:
    """Fill every weight of a module built with disable_weight_init, seeded and scale-preserving."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                # Embedding tables get unit scale, matrices 1/sqrt(fan-in): activations stay O(1).
                std = 1.0 if "embedding" in name else 1.0 / math.prod(p.shape[1:]) ** 0.5
                value = torch.randn(p.shape, generator=gen) * std
            elif p.ndim == 1 and name.endswith("weight"):
                value = torch.ones(p.shape)  # norm scales
            elif p.ndim == 1:
                value = torch.randn(p.shape, generator=gen) * 0.02  # biases
            else:
                continue  # scalars (logit_scale, vae_scale, vae_shift) keep their constructor values
            p.copy_(value.to(p.dtype))


def _build_unet(prediction: str, seed: int) -> comfy.model_patcher.ModelPatcher:
    """Tiny BaseModel in storage precision, wrapped as ComfyUI wraps a loaded one."""
    config = TinySD2(TINY_UNET_CONFIG)
    config.set_inference_dtype(STORAGE_DTYPE, torch.float32)
    model_type = {"eps": comfy.model_base.ModelType.EPS, "v": comfy.model_base.ModelType.V_PREDICTION}[prediction]
    model = comfy.model_base.BaseModel(config, model_type=model_type, device=torch.device("cpu"))
    init_weights(model.diffusion_model, seed)
    device = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


def _build_clip(seed: int) -> comfy.sd.CLIP:
    """Tiny SD2 text encoder and the real SD2 tokenizer."""
    target = TinySD2(TINY_UNET_CONFIG).clip_target()
    cpu = torch.device("cpu")
    clip = comfy.sd.CLIP(target, model_options={"dtype": STORAGE_DTYPE, "load_device": cpu, "offload_device": cpu, "initial_device": cpu})
    init_weights(clip.cond_stage_model, seed)
    return clip


def _build_vae(seed: int) -> comfy.sd.VAE:
    """TAESD with random weights through ComfyUI's VAE loader (detected by taesd_decoder.1.weight)."""
    taesd = comfy.taesd.taesd.TAESD()
    init_weights(taesd, seed)
    with torch.no_grad():
        # Unit gain keeps the residual conv stacks near unit scale (measured); the last layers
        # then map to an image of mean 0.5, std ~0.2, and to latents of SD's raw scale (~1/0.18215).
        taesd.taesd_decoder[-1].weight.mul_(0.15)
        taesd.taesd_decoder[-1].bias.fill_(0.5)
        taesd.taesd_encoder[-1].weight.mul_(25.0)
    sd = {k: v.to(STORAGE_DTYPE) for k, v in taesd.state_dict().items()}
    return comfy.sd.VAE(sd=sd, device=torch.device("cpu"), dtype=STORAGE_DTYPE)


@contextlib.contextmanager
def _single_thread():
    """Run torch on one thread inside the block: for hundreds of small tensors, hand-offs cost more."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def write_tiny_checkpoint(path: str, prediction: str = "eps", seed: int = 0) -> str:
    """Write a tiny SD2 checkpoint with ComfyUI's own save_checkpoint, atomically; return path."""
    if prediction not in ("eps", "v"):
        raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")
    register_tiny_configs()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with _single_thread():
            model, clip, vae = _build_unet(prediction, seed), _build_clip(seed + 1), _build_vae(seed + 2)
            comfy.sd.save_checkpoint(tmp, model, clip=clip, vae=vae)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_tiny_checkpoint(path: str):
    """(model_patcher, clip, vae) from a checkpoint through ComfyUI's checkpoint loader."""
    import folder_paths
    register_tiny_configs()
    # The arguments CheckpointLoaderSimple passes (nodes.py).
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
        path, output_vae=True, output_clip=True, embedding_directory=folder_paths.get_folder_paths("embeddings"))
    return model, clip, vae
