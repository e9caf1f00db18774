"""Tiny real SD2-family models for tests and the demo: ComfyUI's own classes, random seeded weights."""
# Import only once ComfyUI is importable with its arguments set (devkit.comfy_host.prepare, or
# inside a running ComfyUI): this module subclasses comfy.supported_models.SD20 at import time.
import contextlib
import importlib.util
import math
import os
import sys

import torch

import comfy.model_base
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import comfy.supported_models_base
import comfy.taesd.taesd
from comfy.text_encoders import sd2_clip

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK_DEMO_MODELS = os.path.join(REPO_ROOT, "nodes", "demo_models.py")
_loaded_demo_models: list = []


def pack_demo_models():
    """The pack's nodes/demo_models.py: the module ComfyUI loaded with the pack, else that file loaded by path."""
    target = os.path.realpath(PACK_DEMO_MODELS)
    for module in list(sys.modules.values()):
        if os.path.realpath(getattr(module, "__file__", None) or "") == target and hasattr(module, "DEMO_MODELS"):
            return module
    if not _loaded_demo_models:
        # By path, not as a package: the repository's nodes/ would shadow ComfyUI's nodes module.
        spec = importlib.util.spec_from_file_location("avi_pack_demo_models", target)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded_demo_models.append(module)
    return _loaded_demo_models[0]


# The tiny SD2 text encoder is the demo models' (one tiny CLIP for the random test models and the trained ones).
TINY_CONTEXT_DIM = pack_demo_models().TINY_CONTEXT_DIM
TINY_CLIP_CONFIG = pack_demo_models().TINY_CLIP_CONFIG
TinySD2ClipModel = pack_demo_models().TinySD2ClipModel

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
    "num_res_blocks": [1, 1, 1],
    # Attention only at the lowest level (a quarter of the latent's size): at 512 px, 64x64 or
    # 32x32 tokens would cost seconds or half a second a step on a CPU.
    "transformer_depth": [0, 0, 1],
    "transformer_depth_output": [0, 0, 0, 0, 1, 1],
    "channel_mult": [1, 2, 2],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": True,
    "context_dim": TINY_CONTEXT_DIM,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}

# Weights are stored in half precision (small file); loading casts them back exactly.
STORAGE_DTYPE = torch.float16


class TinySD2(comfy.supported_models.SD20):
    """SD2 model family with a tiny UNet (32 channels, three levels) and a tiny text encoder."""

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
        # SD20 probes output_blocks.11, which the three-level tiny UNet does not have.
        if "v_pred" in state_dict:
            return comfy.model_base.ModelType.V_PREDICTION
        return comfy.model_base.ModelType.EPS

    def clip_target(self, state_dict={}):
        """The real SD2 tokenizer with the tiny SD2 text encoder."""
        return comfy.supported_models_base.ClipTarget(sd2_clip.SD2Tokenizer, TinySD2ClipModel)


# The shipped trained digits model (devkit/train_tiny_digits.py; the pack's demo model, config class
# AVIDemoTinyDigitsSD2 in nodes/demo_models.py): 64-channel UNet on 16x16 latents, attention at 8x8.
DIGITS_UNET_CONFIG = {**TINY_UNET_CONFIG, "model_channels": 64, "num_res_blocks": [1, 1], "channel_mult": [1, 1],
                      "transformer_depth": [0, 1], "transformer_depth_output": [0, 0, 1, 1]}


# The shipped people model (devkit/train_tiny_people.py; config class AVIDemoTinyPeopleSD2 in nodes/demo_models.py):
# 64 channels on 16x16 latents and 128 at 8x8, attention at both levels.
PEOPLE_UNET_CONFIG = {**TINY_UNET_CONFIG, "model_channels": 64, "num_res_blocks": [1, 1], "channel_mult": [1, 2],
                      "transformer_depth": [1, 1], "transformer_depth_output": [1, 1, 1, 1]}


TINY_CONFIGS = (TinySD2,)


