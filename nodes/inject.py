"""Inject Latent: finish an (edited) latent from its captured step with the original prompt (optionally the target's first)."""
import torch

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
from comfy_api.v0_0_2 import io

from .auto_strength import AUTO, EVERY, PICKS, pick_per_seed, picked_latent
from .latent_meta import read_capture, without_capture
from .model_info import check_continues
from .schema import schema
from .ui import CATEGORY, show_text
from .widgets import AVINode

FROM_CAPTURE = "from capture"


def chosen(name: str, value: str, captured: str) -> str:
    """The capture's sampler/scheduler; an explicit different choice is an error (the trajectory would not continue)."""
    if value in (FROM_CAPTURE, captured):
        return captured
    raise ValueError(f"the latent was captured with {name} {captured!r} but Inject Latent is set to {value!r}; "
                     f"set it to '{FROM_CAPTURE}' (or {captured!r}), or capture again with {value!r}")


def stages(step: int, steps: int, positive, target, target_steps: int) -> list:
    """(conditioning, first step, end step) per sampler call: the target for target_steps steps (-1: all), then the original."""
    if target is None or target_steps == 0:
        return [(positive, step, steps)]
    switch = steps if target_steps < 0 else min(steps, step + target_steps)
    return [(target, step, switch)] + ([(positive, switch, steps)] if switch < steps else [])


def offset(callback, shift: int, total: int):
    """The preview callback with steps counted from the injection, across both sampler calls."""
    return lambda i, x0, x, _: callback(i + shift, x0, x, total)


class InjectLatent(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVIInjectLatent",
            display_name="Inject Latent",
            category=CATEGORY,
            description=(
                "Continues denoising a captured or edited latent from its captured step to the end, with the steps and schedule "
                "of the capture (as KSamplerAdvanced with start_at_step and add_noise disabled). Deterministic samplers (euler, heun, "
                "ddim) continue exactly; multistep samplers restart their history and ancestral/SDE samplers draw new noise at the step. "
                "An optional target prompt can guide the first steps before the original takes over."
            ),
            inputs=[
                io.Model.Input("model", tooltip="The same model as the capture."),
                io.Conditioning.Input("positive", tooltip="The ORIGINAL prompt (the paper continues with it; with a target "
                                                          "connected, it takes over after target_steps)."),
                io.Conditioning.Input("negative", tooltip="The negative prompt."),
                io.Latent.Input("latent", tooltip="y_pred from AVI Integrate, or a latent from Capture Latent at Step."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01, tooltip="Guidance scale for the remaining steps."),
                io.Combo.Input("sampler_name", options=[FROM_CAPTURE] + list(comfy.samplers.KSampler.SAMPLERS), default=FROM_CAPTURE,
                               tooltip="The capture's sampler; another choice is refused so the trajectory continues exactly."),
                io.Combo.Input("scheduler", options=[FROM_CAPTURE] + list(comfy.samplers.KSampler.SCHEDULERS), default=FROM_CAPTURE,
                               tooltip="The capture's schedule; another choice is refused (its σ would not match the latent's)."),
                io.Conditioning.Input("target", optional=True,
                                      tooltip="Optional: the TARGET prompt, guiding the first target_steps steps after the injection. "
                                              "The pack's workflows connect it for the edit (the target reached more often, on every "
                                              "model measured); the paper finishes with the original prompt only: leave it unconnected."),
                io.Int.Input("target_steps", default=-1, min=-1, max=10000, optional=True,
                             tooltip="With a target connected: steps guided by it before the original prompt takes over; "
                                     "-1 means every remaining step. Ignored without a target."),
                io.Combo.Input("rho_pick", options=list(PICKS), default=EVERY, optional=True,
                               tooltip="'every ρ' finishes every latent given. 'auto' takes a ρ sweep from AVI Integrate (a rho_list "
                                       "with 0) and finishes, per seed, the smallest ρ whose edited x0 the target prompt's "
                                       "denoiser reproduces about as well as the original's, or the ρ nearest 1 where none is: the "
                                       "model judges the strength (2 model evaluations per ρ). Needs the target connected and SVDs of "
                                       "x0 predictions."),
            ],
            outputs=[io.Latent.Output("finished", display_name="latent", tooltip="The finished latent, ready for VAE Decode.")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent, cfg, sampler_name, scheduler, target=None, target_steps=-1,
                rho_pick=EVERY) -> io.NodeOutput:
        info = read_capture(latent, "latent", allow_changed=True)
        if info.step < 0:
            raise ValueError("this latent has a σ but no sampler step (it was not taken by Capture Latent at Step); "
                             "finish it with KSamplerAdvanced instead")
        sampler_name = chosen("sampler", sampler_name, info.sampler)
        scheduler = chosen("scheduler", scheduler, info.scheduler)
        check_continues(model, info, sampler_name, scheduler)
        if rho_pick == AUTO:  # one latent per seed from here on: per-sample keys follow the pick
            picked, rhos, agreement = pick_per_seed(model, latent, info, cfg, sampler_name, scheduler, positive, negative, target)
            latent = picked_latent(latent, picked)
            show_text(cls.hidden.unique_id, "auto strength: " + ", ".join(f"ρ = {r:g}" for r in rhos)
                      + (" (one per seed)" if len(rhos) > 1 else "") + "\nthe target's lead over the original per ρ of the sweep: "
                      + "; ".join(", ".join(f"{a:+.3g}" for a in agreement[:, b].tolist()) for b in range(agreement.shape[1])))
        samples, mask = latent["samples"], latent.get("noise_mask")
        noise = torch.zeros(samples.shape, dtype=samples.dtype, layout=samples.layout, device="cpu")
        callback = latent_preview.prepare_callback(model, info.steps - info.step)
        out, remaining = samples, info.steps - info.step
        for cond, start, end in stages(info.step, info.steps, positive, target, target_steps):
            # One sampler call per prompt: the second continues the first's state with no new noise,
            # as two chained KSamplerAdvanced nodes do.
            out = comfy.sample.sample(model, noise, info.steps, cfg, sampler_name, scheduler, cond, negative, out,
                                      denoise=1.0, disable_noise=True, start_step=start, last_step=end,
                                      force_full_denoise=end == info.steps, noise_mask=mask,
                                      callback=offset(callback, start - info.step, remaining),
                                      disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=info.seed)
        return io.NodeOutput(without_capture(latent, out.to(comfy.model_management.intermediate_device())))
