"""The paper's findings along one sampler run: Capture Trajectory, Subspace Distance Along Trajectory (Figure 5), Mobility Map."""
import re
from dataclasses import dataclass

import torch

import comfy.model_management
import comfy.sample
import comfy.samplers
from comfy_api.v0_0_2 import io

from ..avi_core import to_vp
from ..avi_core.checks import check_channel
from ..avi_core.trajectory import consecutive_distances, mobility
from .capture import sample_keeping
from .model_info import fix_empty_latent, model_kind, sampler_sigmas, timestep_of
from .schema import schema
from .ui import CATEGORY, figure_to_image, new_figure, show_text
from .widgets import AVINode, shown

AVITrajectory = io.Custom("AVI_TRAJECTORY")


@dataclass(frozen=True)
class CapturedTrajectory:
    """Sampler states x and x0 predictions [K, B, C, H, W] (model space, CPU, float32) at the kept steps of one run."""

    x: torch.Tensor
    x0: torch.Tensor
    steps: tuple
    sigmas: tuple
    timesteps: tuple
    total_steps: int
    model_kind: str

    def vp(self) -> torch.Tensor:
        """The kept latents, each VP-normalised at its own σ (what the paper decomposes)."""
        return torch.stack([to_vp(x, s, self.model_kind) for x, s in zip(self.x, self.sigmas)])

    def index_of(self, step: int) -> int:
        if step not in self.steps:
            raise ValueError(f"step {step} was not kept by Capture Trajectory; kept steps: {', '.join(map(str, self.steps))}")
        return self.steps.index(step)


def parse_steps(text: str, steps: int) -> list[int]:
    """Steps to keep from text such as "all", "0, 9, 24" or "0-49/5" (every 5th); sorted, unique, each in 0..steps−1."""
    text = (text or "").strip().lower()
    if text in ("", "all"):
        return list(range(steps))
    fits = f"{steps} sampling steps (steps 0..{steps - 1})"
    kept = set()
    for token in [t for t in re.split(r"[,;\s]+", text) if t]:
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?:/(\d+))?)?", token)
        if not match:
            raise ValueError(f"keep_steps must be 'all' or step numbers and ranges such as '0, 9, 24' or '0-49/5'; got {shown(token)}")
        # A number longer than the step count's digits cannot fit; int() would refuse past 4300 digits.
        first, last, stride = (int(g) if len(g) <= len(str(steps)) else steps for g in (match[1], match[2] or match[1], match[3] or "1"))
        if stride < 1:
            raise ValueError(f"keep_steps {shown(token)} has stride 0; a range's stride (after '/') must be 1 or more, e.g. '0-{steps - 1}/5'")
        if max(first, last) >= steps:
            raise ValueError(f"keep_steps {shown(token)} does not fit {fits}")
        if first > last:
            raise ValueError(f"keep_steps {shown(token)} runs backwards; write a range from the lower step to the higher, "
                             f"e.g. '{last}-{first}{'/' + match[3] if match[3] else ''}'")
        kept.update(range(first, last + 1, stride))
    return sorted(kept)


def require_trajectory(value) -> CapturedTrajectory:
    if not isinstance(value, CapturedTrajectory):
        raise ValueError(f"trajectory must be an AVI_TRAJECTORY from Capture Trajectory; got {type(value).__name__}")
    return value


