"""The example workflows that reproduce the paper's findings on the digits model: Figures 2-4, Figure 5, the mobility map."""
from devkit.build_workflows import (BLUE, CORE_VERSION, DIGITS_FAMILY, GREEN, PACK_ID, PACK_MODULE, PURPLE, SEED, X,
                                    WorkflowBuilder, version)

PROMPT = "a handwritten 3"
INDICES, FACTORS = "0, 1, 2, 3", "0, 0.5, 1, 1.5, 2"
SWEEP_AT = (0.8, 0.5)  # Figures 2-4 scale singular values of latents at these fractions of T
SEEDS = 8  # the paper averages 30 samples for Figure 5; 8 run in seconds on a CPU
MOBILITY_STEPS = (9, 24)  # 0.8·T and 0.5·T of 50 ddim_uniform steps


def model_and_prompt(b: WorkflowBuilder, batch: int) -> dict:
    family = DIGITS_FAMILY
    n = {"family": family}
    n["ckpt"] = b.add("CheckpointLoaderSimple", (X["model"], 0), {"ckpt_name": family.ckpt})
    n["empty"] = b.add("EmptyLatentImage", (X["model"], 160), {"width": family.size, "height": family.size, "batch_size": batch},
                       title=f"{batch} seed(s)" if batch > 1 else None)
    n["positive"] = b.add("CLIPTextEncode", (X["prompt"], 0), {"text": PROMPT}, title="Prompt", size=[420, 150], color=GREEN)
    n["negative"] = b.add("CLIPTextEncode", (X["prompt"], 190), {"text": family.negative}, title="Negative prompt", size=[420, 120])
    for name in ("positive", "negative"):
        b.connect(n["ckpt"], "CLIP", n[name], "clip")
    b.group("Model and prompt", X["model"] - 20, -60, X["capture"] - X["model"] - 20, 420)
    return n


def sampler_inputs(b: WorkflowBuilder, n: dict, node) -> None:
    b.connect(n["ckpt"], "MODEL", node, "model")
    b.connect(n["positive"], 0, node, "positive")
    b.connect(n["negative"], 0, node, "negative")
    b.connect(n["empty"], 0, node, "latent_image")


def build_sweep(object_info: dict) -> dict:
    """Figures 2-4: one singular value scaled at a time, at 0.8·T and 0.5·T, each finished and laid out as a grid."""
    b = WorkflowBuilder(object_info, PACK_MODULE, PACK_ID, version(), CORE_VERSION)
    b.note(f"""## Figures 2-4: what one singular value carries (tiny digits model)
Captures *{PROMPT}* at {SWEEP_AT[0]:g}·T and at {SWEEP_AT[1]:g}·T, scales one singular value σ_i of the
noisy latent at a time (rows: i = {INDICES}; columns: factors {FACTORS}) and finishes every
variant with the same prompt: one batch per step, one captioned grid each. Press **Queue**.

**Change** *indices*, *factors* and *channel* in **Singular Value Sweep**, the capture's
*timestep_fraction*, the prompt and the seed.

**Outputs**: `output/avi/findings/sweep_*.png`.""", (X["note"], 0), (420, 420))
    n = model_and_prompt(b, 1)
    sampling = DIGITS_FAMILY.sampling
    for row, fraction in enumerate(SWEEP_AT):
        y = row * 620
        tag = f"{fraction:g}".replace(".", "")
        capture = b.add("AVICaptureLatent", (X["capture"], y), dict(sampling, seed=SEED, timestep_fraction=fraction),
                        title=f"Capture at {fraction:g}·T", color=BLUE)
        sampler_inputs(b, n, capture)
        svd = b.add("AVISVDDecompose", (X["svd"], y), {"space": "latent"}, title="SVD Decompose (noisy latent, as the paper)", color=BLUE)
        b.connect(capture, "latent", svd, "latent")
        sweep = b.add("AVISingularValueSweep", (X["train"], y), {"indices": INDICES, "factors": FACTORS}, color=PURPLE)
        b.connect(svd, "svd", sweep, "svd")
        inject = b.add("AVIInjectLatent", (X["edit"], y), {"cfg": sampling["cfg"]}, title="Inject the sweep", color=BLUE)
        b.connect(n["ckpt"], "MODEL", inject, "model")
        b.connect(n["positive"], 0, inject, "positive")
        b.connect(n["negative"], 0, inject, "negative")
        b.connect(sweep, "latents", inject, "latent")
        decode = b.add("VAEDecode", (X["image"], y))
        b.connect(inject, 0, decode, "samples")
        b.connect(n["ckpt"], "VAE", decode, "vae")
        grid = b.add("AVIImageGrid", (X["image"], y + 120), title=f"rows σ_{INDICES.replace(', ', ', σ_')}")
        b.connect(decode, 0, grid, "images")
        b.connect(sweep, "labels", grid, "labels")
        save = b.add("SaveImage", (X["image"] + 260, y), {"filename_prefix": f"avi/findings/sweep_{tag}T"}, size=[520, 480],
                     title=f"Sweep at {fraction:g}·T")
        b.connect(grid, 0, save, "images")
        b.group(f"Scale one singular value at {fraction:g}·T", X["capture"] - 20, y - 60, X["image"] + 800 - X["capture"], 600, "#88A")
    return b.build("digits_figure2_sweep")


