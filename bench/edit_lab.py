"""Direct access to the tiny digits model for sweeps: cached trajectories, finishing from a step, scoring.

The benchmark (bench/bench_quality.py) runs every method as a ComfyUI graph; a sweep over many
settings would re-sample the same trajectories hundreds of times. This module calls the same host
functions the pack's nodes call (comfy.sample.sample with start_step, as Inject Latent does) on
the same model, and keeps each (prompt, seed) trajectory once: the sampler state and the model's
x0 at every step.
"""
import os
import sys
from dataclasses import dataclass, replace

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from avi_core import CapturedPairs, LossWeights, TrainSettings, conventions, defaults, train_phi  # noqa: E402
from avi_core.attribute_vectors import blend  # noqa: E402
from avi_core.conventions import carry_to_step  # noqa: E402
from avi_core.inference import WITHOUT_PHI, singular_values_for  # noqa: E402
from avi_core.phi import predict  # noqa: E402
from avi_core.svd import compose, decompose_float32  # noqa: E402
from avi_core.strength import prompt_agreement, reproduction_gaps  # noqa: E402

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

    def schedule(self, steps: int = STEPS) -> torch.Tensor:
        import comfy.samplers
        sampling = self.model.get_model_object("model_sampling")
        return comfy.samplers.calculate_sigmas(sampling, SCHEDULER, steps).float()

    def step_at(self, fraction: float, steps: int = STEPS) -> int:
        """The sampler step of a `steps`-step run whose timestep is nearest fraction·999 (as Capture Latent at Step chooses)."""
        timesteps = self.timesteps if steps == STEPS else \
            self.model.get_model_object("model_sampling").timestep(self.schedule(steps)[:-1]).float()
        return int(torch.argmin((timesteps - fraction * 999).abs()))

    def cond(self, text: str):
        if text not in self.conds:
            self.conds[text] = self.clip.encode_from_tokens_scheduled(self.clip.tokenize(text))
        return self.conds[text]

    def to_raw(self, x_model: torch.Tensor) -> torch.Tensor:
        return self.model.model.process_latent_out(x_model)

    def trajectory(self, prompt: str, seed: int, cfg: float = None, steps: int = STEPS) -> Trajectory:
        """The whole run of one prompt and seed (50 steps, or `steps` of the same sampler and scheduler), cached."""
        import comfy.sample
        cfg = self.cfg if cfg is None else cfg
        key = (prompt, seed, cfg, steps)
        if key not in self.trajectories:
            xs, x0s = [], []
            noise = comfy.sample.prepare_noise(self.empty, seed)
            final = comfy.sample.sample(self.model, noise, steps, cfg, SAMPLER, SCHEDULER, self.cond(prompt), self.cond(""),
                                        self.empty, callback=lambda i, x0, x, t: (xs.append(x.float().clone()), x0s.append(x0.float().clone())),
                                        disable_pbar=True, seed=seed)
            sigmas = self.sigmas if steps == STEPS else self.schedule(steps)
            self.trajectories[key] = Trajectory(torch.cat(xs), torch.cat(x0s), sigmas, final.float())
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

    def branch(self, x_model: torch.Tensor, step: int, end: int, prompt: str, cfg: float = None) -> tuple:
        """(sampler state, x0 prediction) at step `end` of latents [B, C, H, W] denoised from `step` with `prompt`."""
        import comfy.sample
        cfg = self.cfg if cfg is None else cfg
        seen = []
        comfy.sample.sample(self.model, torch.zeros_like(x_model), STEPS, cfg, SAMPLER, SCHEDULER, self.cond(prompt), self.cond(""),
                            self.to_raw(x_model), disable_noise=True, start_step=step, last_step=end + 1, force_full_denoise=False,
                            callback=lambda i, x0, x, t: seen.append((x.float().clone(), x0.float().clone())), disable_pbar=True, seed=0)
        return seen[end - step]

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


