"""Invert Latent (DDIM): an encoded image walked back along the deterministic sampler's trajectory to its starting noise."""
import math
from dataclasses import dataclass

import torch

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
from comfy_api.v0_0_2 import io

from ..avi_core.conventions import families_differ
from ..avi_core.inversion import REFINE_MAX, ddim_invert, evaluations
from .latent_meta import checksum
from .model_info import fix_empty_latent, latent_affine, model_family, model_kind, sampler_sigmas
from .schema import schema
from .ui import CATEGORY, show_text
from .widgets import AVINode

INVERSION_KEY = "avi_inversion"
INVERTIBLE = ("ddim", "euler")  # ComfyUI's ddim is its euler step: the update ddim_invert solves backwards
DEFAULT_REFINE = 2


@dataclass(frozen=True)
class InversionInfo:
    """The schedule an inverted latent belongs to; its samples are the noise the sampler scales at sigmas[0]."""

    steps: int
    sampler: str
    scheduler: str
    sigmas: tuple
    cfg: float
    refine: int
    model_kind: str
    latent_format: str
    checksum: tuple
    model_family: str = ""  # model_info.model_family of the inverting model

    def describe(self) -> str:
        """The trajectory as run: ComfyUI's ddim_uniform rounds its stride, so its schedule may hold other than `steps` steps."""
        run = len(self.sigmas) - 1
        asked = "" if run == self.steps else f" (steps {self.steps}: the {self.scheduler} schedule has {run} on this model)"
        return f"{run} {self.sampler}/{self.scheduler} steps{asked}, cfg {self.cfg:g}, refine {self.refine}"

    def start_label(self) -> str:
        """What Capture records as its start: equal for two captures from one inverted latent."""
        return f"inverted latent ({self.describe()}; checksum {self.checksum[1]:.6g}/{self.checksum[2]:.6g})"


def read_inversion(latent: dict):
    """The inversion record of a LATENT, or None for any other latent; refuses a record whose samples were changed."""
    info = latent.get(INVERSION_KEY) if isinstance(latent, dict) else None
    if info is None:
        return None
    if not isinstance(info, InversionInfo) or checksum(latent["samples"]) != info.checksum:
        raise ValueError("latent_image was changed after Invert Latent made it (its samples no longer match the inversion); "
                         "connect Invert Latent's output straight to Capture Latent at Step")
    return info


def same_step(a: str, b: str, masked: bool) -> bool:
    """Whether the host's samplers a and b take the same step: ComfyUI's ddim is its euler function, drawing other
    noise only for a noise mask's inpainting (comfy.samplers.sampler_object), so unmasked they retrace one trajectory."""
    if a == b:
        return True
    try:
        first, second = comfy.samplers.sampler_object(a), comfy.samplers.sampler_object(b)
    except Exception:  # a name the host does not know: only itself matches
        return False
    return (getattr(first, "sampler_function", None) is not None and first.sampler_function is second.sampler_function
            and first.extra_options == second.extra_options and (not masked or first.inpaint_options == second.inpaint_options))


def check_inversion_fits(info: InversionInfo, model, steps: int, sampler_name: str, scheduler: str, sigmas: torch.Tensor,
                         masked: bool = False) -> None:
    """A capture continues the inverted trajectory: same model class, steps, sampler (or one taking the same step) and schedule."""
    kind = model_kind(model)
    fmt = type(model.get_model_object("latent_format")).__name__
    if (kind, fmt) != (info.model_kind, info.latent_format):
        raise ValueError(f"latent_image was inverted with a {info.model_kind} {info.latent_format} model; this model is "
                         f"{kind} {fmt}: invert with the model you capture with")
    family = model_family(model)
    if families_differ(family, info.model_family):
        raise ValueError(f"latent_image was inverted with the model class {info.model_family}; this model is {family}: "
                         "invert with the model you capture with")
    retracing = " or ".join(repr(s) for s in INVERTIBLE if same_step(s, info.sampler, masked))
    for name, given, inverted, fits in (("steps", steps, info.steps, repr(info.steps)), ("sampler", sampler_name, info.sampler, retracing),
                                        ("scheduler", scheduler, info.scheduler, repr(info.scheduler))):
        if given != inverted and not (name == "sampler" and same_step(given, inverted, masked)):
            raise ValueError(f"latent_image was inverted along {info.describe()}, but this capture uses {name} {given!r}; "
                             f"set {name} to {fits} (the capture must retrace the inverted trajectory) or invert again")
    if len(sigmas) != len(info.sigmas) or not torch.allclose(sigmas, torch.tensor(info.sigmas), rtol=1e-4, atol=1e-6):
        raise ValueError("this model's noise schedule differs from the one the latent was inverted along; use the model it was inverted with")


def check_invertible(sigmas: torch.Tensor, steps: int, scheduler: str) -> None:
    """Every step lowers σ: past the model's count of noise levels some schedulers (simple) repeat them, and a step that
    stays put cannot be solved for its start."""
    if bool((sigmas[1:] < sigmas[:-1]).all()):
        return
    levels = int(torch.unique(sigmas[sigmas > 0]).numel())
    raise ValueError(f"the {scheduler} schedule repeats noise levels at steps {steps} (it holds {levels} distinct ones on this "
                     f"model); inversion needs every step to lower σ: use at most {levels} steps or another scheduler")