class CaptureTrajectory(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVICaptureTrajectory",
            display_name="Capture Trajectory",
            category=CATEGORY,
            description="One sampler run that keeps the latent and the model's x0 prediction at every step (or the chosen "
                        "ones), as a batch with step labels, for the trajectory findings (Figure 5, the mobility map).",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model."),
                io.Conditioning.Input("positive", tooltip="The prompt (paper, Figure 5: 'a photo of a celebrity')."),
                io.Conditioning.Input("negative", tooltip="The negative prompt."),
                io.Latent.Input("latent_image", tooltip="Empty Latent Image; its batch size is the number of seeds averaged (paper: 30)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True, tooltip="Noise seed of the batch."),
                io.Int.Input("steps", default=50, min=2, max=10000, tooltip="Sampling steps (paper: 50)."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01, tooltip="Guidance scale."),
                io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS, default="ddim", tooltip="Sampler (paper: ddim)."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="ddim_uniform", tooltip="Noise schedule."),
                io.String.Input("keep_steps", default="all", tooltip="Which steps to keep: 'all', or numbers and ranges, e.g. '0, 9, 24' "
                                                                     "or '0-49/5' (every 5th); 0 is the pure-noise step."),
            ],
            outputs=[
                AVITrajectory.Output("trajectory", display_name="trajectory", tooltip="The kept latents and x0 predictions with their steps."),
                io.Latent.Output("finished", display_name="latent", tooltip="The finished latent of the run, for VAE Decode."),
                io.String.Output("step_labels", display_name="step_labels", tooltip="One label per kept step ('step 9, t = 801')."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent_image, seed, steps, cfg, sampler_name, scheduler, keep_steps="all") -> io.NodeOutput:
        kind = model_kind(model)
        sigmas = sampler_sigmas(model, steps, sampler_name, scheduler)
        total = sigmas.numel() - 1
        kept = parse_steps(keep_steps, total)
        latent = fix_empty_latent(model, latent_image)
        noise = comfy.sample.prepare_noise(latent, seed, latent_image.get("batch_index"))
        finished, seen = sample_keeping(model, noise, latent, steps, cfg, sampler_name, scheduler, positive, negative, kept,
                                        noise_mask=latent_image.get("noise_mask"), seed=seed)
        chosen = sigmas[kept]
        trajectory = CapturedTrajectory(torch.stack([seen[i][0] for i in kept]), torch.stack([seen[i][1] for i in kept]), tuple(kept),
                                        tuple(chosen.tolist()), tuple(float(t) for t in timestep_of(model)(chosen)), total, kind)
        labels = ", ".join(f"step {s} (t = {t:g})" for s, t in zip(trajectory.steps, trajectory.timesteps))
        held = (trajectory.x.numel() + trajectory.x0.numel()) * trajectory.x.element_size()
        show_text(cls.hidden.unique_id, f"kept {len(kept)} of {total} steps × {latent.shape[0]} seed(s): {tuple(trajectory.x.shape)}, "
                                        f"{held / 2**20:.1f} MB with the x0 predictions")
        out = {k: v for k, v in latent_image.items() if k != "samples"}
        out["samples"] = finished.to(comfy.model_management.intermediate_device())
        return io.NodeOutput(trajectory, out, labels)


def distance_plot(d: torch.Tensor, timesteps: list, p: int, side: str):
    """Mean geodesic distance between consecutive kept steps against the timestep, with ± one standard deviation over seeds."""
    fig = new_figure(5.5, 3.4)
    ax = fig.add_subplot()
    per_seed = d.mean(-1)  # [K-1, B]: channels averaged
    mean, std = per_seed.mean(-1), per_seed.std(-1) if per_seed.shape[-1] > 1 else torch.zeros(per_seed.shape[0])
    t = torch.tensor(timesteps)
    ax.plot(t.numpy(), mean.numpy(), marker="o", ms=3, color="tab:blue", label=f"mean over {per_seed.shape[-1]} seed(s)")
    ax.fill_between(t.numpy(), (mean - std).numpy(), (mean + std).numpy(), color="tab:blue", alpha=0.25, label="± 1 std")
    ax.invert_xaxis()
    ax.set_xlabel("timestep t (denoising runs left to right)")
    ax.set_ylabel("geodesic distance")
    ax.set_title(f"top-{p} {side} singular subspaces, consecutive steps; overall mean {d.mean().item():.3g}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return figure_to_image(fig)


def decomposed(trajectory: CapturedTrajectory, what: str) -> torch.Tensor:
    return trajectory.vp() if what == "latent" else trajectory.x0


class TrajectoryDistance(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVITrajectoryDistance",
            display_name="Subspace Distance Along Trajectory",
            category=CATEGORY,
            description="Grassmann geodesic distance between the top-p singular subspaces of consecutive kept steps, per channel, "
                        "averaged over the batch of seeds and plotted with its spread against the timestep (paper, Figure 5).",
            inputs=[
                AVITrajectory.Input("trajectory", tooltip="From Capture Trajectory."),
                io.Int.Input("p", default=4, min=1, max=4096, tooltip="Dimension of the subspaces (paper: 4)."),
                io.Combo.Input("side", options=["left", "right"], default="left", tooltip="Left (U) or right (V) singular vectors."),
                io.Combo.Input("what", options=["latent", "x0"], default="latent",
                               tooltip="Decompose the VP-normalised latents (the paper) or the model's x0 predictions."),
            ],
            outputs=[
                io.Float.Output("mean_distance", display_name="mean", tooltip="Mean distance over steps, seeds and channels."),
                io.Image.Output("plot", display_name="plot", tooltip="Distance against the timestep with ± one standard deviation."),
                io.String.Output("table", display_name="table", tooltip="One line per step pair: steps, timesteps, mean and std."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, trajectory, p, side, what="latent") -> io.NodeOutput:
        trajectory = require_trajectory(trajectory)
        if len(trajectory.steps) < 2:
            raise ValueError(f"trajectory keeps {len(trajectory.steps)} step ({', '.join(map(str, trajectory.steps))}); distances between "
                             f"consecutive steps need at least 2: set Capture Trajectory's keep_steps to e.g. 'all' or "
                             f"'0-{trajectory.total_steps - 1}/5'")
        d = consecutive_distances(decomposed(trajectory, what), p, side).float()
        per_seed = d.mean(-1)
        lines = ["step → step (t) : mean ± std"]
        for k in range(d.shape[0]):
            std = per_seed[k].std().item() if per_seed.shape[-1] > 1 else 0.0
            lines.append(f"{trajectory.steps[k]} → {trajectory.steps[k + 1]} (t = {trajectory.timesteps[k]:g}) : "
                         f"{per_seed[k].mean().item():.4g} ± {std:.2g}")
        midpoints = [(a + b) / 2 for a, b in zip(trajectory.timesteps, trajectory.timesteps[1:])]
        show_text(cls.hidden.unique_id, f"mean {d.mean().item():.4g} over {d.shape[0]} step pairs × {d.shape[1]} seed(s) × "
                                        f"{d.shape[2]} channel(s)\n" + "\n".join(lines[1:]))
        return io.NodeOutput(d.mean().item(), distance_plot(d, midpoints, p, side), "\n".join(lines))


def mobility_plot(overlap: torch.Tensor, rank: torch.Tensor, labels: tuple, top: int):
    """Heatmap of |⟨u_i(a), u_j(b)⟩| (batch mean) with each vector's best match marked."""
    fig = new_figure(4.8, 4.2)
    ax = fig.add_subplot()
    image = ax.imshow(overlap[:top, :top].numpy(), cmap="magma", vmin=0, vmax=1, origin="upper")
    ax.scatter(rank[:top].numpy(), range(min(top, rank.numel())), s=8, c="cyan", marker="x", label="best match (seed 0)")
    ax.set_xlabel(f"rank j at {labels[1]}")
    ax.set_ylabel(f"rank i at {labels[0]}")
    stayed = (rank[:top] == torch.arange(min(top, rank.numel()))).float().mean().item()
    ax.set_title(f"|⟨u_i, u_j⟩|; {stayed:.0%} of the top {top} keep their rank", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.legend(fontsize=7, loc="lower left")
    return figure_to_image(fig)


class MobilityMap(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVIMobilityMap",
            display_name="Mobility Map",
            category=CATEGORY,
            description="For each singular vector at one kept step, how well it matches every vector at another step and the rank "
                        "of its best match (the paper's mobility property: attribute vectors move in rank across steps).",
            inputs=[
                AVITrajectory.Input("trajectory", tooltip="From Capture Trajectory."),
                io.Int.Input("step_a", default=9, min=0, max=10000, tooltip="A kept step (e.g. 9 ≈ 0.8·T of 50 ddim_uniform steps)."),
                io.Int.Input("step_b", default=24, min=0, max=10000, tooltip="Another kept step (e.g. 24 ≈ 0.5·T)."),
                io.Int.Input("channel", default=0, min=0, max=63, tooltip="Latent channel."),
                io.Int.Input("top", default=16, min=1, max=4096, tooltip="How many of the leading vectors to show."),
                io.Combo.Input("side", options=["left", "right"], default="left", tooltip="Left (U) or right (V) singular vectors."),
            ],
            outputs=[
                io.Image.Output("heatmap", display_name="heatmap", tooltip="|⟨u_i(a), u_j(b)⟩| averaged over seeds, best matches marked."),
                io.String.Output("ranks", display_name="ranks", tooltip="Best-match rank at step_b of each of the top vectors at step_a (seed 0)."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, trajectory, step_a, step_b, channel, top, side) -> io.NodeOutput:
        trajectory = require_trajectory(trajectory)
        a, b = trajectory.index_of(step_a), trajectory.index_of(step_b)
        check_channel(channel, trajectory.x.shape[2], every=False)
        vp = trajectory.vp()[:, :, channel:channel + 1]
        overlap, rank = mobility(vp[a], vp[b], side)
        top = min(top, overlap.shape[-1])
        mean = overlap.mean(0)[0].float()
        labels = (f"step {step_a} (t = {trajectory.timesteps[a]:g})", f"step {step_b} (t = {trajectory.timesteps[b]:g})")
        ranks = rank[0, 0, :top].tolist()
        text = "\n".join(f"{i} → {j}" for i, j in enumerate(ranks))
        show_text(cls.hidden.unique_id, f"{labels[0]} → {labels[1]}, best-match ranks (seed 0): {', '.join(map(str, ranks))}")
        return io.NodeOutput(mobility_plot(mean, rank[0, 0].cpu(), labels, top), f"{labels[0]} → {labels[1]}:\n{text}")