# ---- AVI settings and the edits of a case ---------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One AVI configuration: capture points, Φ training, inference and how the remaining steps are guided."""

    tx: float = defaults.PACK["tx"]
    dtau: float = round(defaults.PACK["tx"] - defaults.PACK["tz"], 6)
    space: str = defaults.PACK["space"]  # "x0": x0 predictions, the edit carried back with the step's noise; "latent": VP latents
    k: int = defaults.PACK["k"]
    hidden: int = 512
    epochs: int = 5
    samples: int = -1          # resampled pairs; -1 the paper's 5000, 0 the captured pair only
    weights: tuple = (3.0, 10.0, 10.0, 10.0)
    train_z: str = defaults.PACK["z_vectors"]
    vp: bool = True            # docs/method.md, Latent convention (space "latent"): Φ sees VP-normalised latents; False: model-space latents
    cfg: float = 5.0
    rho: float = defaults.PACK["rho"]
    s_inf: str = defaults.PACK["s_inf"]
    z_vectors: str = "as trained"
    finish: str = defaults.PACK["finish"]  # "original", "target", or "target N": the target for N steps, then the original
    z_from: str = "scratch"    # "scratch": z on the target prompt's own run; "branch": x's run, the target prompt from x's step
    z_steps: int = STEPS       # steps of z's own run (same sampler and scheduler; z at its step nearest tz): fewer costs less
    phi_seed: int = 0          # > 0: Φ trained on the captures of the case's seed + phi_seed (a saved Φ reused on a new seed)
    renoise: float = 0.0       # > 0: the edit (made at x's step) joins the original's run this share of T earlier, so the
                               # finish denoises it over more steps (space x0; ρ = 0 is the switch at (tx + renoise)·T)

    def train_key(self):
        return (self.tx, self.dtau, self.space, self.k, self.hidden, self.epochs, self.samples, self.weights, self.train_z,
                self.vp, self.cfg, self.z_from, self.z_steps, self.phi_seed)


BASE = Setting()
PAPER = Setting(tx=defaults.PAPER["tx"], dtau=round(defaults.PAPER["tx"] - defaults.PAPER["tz"], 6), space=defaults.PAPER["space"],
                k=8, train_z=defaults.PAPER["z_vectors"], rho=defaults.PAPER["rho"], s_inf=defaults.PAPER["s_inf"],
                finish=defaults.PAPER["finish"])  # k = N/2 of 16


def switch_label(finish: str) -> tuple[int, bool]:
    """(steps under the target, whether the original takes over after them) of a finish setting."""
    if finish == "original":
        return 0, True
    if finish == "target":
        return 0, False
    return int(finish.split()[1]), True


