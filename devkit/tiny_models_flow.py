"""Tiny real SD3 (MMDiT) and Flux dev models for tests: ComfyUI's own classes, random seeded weights."""
# Import only once ComfyUI is importable with its arguments set (devkit.comfy_host.prepare, or
# inside a running ComfyUI): this module subclasses comfy.supported_models classes at import time.
# Weights and the VAE come from devkit/tiny_models.py (the tiny SD2 models).
import dataclasses

import torch

import comfy.latent_formats
import comfy.ldm.flux.model
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import comfy.supported_models_base
from comfy.ldm.modules.diffusionmodules import mmdit
from comfy.text_encoders import flux as flux_text
from comfy.text_encoders import sd3_clip

from devkit import tiny_models

# CLIP-L and CLIP-G shrunk as tiny_models shrinks SD2's CLIP-H, narrower (each full-vocabulary
# token table costs 49408 x width x 2 bytes); three layers because SD3 reads the penultimate ones.
TINY_CLIP_CONFIG = {**tiny_models.TINY_CLIP_CONFIG, "hidden_size": 32, "projection_dim": 32, "intermediate_size": 64}
# Overrides of comfy/text_encoders/t5_config_xxl.json, full vocabulary for the real T5 tokenizer.
TINY_T5_CONFIG = {"d_model": 32, "d_ff": 64, "d_kv": 16, "num_heads": 2, "num_layers": 1}

# Both DiTs patchify 2x2: one token holds PATCH = 16 channels x 2 x 2 latent values.
PATCH = 16 * 2 * 2
HIDDEN = 128  # PATCH identity channels (see make_crude_velocity) and as many free ones
SD3_DEPTH = HIDDEN // 64  # MMDiT fixes hidden = 64 x depth and one head per 64 channels
# SD3ClipModel pads [CLIP-L, CLIP-G] token features to 4096 (T5-XXL's width) and pools [L, G].
SD3_CONTEXT_WIDTH = 4096
SD3_POOLED = 2 * TINY_CLIP_CONFIG["hidden_size"]
# A stored position table (as SD3 checkpoints have) of 64 x 64 tokens: up to 1024 px, SD3's own size.
SD3_POS_GRID = 64

# What comfy.model_detection.detect_unet_config reads back from each tiny checkpoint, once the config
# class has applied its unet_extra_config: the model written and the model loaded are built from the
# same configuration.
SD3_UNET_CONFIG = {
    "in_channels": 16,
    "patch_size": 2,
    "out_channels": 16,
    "depth": SD3_DEPTH,
    "input_size": None,
    "adm_in_channels": SD3_POOLED,
    "context_embedder_config": {"target": "torch.nn.Linear", "params": {"in_features": SD3_CONTEXT_WIDTH, "out_features": HIDDEN}},
    "num_patches": SD3_POS_GRID ** 2,
    "pos_embed_max_size": SD3_POS_GRID,
    "pos_embed_scaling_factor": None,
    "x_block_self_attn_layers": [],
}
# Flux detection fixes rotary axes [16, 56, 56] (for 3072 channels) and 24 heads (newer hosts: width //
# sum(axes), 1 here); TinyFlux overrides both.
FLUX_UNET_CONFIG = {
    "image_model": "flux",
    "axes_dim": [16, 56, 56],
    "num_heads": 24,
    "mlp_ratio": 4.0,
    "theta": 10000,
    "out_channels": 16,
    "qkv_bias": True,
    "in_channels": 16,
    "hidden_size": HIDDEN,
    "context_in_dim": TINY_T5_CONFIG["d_model"],
    "patch_size": 2,
    "vec_in_dim": TINY_CLIP_CONFIG["hidden_size"],
    "depth": 1,
    "depth_single_blocks": 1,
    "guidance_embed": True,
    # Newer hosts' FluxParams require the text-id layout and have the Ovis switches: what their detection
    # gives a plain Flux checkpoint, added only where this host's FluxParams has the field.
    **{name: value for name, value in {"txt_ids_dims": [], "yak_mlp": False, "txt_norm": False}.items()
       if name in {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}},
}


class TinySD3ClipModel(sd3_clip.SD3ClipModel):
    """SD3's CLIP-L + CLIP-G (penultimate layers), tiny, without T5 (its width must be 4096)."""

    def __init__(self, device="cpu", dtype=None, model_options={}):
        # SDClipModel applies "<model_name>_model_config" entries over the json configuration.
        model_options = {**model_options, "clip_l_model_config": dict(TINY_CLIP_CONFIG), "clip_g_model_config": dict(TINY_CLIP_CONFIG)}
        super().__init__(clip_l=True, clip_g=True, t5=False, device=device, dtype=dtype, model_options=model_options)


class TinyFluxClipModel(flux_text.FluxClipModel):
    """Flux's CLIP-L (pooled) + T5-XXL (tokens), tiny."""

    def __init__(self, device="cpu", dtype=None, model_options={}):
        model_options = {**model_options, "clip_l_model_config": dict(TINY_CLIP_CONFIG), "t5xxl_model_config": dict(TINY_T5_CONFIG)}
        super().__init__(device=device, dtype=dtype, model_options=model_options)


