"""What the pack needs to know about a ComfyUI MODEL: its prediction kind, latent mapping and schedule."""
import inspect

import torch

import comfy.model_sampling
import comfy.sample
import comfy.samplers

from ..avi_core.conventions import LAST_TIMESTEP, families_differ

# What newer ComfyUI's EmptyLatentImage records in the LATENT and its fix_empty_latent_channels takes.
LATENT_RATIO_KEYS = ("downscale_ratio_spacial", "downscale_ratio_temporal")


# Sampling classes AVI cannot convert: x0 predictors and image-to-image classes (some subclass EPS or CONST), EDM,
# and CogVideoX's V_PREDICTION_DDPM (unscaled input). Newer ComfyUI adds some of them: each is looked up by name.
REFUSED_SAMPLING = ("EDM", "X0", "COSMOS_RFLOW", "IMG_TO_IMG", "IMG_TO_IMG_FLOW", "IMG_TO_IMG_VELOCITY", "V_PREDICTION_DDPM")


def model_kind(model) -> str:
    """"eps", "v" or "flow" from the model's sampling class; other parameterisations are refused."""
    ms = model.get_model_object("model_sampling")
    # Patched models (ModelSamplingDiscrete & co.) mix a prediction class into their own: name the prediction class.
    name = next((c.__name__ for c in type(ms).__mro__ if c.__name__ in REFUSED_SAMPLING + ("EPS", "V_PREDICTION", "CONST")),
                type(ms).__name__)
    refused = tuple(getattr(comfy.model_sampling, n) for n in REFUSED_SAMPLING if hasattr(comfy.model_sampling, n))
    if isinstance(ms, refused):
        raise ValueError(f"AVI supports eps-, v-prediction and flow models; this model samples as {name}")
    if isinstance(ms, comfy.model_sampling.CONST):
        # Newer ComfyUI's CONST draws x = (1 − σ)·x0 + σ·s·ε with s = noise_scale; the VP conversion assumes s = 1.
        scale = float(getattr(ms, "noise_scale", 1.0))
        if scale != 1.0:
            raise ValueError(f"AVI supports flow models whose noise has unit scale; this model samples with noise_scale {scale:g}")
        return "flow"
    if isinstance(ms, comfy.model_sampling.V_PREDICTION):
        return "v"
    if isinstance(ms, comfy.model_sampling.EPS):
        return "eps"
    raise ValueError(f"AVI supports eps-, v-prediction and flow models; this model samples as {name}")


def model_family(model) -> str:
    """The stock ComfyUI model class a MODEL was detected as ("SD15", "SD20", "SDXL", "SD3", "Flux", ...); "" if unknown.

    SD1.5 and SD2 share one latent format and prediction kind, so only the config class tells their latents apart.
    Fine-tunes and merges detect as their base class; a subclass from outside ComfyUI is named by its stock base.
    """
    config = getattr(getattr(model, "model", None), "model_config", None)
    for cls in type(config).__mro__ if config is not None else ():
        if cls.__module__.startswith("comfy.") and cls.__name__ != "BASE" and cls is not object:
            return cls.__name__
    return ""


