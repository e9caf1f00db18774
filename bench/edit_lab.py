"""Direct access to the tiny digits model for sweeps: cached trajectories, finishing from a step, scoring.

The benchmark (bench/bench_quality.py) runs every method as a ComfyUI graph; a sweep over many
settings would re-sample the same trajectories hundreds of times. This module calls the same host
functions the pack's nodes call (comfy.sample.sample with start_step, as Inject Latent does) on
the same model, and keeps each (prompt, seed) trajectory once: the sampler state and the model's
x0 at every step.
"""
import os
import sys
from dataclasses import dataclass

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from avi_core import conventions  # noqa: E402

STEPS, CFG, SAMPLER, SCHEDULER = 50, 5.0, "ddim", "ddim_uniform"


@dataclass
class Trajectory:
    """Sampler states x [steps, C, H, W] (model space, before each step), x0 predictions, σ [steps + 1], final raw latent."""

    x: torch.Tensor
    x0: torch.Tensor
    sigmas: torch.Tensor
    final: torch.Tensor


class Lab:
    """One loaded checkpoint with prompt and trajectory caches."""

    def __init__(self, checkpoint: str, cfg: float = CFG):
        import comfy.sd
        self.model, self.clip, self.vae = comfy.sd.load_checkpoint_guess_config(checkpoint, output_vae=True, output_clip=True)[:3]
        self.cfg = cfg
        self.conds, self.trajectories = {}, {}
        self.empty = torch.zeros(1, 4, 16, 16)
        self.sigmas = self.schedule()
        self.timesteps = self.model.get_model_object("model_sampling").timestep(self.sigmas[:-1]).float()

    def schedule(self) -> torch.Tensor:
        import comfy.samplers
        sampling = self.model.get_model_object("model_sampling")
        return comfy.samplers.calculate_sigmas(sampling, SCHEDULER, STEPS).float()

    def step_at(self, fraction: float) -> int:
        """The sampler step whose timestep is nearest fraction·999 (as Capture Latent at Step chooses)."""
        return int(torch.argmin((self.timesteps - fraction * 999).abs()))

    def cond(self, text: str):
        if text not in self.conds:
            self.conds[text] = self.clip.encode_from_tokens_scheduled(self.clip.tokenize(text))
        return self.conds[text]

    def to_raw(self, x_model: torch.Tensor) -> torch.Tensor:
        return self.model.model.process_latent_out(x_model)

    def trajectory(self, prompt: str, seed: int, cfg: float = None) -> Trajectory:
        """The whole 50-step run of one prompt and seed, cached."""
        import comfy.sample
        cfg = self.cfg if cfg is None else cfg
        key = (prompt, seed, cfg)
        if key not in self.trajectories:
            xs, x0s = [], []
            noise = comfy.sample.prepare_noise(self.empty, seed)
            final = comfy.sample.sample(self.model, noise, STEPS, cfg, SAMPLER, SCHEDULER, self.cond(prompt), self.cond(""),
                                        self.empty, callback=lambda i, x0, x, t: (xs.append(x.float().clone()), x0s.append(x0.float().clone())),
                                        disable_pbar=True, seed=seed)
            self.trajectories[key] = Trajectory(torch.cat(xs), torch.cat(x0s), self.sigmas, final.float())
        return self.trajectories[key]

    def finish(self, x_model: torch.Tensor, step: int, prompts: list, switch_after: int = 0, cfg: float = None,
               x0_log: list = None) -> torch.Tensor:
        """Denoise model-space latents [B, C, H, W] from `step` to the end: prompts[0] for `switch_after` steps, then prompts[-1].

        Returns raw latents (VAE Decode's input). x0_log, if given, collects the model's x0 [B, ...] at every step.
        """
        import comfy.sample
        cfg = self.cfg if cfg is None else cfg
        raw = self.to_raw(x_model)
        noise = torch.zeros_like(raw)
        cb = (lambda i, x0, x, t: x0_log.append(x0.float().clone())) if x0_log is not None else None
        stages = [(prompts[0], step, step + switch_after)] if switch_after > 0 and len(prompts) > 1 else []
        stages.append((prompts[-1], step + (switch_after if stages else 0), STEPS))
        for i, (prompt, start, end) in enumerate(stages):
            if start >= end:
                continue
            last = i == len(stages) - 1
            raw = comfy.sample.sample(self.model, noise, STEPS, cfg, SAMPLER, SCHEDULER, self.cond(prompt), self.cond(""), raw,
                                      disable_noise=True, start_step=start, last_step=end, force_full_denoise=last,
                                      callback=cb, disable_pbar=True, seed=0).float()
        return raw

    @torch.no_grad()
    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, 128, 128] in [0, 1]."""
        return self.vae.decode(raw).movedim(-1, 1).float().clamp(0, 1)

    def vp(self, x_model: torch.Tensor, step: int) -> torch.Tensor:
        return conventions.to_vp(x_model, float(self.sigmas[step]), "eps")

    def from_vp(self, x_vp: torch.Tensor, step: int) -> torch.Tensor:
        return conventions.from_vp(x_vp, float(self.sigmas[step]), "eps")


def boot_lab(checkpoint: str = None, cfg: float = CFG) -> Lab:
    """Boot the embedded host (for its comfy modules) and load the digits checkpoint."""
    import tempfile
    from devkit import comfy_host
    comfy_host.boot(tempfile.mkdtemp(prefix="avi-lab-"), pack_dir=REPO_ROOT)
    return Lab(checkpoint or os.path.join(REPO_ROOT, "demo_models", "avi_demo_tiny_digits_sd2.safetensors"), cfg)