class Editor:
    """The edits of one Lab for cases {"original": prompt, "target": prompt, "seed": int}, with Φ cached per case."""

    def __init__(self, lab):
        self.lab = lab
        self.phis, self.branches = {}, {}

    def pair(self, case) -> tuple[str, str]:
        """(original prompt, target prompt) of a case."""
        return case["original"], case["target"]

    def captured(self, case, s: Setting):
        """(x step, z step, VP x, VP z, x0 at both) of a case under a setting."""
        original, target = self.pair(case)
        lab = self.lab
        to = lab.trajectory(original, case["seed"], s.cfg)
        sx, sz = lab.step_at(s.tx), lab.step_at(s.tx - s.dtau, s.z_steps)
        if s.z_from == "branch":
            key = (original, target, case["seed"], sx, sz, s.cfg)
            if key not in self.branches:
                self.branches[key] = lab.branch(to.x[sx:sx + 1], sx, sz, target, s.cfg)
            z_state, z_x0 = self.branches[key]
        else:
            tt = lab.trajectory(target, case["seed"], s.cfg, s.z_steps)
            z_state, z_x0 = tt.x[sz:sz + 1], tt.x0[sz:sz + 1]
        if s.space == "x0":
            return sx, sz, to.x0[sx:sx + 1], z_x0, to.x0[sx:sx + 1], z_x0
        if s.z_steps != STEPS:
            raise ValueError(f"z on its own {s.z_steps}-step run is measured for space 'x0' only; got space {s.space!r}")
        scale = (lambda t, step: lab.vp(t, step)) if s.vp else (lambda t, step: t)
        return sx, sz, scale(to.x[sx:sx + 1], sx), scale(z_state, sz), to.x0[sx:sx + 1], z_x0

    def phi(self, i, case, s: Setting):
        key = (i, s.train_key())
        if key not in self.phis:
            sx, sz, x, z, x0x, x0z = self.captured(dict(case, seed=case["seed"] + s.phi_seed), s)
            settings = TrainSettings(k=s.k, hidden=s.hidden, epochs=s.epochs, samples_per_pair=None if s.samples < 0 else s.samples,
                                     weights=LossWeights(*s.weights), z_vectors=s.train_z, seed=0)
            if s.space == "x0":  # as Train AVI Φ does for SVDs of x0: the forward process at σ = 0
                pairs = CapturedPairs(x, z, x, z, 0.0, 0.0, "eps")
            elif s.vp:
                pairs = CapturedPairs(x, z, x0x, x0z, float(self.lab.sigmas[sx]), float(self.lab.sigmas[sz]), "eps")
            else:  # model-space pairs x0 + σε (shared ε), unscaled, passed as captures to train on as they are
                n = 5000 if s.samples < 0 else s.samples
                eps = torch.randn((n, *x.shape[1:]), generator=torch.Generator().manual_seed(0))
                xs = torch.cat([x, x0x + float(self.lab.sigmas[sx]) * eps])
                zs = torch.cat([z, x0z + float(self.lab.sigmas[sz]) * eps])
                pairs, settings = CapturedPairs(xs, zs, xs, zs, 0.0, 0.0, "eps"), replace(settings, samples_per_pair=0)
            self.phis[key] = train_phi(pairs, settings).phi
        return self.phis[key]

    def y_pred(self, i, case, s: Setting) -> tuple[int, torch.Tensor]:
        """(y_pred's step, y_pred in model space) of a setting; ρ may exceed 1 (an extrapolation of the vector blend)."""
        sx, y_model, _ = self.edit(i, case, s)
        return sx, y_model

    def agreement(self, i, case, s: Setting, rhos) -> list:
        """Per ρ (0 among them: the reference), avi_core.strength's agreement: how much better the target prompt's denoiser reproduces the
        edited x0 at x's step than the original prompt's, in units of its miss at ρ = 0 (space x0 only)."""
        original, target = self.pair(case)
        edits = [self.edit(i, case, replace(s, rho=r)) for r in rhos]
        sx = edits[0][0]
        y = torch.cat([e[1] for e in edits])
        y0 = torch.cat([e[2] for e in edits])
        gap_o, gap_t = reproduction_gaps(y0, self.lab.branch(y, sx, sx, original, s.cfg)[1], self.lab.branch(y, sx, sx, target, s.cfg)[1])
        return prompt_agreement(gap_o, gap_t, gap_t[list(rhos).index(0)]).tolist()

    def edit(self, i, case, s: Setting) -> tuple[int, torch.Tensor, torch.Tensor]:
        """(y_pred's step: x's, or the earlier one a renoised edit joins; y_pred in model space; the edited x0 or VP latent
        it was composed as)."""
        sx, sz, x, z, _, _ = self.captured(case, s)
        svd_x, svd_z = decompose_float32(x), decompose_float32(z)
        S = delta = None
        if s.s_inf not in WITHOUT_PHI:
            with torch.no_grad():
                S, delta = (t.float() for t in predict(self.phi(i, case, s), x))
        used = singular_values_for(s.s_inf, S, delta, svd_x.S, s.rho, svd_z.S)
        U, V = blend(svd_x, svd_z, s.k, s.rho, s.train_z if s.z_vectors == "as trained" else s.z_vectors)
        y = compose(U, used, V)
        if s.space == "x0":
            run = self.lab.trajectory(self.pair(case)[0], case["seed"], s.cfg)
            at = self.lab.step_at(s.tx + s.renoise) if s.renoise else sx
            # the edit's change of x0 added to the original's state at that step (its own noise kept)
            return at, carry_to_step(y, run.x[at:at + 1], x, float(self.lab.sigmas[at]), "eps"), y
        return sx, (self.lab.from_vp(y, sx) if s.vp else y), y

    def image(self, i, case, s: Setting) -> torch.Tensor:
        original, target = self.pair(case)
        sx, y = self.y_pred(i, case, s)
        m, back = switch_label(s.finish)
        prompts = [original] if s.finish == "original" else [target] if s.finish == "target" else [target, original]
        return self.lab.decode(self.lab.finish(y, sx, prompts, switch_after=m if back else 0, cfg=s.cfg))

    def baseline_images(self, case, switch_fractions=(0.9, 0.8, 0.7, 0.6, 0.5)) -> dict:
        """original, target from scratch and the prompt switch at several steps."""
        original, target = self.pair(case)
        lab = self.lab
        to, tt = lab.trajectory(original, case["seed"]), lab.trajectory(target, case["seed"])
        out = {"original": lab.decode(to.final), "target from scratch": lab.decode(tt.final)}
        for f in switch_fractions:
            s = lab.step_at(f)
            out[f"switch at {f:g}T"] = lab.decode(lab.finish(to.x[s:s + 1], s, [target]))
        return out