class TinySD3(comfy.supported_models.SD3):
    """SD3 family (model_base.SD3, flow, shift 3) with a two-block MMDiT and tiny CLIP-L/G."""

    avi_tiny_model = True
    # Real SD3 checkpoints have 24 or more blocks: depth 2 matches only the tiny one.
    unet_config = {"in_channels": 16, "pos_embed_scaling_factor": None, "depth": SD3_DEPTH}

    def clip_target(self, state_dict={}):
        """The real SD3 tokenizers with the tiny text encoders."""
        return comfy.supported_models_base.ClipTarget(sd3_clip.SD3Tokenizer, TinySD3ClipModel)


class TinyFlux(comfy.supported_models.Flux):
    """Flux dev family (model_base.Flux, guidance embedding, ModelSamplingFlux shift 1.15), 128 channels wide."""

    avi_tiny_model = True
    # Real Flux checkpoints are 3072 channels wide.
    unet_config = {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "hidden_size": HIDDEN}
    unet_extra_config = {"num_heads": 2, "axes_dim": [16, 24, 24]}  # 64-channel heads, rotary axes summing to 64

    def clip_target(self, state_dict={}):
        """The real Flux tokenizers with the tiny text encoders."""
        return comfy.supported_models_base.ClipTarget(flux_text.FluxTokenizer, TinyFluxClipModel)


# model_class -> (config class, the DiT configuration it is built from)
MODEL_CLASSES = {"sd3": (TinySD3, SD3_UNET_CONFIG), "flux": (TinyFlux, FLUX_UNET_CONFIG)}
CONFIGS = tuple(config for config, _ in MODEL_CLASSES.values())


def register_configs() -> None:
    """Put the tiny SD3/Flux config classes first in comfy.supported_models.models (idempotent)."""
    tiny_models.register(CONFIGS)


# A random DiT does not denoise: its velocity is a bounded random field (the final LayerNorm bounds
# it), so a flow sampler stays finite, but the latent keeps the noise's scale (unit std in model
# space, so a VP std of 1 / 0.82 ≈ 1.2 at 0.8·T). make_crude_velocity overwrites a few weights (same architecture, same keys) so that
#
#   v_hat ≈ x + R
#
# with R a bounded random field that depends on the prompt, the time (and Flux's guidance) through
# the rest of the random DiT. Under a flow sampler (dx/dσ = v_hat from σ = 1 to 0) the linear part
# gives x(σ) = x(1) · exp(σ - 1): the noise shrinks to about 0.4 and the VP latent
# x / sqrt((1-σ)² + σ²) keeps about unit variance at 0.8·T.
#
# The identity path:
# - the patch embedding writes EMBED_GAIN · x of each of a token's PATCH latent values into its own
#   channel (channels 0..PATCH-1); the other channels stay random, so the blocks see x;
# - no block writes into those channels (the output rows of every residual write are zero), so the
#   stream keeps the copy; SD3's stored position table is zero there;
# - the final layer's modulation leaves them alone (zero shift and scale rows), and its linear
#   reads channel j into output j with weight READOUT. The final LayerNorm divides each token by its
#   own spread, which the free channels (random, O(1)) dominate, so the gain stays near READOUT ·
#   EMBED_GAIN / spread, less each token's channel mean: crude, but linear in x and stable.
# Measured (128 px, seed 0): fitted slope of v_hat on x 0.82-1.26 (Flux), 0.86-1.43 (SD3) from σ = 1 to 0.2, rising
# as x shrinks (the copy's share of the spread falls), residual R std 0.29-0.31; through the stock graph (20 steps,
# euler/simple, euler/normal, ddim/ddim_uniform; Flux cfg 1 + FluxGuidance 3.5, SD3 cfg 5) final model-space std
# 0.37-0.39 (Flux), 0.58-0.64 (SD3), VP std at 0.8·T 0.99-1.01, mean |cat - dog| 11-13 % of the std.
EMBED_GAIN = 1.0
READOUT = 1.0  # K: with EMBED_GAIN 1 the slope comes out near 1 (measured above)
PROMPT_GAIN = 0.2


def make_crude_velocity(embed_weight, embed_bias, final_layer, out_rows, writes, readout: float) -> None:
    """Overwrite a few weights of a randomly initialised DiT as described above (embed_weight: [hidden, PATCH])."""
    ids = torch.arange(PATCH)
    hidden = embed_weight.shape[0]
    with torch.no_grad():
        embed_weight[:PATCH] = 0
        embed_weight[ids, ids] = EMBED_GAIN
        embed_bias[:PATCH] = 0
        for layer in writes:
            layer.weight[:PATCH] = 0
            if layer.bias is not None:
                layer.bias[:PATCH] = 0
        modulation = final_layer.adaLN_modulation[-1]  # rows: shift (hidden), then scale (hidden)
        for rows in (ids, ids + hidden):
            modulation.weight[rows] = 0
            modulation.bias[rows] = 0
        linear = final_layer.linear
        # Random readout of the free channels (std 1/sqrt(hidden) each), rescaled: R of about PROMPT_GAIN.
        free = linear.weight[:, PATCH:].float() * (PROMPT_GAIN * (hidden / (hidden - PATCH)) ** 0.5)
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[:, PATCH:] = free.to(linear.weight.dtype)
        linear.weight[out_rows, ids] = readout


