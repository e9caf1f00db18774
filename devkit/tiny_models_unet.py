"""Tiny real SD1.5 and SDXL models (eps) for tests: ComfyUI's own classes, random seeded weights."""
# Import only once ComfyUI is importable with its arguments set (devkit.comfy_host.prepare, or
# inside a running ComfyUI): this module subclasses comfy.supported_models classes at import time.
# Weights, the crude denoiser and the VAE come from devkit/tiny_models.py (the tiny SD2 models).

import torch

import comfy.latent_formats
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import comfy.supported_models_base
from comfy import sd1_clip, sdxl_clip

from devkit import tiny_models

# SD1.5's CLIP-L, shrunk as tiny_models shrinks SD2's CLIP-H (full vocabulary for the real
# tokenizer; three layers because SDXL reads the penultimate one).
TINY_CLIP_L_CONFIG = dict(tiny_models.TINY_CLIP_CONFIG)
# SDXL's pair, shrunk, CLIP-L narrower than CLIP-G as in the real model: each full-vocabulary token
# table costs 49408 x width x 2 bytes, so this keeps the file near the tiny SD2 one's size.
TINY_SDXL_CLIP_L_CONFIG = {**tiny_models.TINY_CLIP_CONFIG, "hidden_size": 32, "projection_dim": 32, "intermediate_size": 64}
TINY_CLIP_G_CONFIG = dict(tiny_models.TINY_CLIP_CONFIG)
# model_base.SDXL.encode_adm: CLIP-G's pooled output (comfy's CLIPTextModel projects to its own
# width), then six Timestep(256) embeddings (height, width, crop h, crop w, target height, width).
SDXL_POOLED_DIM = TINY_CLIP_G_CONFIG["hidden_size"]
SDXL_ADM_CHANNELS = SDXL_POOLED_DIM + 6 * 256
SDXL_CONTEXT_DIM = TINY_SDXL_CLIP_L_CONFIG["hidden_size"] + TINY_CLIP_G_CONFIG["hidden_size"]  # [l_out, g_out]

# What comfy.model_detection.detect_unet_config reads back from each tiny checkpoint: the tiny SD2
# UNet with SD1.5's convolutional proj_in; for SDXL, its class-embedding (ADM) input and wider context.
SD15_UNET_CONFIG = {**tiny_models.TINY_UNET_CONFIG, "use_linear_in_transformer": False}
# SDXL runs at 1024 px (128x128 latents): four levels, 32, 32, 64, 64 channels, with attention only
# at the lowest (16x16 tokens at 1024 px, 2x2 at 128 px) cost 0.14 s a cfg step on one thread,
# against 0.37 s for the SD2 layout (measured), whose 64-channel level at 64x64 dominates. The
# lower levels stay 64 wide: GroupNorm(32) over 32 channels removes each channel's mean, which is
# all that the timestep and ADM embeddings add, so an all-32 UNet would ignore both.
SDXL_UNET_CONFIG = {**tiny_models.TINY_UNET_CONFIG, "num_classes": "sequential",
                    "adm_in_channels": SDXL_ADM_CHANNELS, "context_dim": SDXL_CONTEXT_DIM,
                    "num_res_blocks": [1, 1, 1, 1], "channel_mult": [1, 1, 2, 2],
                    "transformer_depth": [0, 0, 0, 1], "transformer_depth_output": [0, 0, 0, 0, 0, 0, 1, 1]}


class TinySD1ClipModel(sd1_clip.SD1ClipModel):
    """SD1.5's CLIP-L text encoder wrapper (last layer) with the tiny configuration."""

    def __init__(self, device="cpu", dtype=None, model_options={}, **kwargs):
        # SDClipModel applies "<model_name>_model_config" entries over the json configuration.
        model_options = {**model_options, "clip_l_model_config": dict(TINY_CLIP_L_CONFIG)}
        super().__init__(device=device, dtype=dtype, model_options=model_options, **kwargs)


class TinySDXLClipModel(sdxl_clip.SDXLClipModel):
    """SDXL's CLIP-L + CLIP-G (penultimate layers, CLIP-G's projected pooled output), tiny."""

    def __init__(self, device="cpu", dtype=None, model_options={}):
        model_options = {**model_options, "clip_l_model_config": dict(TINY_SDXL_CLIP_L_CONFIG),
                         "clip_g_model_config": dict(TINY_CLIP_G_CONFIG)}
        super().__init__(device=device, dtype=dtype, model_options=model_options)


class TinySD15(comfy.supported_models.SD15):
    """SD1.5 model family with the tiny UNet (32 channels: no real checkpoint matches) and a tiny CLIP-L."""

    avi_tiny_model = True
    unet_config = {
        "context_dim": TINY_CLIP_L_CONFIG["hidden_size"],
        "model_channels": 32,
        "use_linear_in_transformer": False,
        "adm_in_channels": None,
        "use_temporal_attention": False,
    }
    # SD15 fixes 8 heads; the tiny UNet's 64-channel attention level gets 16-channel heads.
    unet_extra_config = {"num_heads": 4, "num_head_channels": -1}

    def clip_target(self, state_dict={}):
        """The real SD1 tokenizer with the tiny CLIP-L."""
        return comfy.supported_models_base.ClipTarget(sd1_clip.SD1Tokenizer, TinySD1ClipModel)