def register(configs) -> None:
    """Put these tiny config classes first in comfy.supported_models.models (idempotent)."""
    models = comfy.supported_models.models
    names = {c.__name__ for c in configs}
    # Match by name and marker: this file may be imported twice under different module names.
    models[:] = [m for m in models if not (getattr(m, "avi_tiny_model", False) and m.__name__ in names)]
    models[0:0] = list(configs)


def register_tiny_configs() -> None:
    """Put the tiny SD2 config classes first in comfy.supported_models.models (idempotent)."""
    register(TINY_CONFIGS)


def register_demo_configs() -> None:
    """The pack's demo config classes, as the pack registers them at load: for processes that load no pack."""
    demo = pack_demo_models()
    demo.register_configs(comfy.supported_models.models, [m.config for m in demo.DEMO_MODELS])


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


# A random UNet does not denoise: its prediction is uncorrelated with the noise and sampled
# latents blow up (raw values of several hundred). make_crude_denoiser turns the random UNet into
# a crude but stable denoiser by overwriting a few of its weights (same architecture, same keys):
#
#   eps:  eps_hat = EPS_GAIN * c_in x + PROMPT_GAIN * R   (c_in x = x / sqrt(1 + sigma^2), the UNet's input)
#   v:    v_hat   = V_GAIN * c_in x + PROMPT_GAIN * R
#
# less each channel's spatial mean. R is a random, prompt-, timestep- and position-dependent field
# of about unit variance computed by the rest of the (random) UNet through its res blocks and
# the cross-attention of its lowest level. Under ComfyUI's samplers (x = x0 + sigma * eps) the linear part alone gives
# x ~ (sigma + sqrt(1 + sigma^2))^EPS_GAIN for eps, so sampling shrinks the initial noise (std
# 14.6) to about 0.4 in model space, and x ~ sqrt(1 + sigma^2) * exp(V_GAIN * atan(sigma)) for v
# (V_PREDICTION's calculate_denoised: x / (1 + sigma^2) - v_hat * sigma / sqrt(1 + sigma^2)), to
# about 0.47; the VP-normalised latent x / sqrt(1 + sigma^2) stays near unit variance at high noise.
# Measured through the stock graph (128 px, 20 steps, cfg 7, euler and ddim, eps and v): raw final
# latents max 9-15, std 2.7-5.5; VP std at 0.8·T 0.96-1.01; mean |cat - dog| 5-7 % of the std.
#
# The identity path through the SD UNet, exact in float32:
# - conv_in writes +s*x (channels 0..3) and -s*x (4..7) from its centre tap, s = IDENTITY_SCALE;
#   its other channels stay random, so the random blocks see x.
# - input_blocks[0]'s output reaches the last output block (a ResBlock, no attention at full
#   resolution) as a skip connection (hs[0]); its 1x1 skip_connection copies the +-copies into its
#   channels 0..7, while its residual branch writes zeros there.
# - The final GroupNorm has one channel per group, so it removes each channel's spatial mean; with
#   s^2 * var(x) far below its eps (1e-5) it is linear: n = s * (x - mean) / sqrt(eps) (to 0.3 %).
#   Both copies are normalised consistently and silu(n) - silu(-n) = n exactly, so conv_out's
#   centre taps (+K, -K) read gain * (x - mean).
# - The other 24 channels of the last block come in 12 pairs (f, -f) (rows negated in the skip
#   conv and the residual conv), so conv_out reads them as silu(n) - silu(-n) = n too:
#   R is linear in per-channel normalised random features, zero-mean and bounded whatever the
#   input, which keeps sampling stable.
# Consequences: eps predictions carry no per-channel spatial mean, so the mean of each latent
# channel keeps its initial value sigma_max * mean(noise) (a few raw units); v models shrink it.
# The construction relies on float32 inference (ComfyUI's CPU default).
IDENTITY_SCALE = 2.0 ** -12
EPS_GAIN = 1.05
V_GAIN = 0.5
PROMPT_GAIN = 0.18


