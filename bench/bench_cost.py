"""Cost of an AVI edit on a full-size SD1.5 UNet: Train AVI Φ and the SVD work against one generation, in one run.

Usage: python bench/bench_cost.py [--steps 3] [--json out.json] [--small]

Builds SD1.5's UNet through ComfyUI's own classes (supported_models.SD15 with model_detection's SD1.5 config,
BaseModel, ModelPatcher; random weights, so timing only) and, in one process on the same threads, times:
- a plain generation at 4×64×64 (512 px): ComfyUI's KSampler (`ddim`, `ddim_uniform`, cfg 7.5, the paper's 50 steps),
  run for the first --steps steps of that schedule; a whole generation is 50 times the mean step (every step is one
  UNet call on the cond and uncond batch, so steps cost alike);
- Train AVI Φ at the node's defaults (the pack's x0 space, k 1, `aligned`, hidden 4096, 5 epochs) on the pair the
  generation captured (x0 at its last two steps), and at the `compact` width (512);
- the SVD work of one edit: SVD Decompose of x and z and AVI Integrate (Φ, Algorithm 1, recomposition) at ρ = 1;
- the model evaluations of an edit with a reused Φ at the pack's default (z on its own run of defaults.Z_STEPS steps),
  with z on a run of the generation's steps and with z branched off x's run.
--small swaps the UNet for SD1.5's layout at 1/10 of the width (a check that the script runs; not the benchmark).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from avi_core import PHI_PRESETS, CapturedPairs, TrainSettings, integrate, train_phi  # noqa: E402
from avi_core.defaults import PACK, Z_STEPS  # noqa: E402
from avi_core.svd import decompose_float32  # noqa: E402

GENERATION_STEPS = 50
LATENT = (1, 4, 64, 64)
CFG = 7.5
# model_detection.unet_config_from_diffusers_unet's SD1.5 layout (dtype left to the model config)
SD15_UNET = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True, "legacy": False,
             "adm_in_channels": None, "in_channels": 4, "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
             "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4], "transformer_depth_middle": 1,
             "use_linear_in_transformer": False, "context_dim": 768, "num_heads": 8,
             "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "use_temporal_attention": False,
             "use_temporal_resblock": False}
SMALL_UNET = dict(SD15_UNET, model_channels=32, num_heads=4)


def edit_evaluations(patcher, tx: float, tz: float, branch: bool, z_steps: int = GENERATION_STEPS) -> int:
    """Model evaluations of an edit with a reused Φ on the generation's schedule: x's capture (steps 0..sx), z's (0..sz
    of its own run of z_steps steps, or sx..sz when z branches off x's run), the finish (sx..end); sx, sz as Capture
    Latent at Step chooses them."""
    import comfy.samplers
    from avi_core.conventions import step_for_timestep_fraction
    sampling = patcher.get_model_object("model_sampling")
    step = lambda f, n: step_for_timestep_fraction(f, comfy.samplers.calculate_sigmas(sampling, "ddim_uniform", n),  # noqa: E731
                                                   sampling.timestep).step
    sx, sz = step(tx, GENERATION_STEPS), step(tz, GENERATION_STEPS if branch else z_steps)
    return (sx + 1) + ((sz - sx + 1) if branch else (sz + 1)) + (GENERATION_STEPS - sx)


def build_sd15(unet_config: dict):
    """SD1.5's BaseModel with random weights (init_weights keeps activations O(1)), wrapped as ComfyUI wraps a loaded one."""
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models
    from devkit.tiny_models import init_weights
    config = comfy.supported_models.SD15(dict(unet_config))
    config.set_inference_dtype(torch.float32, torch.float32)
    cpu = torch.device("cpu")
    model = comfy.model_base.BaseModel(config, device=cpu)
    init_weights(model.diffusion_model, 0)
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def time_generation(patcher, context_dim: int, steps: int) -> tuple[list, torch.Tensor, torch.Tensor]:
    """(seconds of each of the first `steps` KSampler steps of a 50-step schedule, x0 at the last two steps)."""
    import comfy.sample
    gen = torch.Generator().manual_seed(0)
    cond = [[torch.randn((1, 77, context_dim), generator=gen), {}]]
    uncond = [[torch.randn((1, 77, context_dim), generator=gen), {}]]
    latent = torch.zeros(LATENT)
    noise = torch.randn(LATENT, generator=gen)
    stamps, x0s = [], []

    def callback(step, x0, x, total):
        stamps.append(time.perf_counter())
        x0s.append(x0.detach().float().clone())

    start = time.perf_counter()
    comfy.sample.sample(patcher, noise, GENERATION_STEPS, CFG, "ddim", "ddim_uniform", cond, uncond, latent,
                        last_step=steps, callback=callback, disable_pbar=True, seed=0)
    seconds = [b - a for a, b in zip([start] + stamps[:-1], stamps)]
    return seconds, x0s[-2], x0s[-1]