def build_distance(object_info: dict) -> dict:
    """Figure 5: geodesic distance of top-4 subspaces between consecutive steps, mean ± std over seeds."""
    b = WorkflowBuilder(object_info, PACK_MODULE, PACK_ID, version(), CORE_VERSION)
    b.note(f"""## Figure 5: subspaces stay in a small neighbourhood (tiny digits model)
One run of *{PROMPT}* over {SEEDS} seeds keeps the latent at every one of the 50 steps; the geodesic
distance between the top-4 left singular subspaces of consecutive steps is averaged over seeds and
channels and plotted against the timestep with ± one standard deviation. The table is shown under
the node. The paper reports about 4.3e-4 for SD2.1 ("a photo of a celebrity", 30 samples, p = 4).

**Change** *batch_size* (seeds), *p* and *side*, *what* (noisy latent or x0 prediction).

**Outputs**: `output/avi/findings/distance_*.png`.""", (X["note"], 0), (420, 420))
    n = model_and_prompt(b, SEEDS)
    trajectory = b.add("AVICaptureTrajectory", (X["capture"], 0), dict(DIGITS_FAMILY.sampling, seed=SEED, keep_steps="all"), color=BLUE)
    sampler_inputs(b, n, trajectory)
    distance = b.add("AVITrajectoryDistance", (X["svd"], 0), {"p": 4, "side": "left", "what": "latent"}, color=PURPLE, size=[380, 420])
    b.connect(trajectory, "trajectory", distance, "trajectory")
    save = b.add("SaveImage", (X["train"], 0), {"filename_prefix": "avi/findings/distance"}, size=[560, 420], title="Figure 5")
    b.connect(distance, "plot", save, "images")
    b.group("Capture one trajectory, measure the subspaces", X["capture"] - 20, -60, X["edit"] + 200 - X["capture"], 560, "#88A")
    return b.build("digits_figure5_distance")


def build_mobility(object_info: dict) -> dict:
    """The mobility map: the best-matching rank at 0.5·T of each singular vector at 0.8·T."""
    a, c = MOBILITY_STEPS
    b = WorkflowBuilder(object_info, PACK_MODULE, PACK_ID, version(), CORE_VERSION)
    b.note(f"""## Mobility: singular vectors move in rank across steps (tiny digits model)
Keeps steps {a} (0.8·T) and {c} (0.5·T) of one run of *{PROMPT}* over {SEEDS} seeds and, for each
leading singular vector at step {a}, shows how well it matches every vector at step {c} (heatmap,
averaged over seeds) and where its best match ranks (crosses, seed 0; the ranks are listed under
the node). On the diagonal a vector kept its rank; off it, it moved.

**Change** *step_a*, *step_b* (they must be kept: *keep_steps* in **Capture Trajectory**), *channel*, *top*.

**Outputs**: `output/avi/findings/mobility_*.png`.""", (X["note"], 0), (420, 420))
    n = model_and_prompt(b, SEEDS)
    trajectory = b.add("AVICaptureTrajectory", (X["capture"], 0), dict(DIGITS_FAMILY.sampling, seed=SEED, keep_steps=f"{a}, {c}"),
                       color=BLUE)
    sampler_inputs(b, n, trajectory)
    mobility = b.add("AVIMobilityMap", (X["svd"], 0), {"step_a": a, "step_b": c, "channel": 0, "top": 16, "side": "left"},
                     color=PURPLE)
    b.connect(trajectory, "trajectory", mobility, "trajectory")
    save = b.add("SaveImage", (X["train"], 0), {"filename_prefix": "avi/findings/mobility"}, size=[480, 440], title="Mobility map")
    b.connect(mobility, "heatmap", save, "images")
    b.group("Capture two steps, match their singular vectors", X["capture"] - 20, -60, X["edit"] + 120 - X["capture"], 560, "#88A")
    return b.build("digits_mobility")


def build_findings(object_info: dict) -> dict:
    """{file name: workflow} of the findings workflows."""
    return {"digits_figure2_sweep.json": build_sweep(object_info), "digits_figure5_distance.json": build_distance(object_info),
            "digits_mobility.json": build_mobility(object_info)}
