"""Capture Latent at Step: sample from noise to the step nearest a timestep fraction and keep that latent."""
import torch

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
from comfy_api.v0_0_2 import io

from ..avi_core import step_for_timestep_fraction
from ..avi_core.defaults import PACK
from .invert import INVERSION_KEY, check_inversion_fits, read_inversion
from .latent_meta import CAPTURE_KEY, CaptureInfo, model_to_raw, read_capture, with_capture
from .model_info import check_continues, fix_empty_latent, latent_affine, model_family, model_kind, sampler_sigmas, timestep_of
from .schema import schema
from .ui import CATEGORY, show_text
from .widgets import AVINode


def choose_step(model, sigmas: torch.Tensor, fraction: float, step: int):
    """(step, timestep, fraction or None): an explicit step wins over the timestep fraction."""
    timestep = timestep_of(model)
    steps = sigmas.numel() - 1
    if step >= 0:
        if step >= steps:
            raise ValueError(f"step must be below the {steps} sampling steps (0..{steps - 1}), or -1 to use the timestep fraction; got {step}")
        return step, float(timestep(sigmas[step:step + 1])[0]), None
    choice = step_for_timestep_fraction(fraction, sigmas, timestep)
    return choice.step, choice.timestep, fraction


def cfg_note(inverted_cfg: float, cfg: float):
    """A note when the capture samples at another cfg than the inversion ran at (the image then drifts), else None."""
    if abs(inverted_cfg - cfg) < 1e-6:
        return None
    return (f"note: the latent was inverted at cfg {inverted_cfg:g} and is sampled at cfg {cfg:g}, so the unedited result drifts "
            f"from the image; invert at cfg {cfg:g} (with refine) to keep it closer")


def sample_keeping(model, noise, latent, steps, cfg, sampler_name, scheduler, positive, negative, keep: list,
                   last_step=None, noise_mask=None, seed=0, start_step=0) -> tuple:
    """Run the sampler from start_step (with no new noise when above 0: latent is then a trajectory's state there) through
    last_step, or to the end, and keep (x, x0) at each step in keep; (samples, {step: (x, x0)})."""
    seen, wanted = {}, set(keep)
    preview = latent_preview.prepare_callback(model, (last_step or steps) - start_step)

    def callback(i, x0, x, total):
        # The callback sees the state *before* step i (counted from start_step) and the model's x0 for it: one step
        # more than KSamplerAdvanced(end_at_step=step) runs gives both at the captured step.
        if i + start_step in wanted:
            seen[i + start_step] = (x.detach().float().cpu().clone(), x0.detach().float().cpu().clone())
        preview(i, x0, x, total)

    samples = comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent, denoise=1.0,
                                  disable_noise=start_step > 0, start_step=start_step or None, last_step=last_step,
                                  force_full_denoise=last_step is None, noise_mask=noise_mask,
                                  callback=callback, disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    if set(seen) != wanted:
        raise ValueError(f"the sampler {sampler_name!r} does not report its steps, so no latent could be taken at step(s) "
                         f"{', '.join(map(str, sorted(wanted - set(seen))))}; use a step-wise sampler such as ddim, euler or heun")
    return samples, seen


def sample_to_step(model, latent_image: dict, seed, steps, cfg, sampler_name, scheduler, positive, negative, step, inverted=False):
    """Run the sampler through `step` and return (x, x0) there: sampler state and clean prediction, model space.

    inverted: latent_image holds Invert Latent's noise, which replaces the seed's (on an empty latent).
    """
    latent = fix_empty_latent(model, latent_image)
    if inverted:
        noise, latent = latent.float().cpu(), torch.zeros_like(latent)
    else:
        noise = comfy.sample.prepare_noise(latent, seed, latent_image.get("batch_index"))
    _, seen = sample_keeping(model, noise, latent, steps, cfg, sampler_name, scheduler, positive, negative, [step],
                             last_step=step + 1, noise_mask=latent_image.get("noise_mask"), seed=seed)
    return seen[step]


def branch_to_step(model, latent_image: dict, start: CaptureInfo, cfg, positive, negative, step):
    """(x, x0) at `step`, continuing a capture's trajectory from its step with this prompt (model space)."""
    samples = latent_image["samples"]
    noise = torch.zeros(samples.shape, dtype=samples.dtype, layout=samples.layout, device="cpu")
    _, seen = sample_keeping(model, noise, samples, start.steps, cfg, start.sampler, start.scheduler, positive, negative, [step],
                             last_step=step + 1, noise_mask=latent_image.get("noise_mask"), seed=start.seed, start_step=start.step)
    return seen[step]


def check_branch(start: CaptureInfo, steps: int, sampler_name: str, scheduler: str) -> None:
    """A capture continued from another runs on that capture's schedule."""
    for name, given, captured in (("steps", steps, start.steps), ("sampler_name", sampler_name, start.sampler),
                                  ("scheduler", scheduler, start.scheduler)):
        if given != captured:
            raise ValueError(f"latent_image is a capture (step {start.step} of {start.steps}, {start.sampler}/{start.scheduler}) to "
                             f"continue from, but {name} is set to {given!r}: set it to {captured!r}, or start from Empty Latent Image")