def timed(fn, repeats: int = 1):
    """(median seconds of fn(), its last result)."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="KSampler steps timed (the first is warm-up and left out)")
    parser.add_argument("--small", action="store_true", help="a UNet of SD1.5's layout at 1/10 width: a smoke run")
    parser.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error(f"--steps must be at least 2 (the first step is warm-up), got {args.steps}")
    torch.set_flush_denormal(True)
    from devkit import comfy_host
    with tempfile.TemporaryDirectory(prefix="avi-cost-") as scratch:
        comfy_host.prepare(scratch)
        unet = SMALL_UNET if args.small else SD15_UNET
        patcher = build_sd15(unet)
        params = sum(p.numel() for p in patcher.model.diffusion_model.parameters())
        seconds, x, z = time_generation(patcher, unet["context_dim"], args.steps)
        evaluations = {f"default (z on its own run of {Z_STEPS} steps)": edit_evaluations(patcher, PACK["tx"], PACK["tz"],
                                                                                         branch=False, z_steps=Z_STEPS),
                       f"z on its own run of {GENERATION_STEPS} steps": edit_evaluations(patcher, PACK["tx"], PACK["tz"], branch=False),
                       "z branched off x's run": edit_evaluations(patcher, PACK["tx"], PACK["tz"], branch=True)}
    step_s = statistics.mean(seconds[1:])
    generation_s = GENERATION_STEPS * step_s
    pairs = CapturedPairs(x, z, x, z, 0.0, 0.0, "eps")  # as Train AVI Φ passes x0 captures (space x0)
    rows = {}
    for name, hidden in (("hidden 4096 (node default, paper)", PHI_PRESETS["paper"]), ("hidden 512 (compact)", PHI_PRESETS["compact"])):
        settings = TrainSettings(k=PACK["k"], hidden=hidden, z_vectors=PACK["z_vectors"])
        train_s, result = timed(lambda: train_phi(pairs, settings))
        svd_s, _ = timed(lambda: (decompose_float32(x), decompose_float32(z)), repeats=5)
        edit_s, _ = timed(lambda: integrate(result.phi, x, z, rho=PACK["rho"], k=PACK["k"], s_inf=PACK["s_inf"],
                                            z_vectors=PACK["z_vectors"]), repeats=5)
        rows[name] = {"train_s": train_s, "svd_s": svd_s, "integrate_s": edit_s, "steps": len(result.history),
                      "share_of_generation": (train_s + svd_s + edit_s) / generation_s}
    threads = torch.get_num_threads()
    print(f"UNet: {'SD1.5 layout at 1/10 width' if args.small else 'SD1.5'}, {params / 1e6:.0f} M parameters, random weights; "
          f"CPU, {threads} threads; torch {torch.__version__}")
    print(f"generation at {'×'.join(map(str, LATENT[1:]))}: {step_s:.2f} s a step (mean of {len(seconds) - 1} after one "
          f"warm-up) × {GENERATION_STEPS} = {generation_s:.0f} s")
    print(f"\n{'Φ':38}{'train s':>9}{'SVDs s':>9}{'Integrate s':>13}{'of a generation':>17}")
    for name, r in rows.items():
        print(f"{name:38}{r['train_s']:>9.2f}{r['svd_s']:>9.4f}{r['integrate_s']:>13.4f}{r['share_of_generation']:>16.1%}")
    print("\nmodel evaluations of an edit with a reused Φ (a plain generation: 50)")
    for name, n in evaluations.items():
        print(f"  {name}: {n} ({n / GENERATION_STEPS:.2f}×)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"unet": "small" if args.small else "SD1.5", "unet_parameters": params, "threads": threads,
                       "torch": torch.__version__, "step_s": seconds, "generation_s": generation_s, "phi": rows,
                       "evaluations": evaluations}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