class TinySDXL(comfy.supported_models.SDXL):
    """SDXL model family (model_base.SDXL, pooled + size ADM) with the tiny UNet and tiny CLIP-L/CLIP-G."""

    avi_tiny_model = True
    unet_config = {
        "model_channels": 32,
        "use_linear_in_transformer": True,
        "context_dim": SDXL_CONTEXT_DIM,
        "adm_in_channels": SDXL_ADM_CHANNELS,
        "use_temporal_attention": False,
    }
    unet_extra_config = {"num_heads": -1, "num_head_channels": 16}

    def clip_target(self, state_dict={}):
        """The real SDXL tokenizers with the tiny text encoders."""
        return comfy.supported_models_base.ClipTarget(sdxl_clip.SDXLTokenizer, TinySDXLClipModel)


# model_class -> (config class, the UNet configuration it is built from)
MODEL_CLASSES = {"sd15": (TinySD15, SD15_UNET_CONFIG), "sdxl": (TinySDXL, SDXL_UNET_CONFIG)}
CONFIGS = tuple(config for config, _ in MODEL_CLASSES.values())


def register_configs() -> None:
    """Put the tiny SD1.5/SDXL config classes first in comfy.supported_models.models (idempotent)."""
    tiny_models.register(CONFIGS)


def _build_unet(config) -> comfy.model_patcher.ModelPatcher:
    """The config's own model class (BaseModel or model_base.SDXL, eps), unseeded, as ComfyUI wraps it."""
    config.set_inference_dtype(tiny_models.STORAGE_DTYPE, torch.float32)
    cpu = torch.device("cpu")
    # get_model with no state dict: what the checkpoint loader calls, minus the weights.
    model = config.get_model({}, device=cpu)
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def _build_clip(config, seed: int) -> comfy.sd.CLIP:
    """The config's tiny text encoder(s) with random seeded weights and the real tokenizer(s)."""
    cpu = torch.device("cpu")
    clip = comfy.sd.CLIP(config.clip_target(), model_options={
        "dtype": tiny_models.STORAGE_DTYPE, "load_device": cpu, "offload_device": cpu, "initial_device": cpu})
    tiny_models.init_weights(clip.cond_stage_model, seed)
    return clip


def _build_vae(config, seed: int) -> comfy.sd.VAE:
    """tiny_models' TAESD, rescaled so the config's raw latents decode as SD1.5's do."""
    vae = tiny_models.build_vae(seed)
    # TAESD decodes (raw - shift) * vae_scale and encodes to raw / vae_scale: SDXL's raw latents are
    # 0.18215 / 0.13025 times SD1.5's for the same model-space latent.
    ratio = config.latent_format.scale_factor / comfy.latent_formats.SD15().scale_factor
    with torch.no_grad():
        vae.first_stage_model.vae_scale.mul_(ratio)
    return vae


def balance_adm(unet: torch.nn.Module, pooled_dim: int) -> None:
    """Scale the pooled columns of the ADM input layer so the pooled output carries half its variance."""
    # As in the real SDXL (1280 of 2816 inputs); with 64 of 1600 inputs and 1/sqrt(fan-in) weights,
    # the pooled output would barely reach the prediction.
    first = unet.label_emb[0][0]
    sizes = first.in_features - pooled_dim
    with torch.no_grad():
        first.weight[:, :pooled_dim] *= (sizes / pooled_dim) ** 0.5


def write_checkpoint(path: str, model_class: str, seed: int = 0) -> str:
    """Write a tiny "sd15" or "sdxl" checkpoint with ComfyUI's own save_checkpoint, atomically; return path."""
    if model_class not in MODEL_CLASSES:
        raise ValueError(f"model_class must be one of {sorted(MODEL_CLASSES)}, got {model_class!r}")
    register_configs()  # a later stock load in this process detects the file
    config_class, unet_config = MODEL_CLASSES[model_class]

    def build():
        model = _build_unet(config_class(unet_config))
        tiny_models.init_weights(model.model.diffusion_model, seed)
        tiny_models.make_crude_denoiser(model.model.diffusion_model, "eps")
        if model_class == "sdxl":
            balance_adm(model.model.diffusion_model, SDXL_POOLED_DIM)
        return model, _build_clip(config_class(unet_config), seed + 1), _build_vae(config_class(unet_config), seed + 2)

    return tiny_models.save_atomically(path, build)


def load_checkpoint(path: str):
    """(model_patcher, clip, vae) from a checkpoint through ComfyUI's checkpoint loader."""
    register_configs()
    return tiny_models.load_tiny_checkpoint(path)