class CaptureLatentAtStep(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVICaptureLatent",
            display_name="Capture Latent at Step",
            category=CATEGORY,
            description=(
                "Samples from noise with the usual KSampler settings and stops at the step nearest a timestep "
                "fraction (0.8·T for the original prompt, 0.5·T for the target). The LATENT keeps its leftover noise "
                "like KSamplerAdvanced(end_at_step) and carries σ, the step and the model's x0 prediction for AVI. Given a "
                "capture as latent_image, it continues that trajectory from the capture's step with this prompt instead."
            ),
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model (SD2.1 in the paper)."),
                io.Conditioning.Input("positive", tooltip="The prompt of this trajectory: the original prompt for x, the target prompt for z."),
                io.Conditioning.Input("negative", tooltip="The negative prompt."),
                io.Latent.Input("latent_image", tooltip="The starting latent: Empty Latent Image (its size fixes the Φ size), Invert "
                                                        "Latent's output to edit a real image (the capture then starts from it, not the seed), "
                                                        "or another capture (x) to continue its trajectory from its step with this prompt "
                                                        "(z branched off x: only the steps between are sampled; seed unused)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Noise seed. Use the same seed for the original and the target capture."),
                io.Int.Input("steps", default=50, min=1, max=10000,
                             tooltip="Total sampling steps of the trajectory (paper: 50). z may take fewer than x (same sampler and "
                                     "scheduler): 20 ddim_uniform steps reach 0.5·T in 10 evaluations instead of 25 and edit as 50 do."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01, tooltip="Classifier-free guidance scale."),
                io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS, default="ddim",
                               tooltip="Sampler (paper: ddim). Inject Latent continues with the same one."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="ddim_uniform",
                               tooltip="Noise schedule (paper: ddim_uniform)."),
                io.Float.Input("timestep_fraction", default=PACK["tx"], min=0.0, max=1.0, step=0.01,
                               tooltip="Where to stop, as a fraction of T = 1000 timesteps: 0.6 for the original prompt (Tx) and 0.5 "
                                       "for the target (Tz) by default; the paper uses 0.8 and 0.5. The nearest sampler step is used and reported."),
                io.Int.Input("step", default=-1, min=-1, max=10000,
                             tooltip="An explicit step to stop at (0 = pure noise); -1 uses the timestep fraction."),
            ],
            outputs=[
                io.Latent.Output("latent", display_name="latent",
                                 tooltip="The latent at the captured step in raw VAE units with leftover noise, plus AVI capture metadata. "
                                         "Also valid input for KSamplerAdvanced (start_at_step = step, add_noise disable)."),
                io.Int.Output("captured_step", display_name="step", tooltip="The sampler step the latent was taken at."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent_image, seed, steps, cfg, sampler_name, scheduler, timestep_fraction, step) -> io.NodeOutput:
        kind = model_kind(model)
        start = latent_image.get(CAPTURE_KEY) if isinstance(latent_image, dict) else None
        if start is not None:  # continue that capture's trajectory with this prompt: a branch, no new noise
            start = read_capture(latent_image, "latent_image")
            check_branch(start, steps, sampler_name, scheduler)
            check_continues(model, start, sampler_name, scheduler)
        sigmas = sampler_sigmas(model, steps, sampler_name, scheduler)
        inversion = read_inversion(latent_image)
        if inversion is not None:
            check_inversion_fits(inversion, model, steps, sampler_name, scheduler, sigmas, latent_image.get("noise_mask") is not None)
        step, timestep, fraction = choose_step(model, sigmas, timestep_fraction, step)
        sigma = float(sigmas[step])
        if kind == "flow" and sigma >= 1.0:
            raise ValueError("a flow model's first step (σ = 1) holds no image yet; capture at a later step")
        if start is None:
            x, x0 = sample_to_step(model, latent_image, seed, steps, cfg, sampler_name, scheduler, positive, negative, step,
                                   inverted=inversion is not None)
        elif step < start.step:
            raise ValueError(f"latent_image is a capture at step {start.step}; a capture continued from it is taken at that "
                             f"step or later, but step {step} was chosen: raise the step, or lower the timestep_fraction")
        else:
            x, x0 = branch_to_step(model, latent_image, start, cfg, positive, negative, step)
            seed = start.seed
        scale, shift, fmt = latent_affine(model, x.shape[1])
        origin = start.start if start is not None else (inversion.start_label() if inversion else "")
        info = CaptureInfo(sigma, step, steps, timestep, fraction, sampler_name, scheduler, seed, cfg, kind, fmt,
                           scale, shift, tuple(sigmas.tolist()), x0, (), origin, model_family(model))
        raw = model_to_raw(x, info).to(comfy.model_management.intermediate_device())
        out = with_capture({k: v for k, v in latent_image.items() if k != INVERSION_KEY}, raw, info)
        notes = [info.far_from_fraction(), inversion and cfg_note(inversion.cfg, cfg),
                 start and f"continued from the capture at step {start.step} (its seed {start.seed}; this node's seed is unused)"]
        show_text(cls.hidden.unique_id, f"captured at {info.describe()}" + "".join(f"\n{n}" for n in notes if n))
        return io.NodeOutput(out, step)