def unit_norm_scales(module: torch.nn.Module) -> None:
    """Set RMSNorm scales to one: init_weights treats 1-D tensors not named weight as biases (~0.02)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("norm.scale"):
                p.fill_(1.0)


def _shape_sd3(dit) -> None:
    """SD3's crude velocity and its position table (sin-cos on the free channels, as SD3 stores one)."""
    # Unpatchify reads token features as (row, column, channel); the patch conv's inputs are (channel, row, column).
    c, p, q = torch.meshgrid(torch.arange(16), torch.arange(2), torch.arange(2), indexing="ij")
    out_rows = ((p * 2 + q) * 16 + c).flatten()
    writes = [m for block in dit.joint_blocks for m in (block.x_block.attn.proj, block.x_block.mlp.fc2)]
    proj = dit.x_embedder.proj
    make_crude_velocity(proj.weight.view(proj.weight.shape[0], -1), proj.bias, dit.final_layer, out_rows, writes, READOUT)
    table = mmdit.get_2d_sincos_pos_embed_torch(HIDDEN - PATCH, SD3_POS_GRID, SD3_POS_GRID)
    with torch.no_grad():
        dit.pos_embed.zero_()  # a buffer: init_weights leaves torch.empty's contents
        dit.pos_embed[0, :, PATCH:] = table.to(dit.pos_embed.dtype)


def _shape_flux(dit) -> None:
    """Flux's crude velocity: tokens are (channel, row, column) on the way in and out."""
    writes = [m for block in dit.double_blocks for m in (block.img_attn.proj, block.img_mlp[2])]
    writes += [block.linear2 for block in dit.single_blocks]
    make_crude_velocity(dit.img_in.weight, dit.img_in.bias, dit.final_layer, torch.arange(PATCH), writes, READOUT)
    unit_norm_scales(dit)


def _build_model(model_class: str, seed: int) -> comfy.model_patcher.ModelPatcher:
    """The tiny DiT in storage precision with the crude velocity, wrapped as ComfyUI wraps a loaded one."""
    config_class, unet_config = MODEL_CLASSES[model_class]
    config = config_class(unet_config)
    config.set_inference_dtype(tiny_models.STORAGE_DTYPE, torch.float32)
    cpu = torch.device("cpu")
    # get_model with no state dict: what the checkpoint loader calls, minus the weights.
    model = config.get_model({}, device=cpu)
    tiny_models.init_weights(model.diffusion_model, seed)
    {"sd3": _shape_sd3, "flux": _shape_flux}[model_class](model.diffusion_model)
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def _build_clip(model_class: str, seed: int) -> comfy.sd.CLIP:
    """The class's tiny text encoders with random seeded weights and the real tokenizers."""
    config_class, unet_config = MODEL_CLASSES[model_class]
    cpu = torch.device("cpu")
    clip = comfy.sd.CLIP(config_class(unet_config).clip_target(), model_options={
        "dtype": tiny_models.STORAGE_DTYPE, "load_device": cpu, "offload_device": cpu, "initial_device": cpu})
    tiny_models.init_weights(clip.cond_stage_model, seed)
    return clip


def _build_vae(model_class: str, seed: int) -> comfy.sd.VAE:
    """tiny_models' TAESD with 16 latent channels, its raw units mapped to the class's latent format."""
    vae = tiny_models.build_vae(seed, latent_channels=16)
    fmt = MODEL_CLASSES[model_class][0].latent_format()
    # TAESD decodes (raw - vae_shift) · vae_scale and encodes to raw / vae_scale + vae_shift: with the
    # format's own shift and its scale relative to SD's, a model-space latent decodes as tiny SD2's does.
    with torch.no_grad():
        vae.first_stage_model.vae_scale.mul_(fmt.scale_factor / comfy.latent_formats.SD15().scale_factor)
        vae.first_stage_model.vae_shift.fill_(fmt.shift_factor)
    return vae


def write_checkpoint(path: str, model_class: str, seed: int = 0) -> str:
    """Write a tiny "sd3" or "flux" checkpoint with ComfyUI's own save_checkpoint, atomically; return path."""
    if model_class not in MODEL_CLASSES:
        raise ValueError(f"model_class must be one of {sorted(MODEL_CLASSES)}, got {model_class!r}")
    register_configs()  # a later stock load in this process detects the file
    return tiny_models.save_atomically(
        path, lambda: (_build_model(model_class, seed), _build_clip(model_class, seed + 1), _build_vae(model_class, seed + 2)))


def load_checkpoint(path: str):
    """(model_patcher, clip, vae) from a checkpoint through ComfyUI's checkpoint loader."""
    register_configs()
    return tiny_models.load_tiny_checkpoint(path)