def make_crude_denoiser(unet: torch.nn.Module, prediction: str) -> None:
    """Overwrite a few weights of a randomly initialised openaimodel.UNetModel as described above."""
    gain = {"eps": EPS_GAIN, "v": V_GAIN}[prediction]
    conv_in = unet.input_blocks[0][0]
    res = unet.output_blocks[-1][0]
    norm, conv_out = unet.out[0], unet.out[2]
    latent, width = conv_in.in_channels, conv_in.out_channels  # 4, model_channels
    n_id = 2 * latent  # channels 0..3: +s*x, 4..7: -s*x
    pairs = (width - n_id) // 2
    plus = torch.arange(n_id, n_id + pairs)  # free channels f; their negatives follow
    minus = plus + pairs
    c, ids = torch.arange(latent), torch.arange(n_id)
    hs0 = res.channels - width  # the last block's input is cat([h, hs[0]])
    with torch.no_grad():
        conv_in.weight[:n_id] = 0
        conv_in.bias[:n_id] = 0
        conv_in.weight[c, c, 1, 1] = IDENTITY_SCALE
        conv_in.weight[c + latent, c, 1, 1] = -IDENTITY_SCALE
        skip, res_out = res.skip_connection, res.out_layers[-1]
        for layer in (skip, res_out):
            layer.weight[:n_id] = 0
            layer.bias[:n_id] = 0
            layer.weight[minus] = -layer.weight[plus]
            layer.bias[minus] = -layer.bias[plus]
        skip.weight[ids, hs0 + ids, 0, 0] = 1.0
        norm.weight.fill_(1.0)
        norm.bias.zero_()
        # conv_out's random weights (std 1/sqrt(fan-in)) rescaled: R has about unit variance.
        free = conv_out.weight[:, plus].float() * (PROMPT_GAIN * (width / pairs) ** 0.5)
        conv_out.weight.zero_()
        conv_out.bias.zero_()
        conv_out.weight[:, plus] = free.to(conv_out.weight.dtype)
        conv_out.weight[:, minus] = -free.to(conv_out.weight.dtype)
        k = gain * math.sqrt(norm.eps) / IDENTITY_SCALE
        conv_out.weight[c, c, 1, 1] = k
        conv_out.weight[c, c + latent, 1, 1] = -k


def _build_unet(prediction: str, seed: int) -> comfy.model_patcher.ModelPatcher:
    """Tiny BaseModel in storage precision, wrapped as ComfyUI wraps a loaded one."""
    config = TinySD2(TINY_UNET_CONFIG)
    config.set_inference_dtype(STORAGE_DTYPE, torch.float32)
    model_type = {"eps": comfy.model_base.ModelType.EPS, "v": comfy.model_base.ModelType.V_PREDICTION}[prediction]
    model = comfy.model_base.BaseModel(config, model_type=model_type, device=torch.device("cpu"))
    init_weights(model.diffusion_model, seed)
    make_crude_denoiser(model.diffusion_model, prediction)
    device = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


def _build_clip(seed: int) -> comfy.sd.CLIP:
    """Tiny SD2 text encoder and the real SD2 tokenizer."""
    target = TinySD2(TINY_UNET_CONFIG).clip_target()
    cpu = torch.device("cpu")
    clip = comfy.sd.CLIP(target, model_options={"dtype": STORAGE_DTYPE, "load_device": cpu, "offload_device": cpu, "initial_device": cpu})
    init_weights(clip.cond_stage_model, seed)
    return clip


def build_vae(seed: int, latent_channels: int = 4) -> comfy.sd.VAE:
    """TAESD with random weights through ComfyUI's VAE loader (detected by taesd_decoder.1.weight)."""
    taesd = comfy.taesd.taesd.TAESD(latent_channels=latent_channels)
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
def single_thread():
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
    return save_atomically(path, lambda: (_build_unet(prediction, seed), _build_clip(seed + 1), build_vae(seed + 2)))


def save_atomically(path: str, build) -> str:
    """Save the (model, clip, vae) that build() returns with ComfyUI's save_checkpoint, into a temporary file then
    renamed (never half a file at path), building on one thread; return path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with single_thread():
            model, clip, vae = build()
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
    register_demo_configs()
    # The arguments CheckpointLoaderSimple passes (nodes.py).
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
        path, output_vae=True, output_clip=True, embedding_directory=folder_paths.get_folder_paths("embeddings"))
    return model, clip, vae