def latent_affine(model, channels: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(scale [C], shift [C], name) with process_in(raw) = raw·scale + shift, checked on a random probe."""
    fmt = model.get_model_object("latent_format")
    zero, one = torch.zeros(1, channels, 1, 1), torch.ones(1, channels, 1, 1)
    shift = fmt.process_in(zero).flatten().float()
    scale = fmt.process_in(one).flatten().float() - shift
    probe = torch.randn(1, channels, 3, 3, generator=torch.Generator().manual_seed(0))
    expected = probe * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
    affine = fmt.process_in(probe.clone()).shape == probe.shape and torch.allclose(fmt.process_in(probe.clone()), expected, atol=1e-5)
    if not affine or torch.any(scale == 0):
        raise ValueError(f"the latent format {type(fmt).__name__} is not a per-channel affine map; AVI cannot convert it")
    return scale, shift, type(fmt).__name__


def sampler_sigmas(model, steps: int, sampler_name: str, scheduler: str) -> torch.Tensor:
    """The σ schedule KSampler uses for these settings (some samplers add a step), on the CPU."""
    sampler = comfy.samplers.KSampler(model, steps=steps, device="cpu", sampler=sampler_name, scheduler=scheduler,
                                      denoise=1.0, model_options=model.model_options)
    return sampler.sigmas.cpu().float()


def ratio_arguments(fix, latent: dict) -> dict:
    """The downscale ratios the LATENT records that the host's fix_empty_latent_channels takes (v0.3.75: none)."""
    accepted = inspect.signature(fix).parameters
    return {k: latent[k] for k in LATENT_RATIO_KEYS if k in accepted and latent.get(k) is not None}


def fix_empty_latent(model, latent: dict, name: str = "latent_image") -> torch.Tensor:
    """An empty latent resized to the model's channels (and, on newer hosts, downscale ratio), as KSampler does; a latent
    the model cannot take (other channels) or AVI cannot decompose (under 2×2 cells) is refused, naming both."""
    fix = comfy.sample.fix_empty_latent_channels
    samples = fix(model, latent["samples"], **ratio_arguments(fix, latent))
    fmt = model.get_model_object("latent_format")
    channels = getattr(fmt, "latent_channels", None)
    if samples.ndim != 4:
        raise ValueError(f"{name} must be an image latent [B, C, H, W]; got one of shape {tuple(samples.shape)}")
    if channels and samples.shape[1] != channels:
        raise ValueError(f"{name} has {samples.shape[1]} channels; this model ({type(fmt).__name__} latents) takes {channels}: "
                         f"use Empty Latent Image, or VAE Encode with the VAE of this model's checkpoint")
    h, w = samples.shape[-2:]
    ratio = latent.get("downscale_ratio_spacial") or 8  # newer hosts record the VAE's; SD-family VAEs scale by 8
    if min(h, w) < 2:
        raise ValueError(f"{name} is {w}×{h} latent cells ({w * ratio}×{h * ratio} px); AVI decomposes each channel as an "
                         f"H×W matrix and needs at least 2×2 cells ({2 * ratio}×{2 * ratio} px)")
    return samples


def timestep_of(model):
    """σ → the model's timestep on ComfyUI's 0..999 scale (T − 1 = 999), whatever range its own timesteps use.

    Discrete models count 0..999; SD3's flow sampling counts σ·1000 and Flux's counts σ's unshifted time in 0..1,
    so the model's own timestep at σ_max sets the scale: a timestep fraction means the same on every model.
    """
    ms = model.get_model_object("model_sampling")
    top = float(ms.timestep(torch.as_tensor(ms.sigma_max, dtype=torch.float32).reshape(1))[0])
    scale = LAST_TIMESTEP / top if top > 0 else 1.0
    return lambda sigma: ms.timestep(torch.as_tensor(sigma, dtype=torch.float32)).double() * scale


def check_continues(model, info, sampler_name: str, scheduler: str) -> None:
    """The model continues a capture's trajectory (info: its CaptureInfo): same kind and class, same σ at every step."""
    if model_kind(model) != info.model_kind:
        raise ValueError(f"the latent was captured from a {info.model_kind} model; this model is {model_kind(model)}")
    family = model_family(model)
    if families_differ(family, info.model_family):
        raise ValueError(f"the latent was captured with the model class {info.model_family}; this model is {family}: "
                         "continue it with a model of the class it was captured with")
    sigmas = sampler_sigmas(model, info.steps, sampler_name, scheduler)
    if sigmas.shape[0] != len(info.sigmas) or not torch.allclose(sigmas, torch.tensor(info.sigmas), rtol=1e-4, atol=1e-6):
        raise ValueError("this model's noise schedule differs from the capture's; connect the model the latent was captured with")