def noise_affine(model, sigmas: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) with the sampler's start x = a·noise + b for an empty latent: the host's own noise_scaling at sigmas[0]."""
    ms = model.get_model_object("model_sampling")
    sigma0 = float(sigmas[0])
    max_sigma = float(ms.sigma_max)
    max_denoise = math.isclose(max_sigma, sigma0, rel_tol=1e-05) or sigma0 > max_sigma  # as comfy.samplers.Sampler decides
    zeros = torch.zeros_like(like)
    sigma = torch.tensor([sigma0], dtype=like.dtype, device=like.device)
    b = ms.noise_scaling(sigma, zeros.clone(), zeros.clone(), max_denoise)
    a = ms.noise_scaling(sigma, torch.ones_like(like), zeros.clone(), max_denoise) - b
    return a, b


def inversion_sampler(refine: int, seen: dict) -> "comfy.samplers.KSAMPLER":
    """A KSAMPLER run on the reversed schedule (σ from 0 up): it inverts its input and keeps the result in seen["x"]."""
    def invert(model, x, sigmas, extra_args=None, callback=None, disable=None):
        extra_args = extra_args or {}
        s_in = x.new_ones([x.shape[0]])
        denoise = lambda v, sigma: model(v, sigma * s_in, **extra_args)  # noqa: E731
        report = (lambda n, v: callback({"x": v, "i": n, "sigma": sigmas[n + 1], "sigma_hat": sigmas[n + 1], "denoised": v})
                  if callback is not None else None)
        seen["x"] = ddim_invert(denoise, x, sigmas.flip(0), refine, callback=report)
        return seen["x"]
    return comfy.samplers.KSAMPLER(invert)


def invert_latent(model, latent: torch.Tensor, positive, negative, cfg: float, sigmas: torch.Tensor, refine: int, seed: int = 0):
    """The model-space latent at sigmas[0] whose trajectory over sigmas ends at `latent` (raw VAE units)."""
    seen = {}
    steps = len(sigmas) - 1
    preview = latent_preview.prepare_callback(model, steps)
    noise = torch.zeros_like(latent)
    # The sampler machinery sees an ascending schedule from σ = 0, where the start is the clean latent
    # itself; its returned samples are discarded (at a flow model's σ = 1 they are divided by zero).
    comfy.sample.sample_custom(model, noise, cfg, inversion_sampler(refine, seen), sigmas.flip(0), positive, negative, latent,
                               callback=preview, disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    return seen["x"].float().cpu()


class InvertLatent(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVIInvertLatent",
            display_name="Invert Latent (DDIM)",
            category=CATEGORY,
            description=(
                "DDIM inversion: walks a LATENT from VAE Encode back along the ddim/euler trajectory of the model's own σ schedule "
                "to the noise it would start from. Connect the result to Capture Latent at Step's latent_image (for the original "
                "and the target capture alike) to edit a real image; the captures then start from it instead of the seed's noise."
            ),
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model the image will be edited with."),
                io.Conditioning.Input("positive", tooltip="A prompt describing the image, usually the original prompt."),
                io.Conditioning.Input("negative", tooltip="The negative prompt (used only with cfg above 1)."),
                io.Latent.Input("latent", tooltip="The image to edit, from VAE Encode (its size must fit Φ)."),
                io.Int.Input("steps", default=50, min=1, max=10000, tooltip="Steps of the trajectory; the captures must use the same (paper: 50)."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Guidance of the inversion: set it to the captures' cfg (default 7.5, as Capture's). An image "
                                       "inverted at one cfg and sampled at another does not come back (cfg 1 is the usual inversion, "
                                       "and right only when the captures also sample at cfg 1)."),
                io.Combo.Input("sampler_name", options=list(INVERTIBLE), default="ddim",
                               tooltip="The deterministic sampler of the trajectory. ComfyUI's ddim is its euler sampler (the same "
                                       "step; only a noise mask's inpainting noise differs), so captures may use either."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="ddim_uniform",
                               tooltip="Noise schedule; the captures must use the same."),
                io.Int.Input("refine", default=DEFAULT_REFINE, min=0, max=REFINE_MAX,
                             tooltip="Fixed-point iterations per step: 0 is plain DDIM inversion (the paper's); each one more "
                                     "model evaluation per step makes the inverse step more exact, so the image comes back closer."),
            ],
            outputs=[io.Latent.Output("inverted", display_name="inverted",
                                      tooltip="The starting noise of the image's trajectory, with the schedule it belongs to. "
                                              "Connect to Capture Latent at Step's latent_image.")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent, steps, cfg, sampler_name, scheduler, refine=DEFAULT_REFINE) -> io.NodeOutput:
        if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor) or latent["samples"].ndim != 4:
            raise ValueError(f"latent must be a LATENT of images [B, C, H, W] from VAE Encode; got {type(latent).__name__}")
        kind = model_kind(model)
        samples = fix_empty_latent(model, latent, "latent")
        fmt = latent_affine(model, samples.shape[1])[2]  # refuses formats the pack cannot convert
        if not bool(torch.isfinite(samples).all()):
            raise ValueError("latent holds NaN/Inf values; encode a finite image")
        sigmas = sampler_sigmas(model, steps, sampler_name, scheduler)
        check_invertible(sigmas, steps, scheduler)
        x_start = invert_latent(model, samples, positive, negative, cfg, sigmas, refine)
        a, b = noise_affine(model, sigmas, x_start)
        noise = ((x_start - b) / a).to(comfy.model_management.intermediate_device())
        info = InversionInfo(steps, sampler_name, scheduler, tuple(sigmas.tolist()), float(cfg), int(refine), kind, fmt,
                             checksum(noise), model_family(model))
        out = {k: v for k, v in latent.items() if k not in ("samples", "noise_mask")}
        out["samples"], out[INVERSION_KEY] = noise, info
        show_text(cls.hidden.unique_id, f"inverted along {info.describe()}: {evaluations(len(sigmas) - 1, refine)} model evaluations; "
                                        f"noise std {float(noise.std()):.3f}")
        return io.NodeOutput(out)
