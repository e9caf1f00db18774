"""Write the pack's example workflows (example_workflows/*.json) from the nodes' own definitions.

Usage: python devkit/build_workflows.py [OUT_DIR]   (default: example_workflows/)
Boots the embedded ComfyUI once to read /object_info, then lays out each workflow.
"""
import json
import os
import sys
import tempfile
from dataclasses import dataclass, replace

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from avi_core.defaults import FULL_STEPS, PACK, PAPER, Z_STEPS  # noqa: E402
from devkit.workflow_builder import WorkflowBuilder  # noqa: E402

PACK_ID, PACK_MODULE, CORE_VERSION = "avi-latent-svd", "avi-latent-svd", "0.3.75"
SD21 = {
    "name": "v2-1_512-ema-pruned.safetensors",
    "url": "https://huggingface.co/stabilityai/stable-diffusion-2-1-base/resolve/main/v2-1_512-ema-pruned.safetensors",
    "directory": "checkpoints",
}
SDXL = {
    "name": "sd_xl_base_1.0.safetensors",
    "url": "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/sd_xl_base_1.0.safetensors",
    "directory": "checkpoints",
}
NEGATIVE = "blurry, low quality, deformed, watermark, text"
PAPER_SAMPLING = dict(steps=50, cfg=7.5, sampler_name="ddim", scheduler="ddim_uniform")
TRAINING = dict(k=PACK["k"], hidden=512, epochs=5, samples_per_pair=-1, batch_size=256, learning_rate=0.001,
                lambda_1=3.0, lambda_2=10.0, lambda_3=10.0, lambda_4=10.0, rho=1.0, z_vectors=PACK["z_vectors"], seed=0)
# Where x and z are taken, what they are decomposed as and how Integrate forms y_pred (avi_core.defaults).
METHOD, PAPER_METHOD = PACK, PAPER
SEED = 42
X = dict(note=0, model=460, prompt=860, capture=1320, svd=1720, train=2120, edit=2540, image=2960)
GREEN, BLUE, PURPLE = ("#232", "#353"), ("#223", "#335"), ("#323", "#535")

ATTRIBUTES = {
    "sd21_young": ("Young", "a photo of a male person", "a photo of a young male person", True),
    "sd21_male": ("Male", "a realistic portrait of a teacher", "a realistic portrait of a male teacher", False),
    "sd21_female": ("Female", "a realistic portrait of a doctor", "a realistic portrait of a female doctor", False),
    "sd21_old": ("Old", "a photo of a man", "a photo of an old man", False),
    "sd21_smile": ("Smile", "a photo of a woman", "a photo of a smiling woman", False),
    "sd21_castle": ("Restored castle", "a photo of a dilapidated castle", "a photo of a castle", False),
}
RHO_SWEEP = "0, 0.25, 0.5, 0.75, 1, 1.25, 1.5"
# The default of `make run`: the pack's own trained model, an edit anyone can see on a CPU in about a minute.
DIGITS = {"digits_bold": ("Bold", "a handwritten 3", "a bold handwritten 3", True)}
DIGITS_PAPER = {"digits_bold_paper": ("Bold, the paper's settings", "a handwritten 3", "a bold handwritten 3", True)}
DIGITS_SWEEP = ("digits_rho_sweep", "Bold, ρ sweep", "a handwritten 7", "a bold handwritten 7", RHO_SWEEP)
OVERWRITING = ("sd21_young", "digits_bold")  # workflows that keep one Φ file under their name (reuse reads it)
SWEEP = ("sd21_rho_sweep", "Old, ρ sweep", "a photo of a woman", "a photo of an old woman", RHO_SWEEP)


def method_text(method: dict) -> str:
    """The pack's method settings in words."""
    return (f"x at {method['tx']:g}·T and z at {method['tz']:g}·T, both decomposed as the model's x0 prediction (`space` x0),\n"
            f"k = {method['k']} with z's vectors `{method['z_vectors']}`, S_inf `{method['s_inf']}`, ρ = {method['rho']:g}; **Inject Latent** "
            "finishes the edit\nwith the target prompt (its `target` input), the unedited x with the original")


DEFAULTS_TEXT = f"""the pack's defaults: {FULL_STEPS} `ddim` steps on `ddim_uniform` (z's capture on a run of {Z_STEPS} where it
starts from noise: only z's x0 at {PACK['tz']:g}·T enters the edit), {method_text(PACK)}. The paper's
literal settings (x at 0.8·T, `space` latent, k = N/2, `tail`, S_inf `S`, ρ = 1, the original prompt to the end)
are in digits_bold_paper and docs/method.md: measured on the tiny digits model, they do not change the attribute"""
SHARED_SETTINGS = f"""**Keep** {DEFAULTS_TEXT}.
Φ's width is 512 here: it trains in seconds on a GPU and ends within about 1 % of the paper's 4096-wide Φ; set
`hidden` to 4096 in **Train AVI Φ** for the paper's exact network.

**Needs** Stable Diffusion 2.1 base (512 px) in `models/checkpoints`; the loader offers the download."""
DIGITS_CKPT = "avi_demo_tiny_digits_sd2.safetensors"
DIGITS_SETTINGS = f"""**Model**: the pack's own tiny digits model (SD2 family, 128 px, 16x16 latents, trained on CPU from
MNIST by `devkit/train_tiny_digits.py`; shipped with the pack, which lists it in Load Checkpoint). Its captions
name a digit and, or not, its stroke (*thin*, *bold*), ink colour (*white*, *red*, *green*, *blue*, *yellow*)
and slant (*slanted left*, *slanted right*): "a bold red handwritten 3 slanted left".

**Keep** {DEFAULTS_TEXT}; Φ 512 wide."""


@dataclass(frozen=True)
class Family:
    """What the workflows of one model share: checkpoint, image size, negative prompt, sampling and training widgets."""

    ckpt: str
    models: tuple
    size: int
    negative: str
    sampling: dict
    training: dict
    settings: str
    label: str
    method: dict = None

    def __post_init__(self):
        object.__setattr__(self, "method", self.method or METHOD)


SD21_FAMILY = Family(SD21["name"], (SD21,), 512, NEGATIVE, PAPER_SAMPLING, TRAINING, SHARED_SETTINGS, "SD2.1")
# SDXL base's usual sampling (Euler, cfg 5-8), kept to a one-step deterministic sampler: Inject Latent then
# continues a capture exactly (docs/nodes.md, Inject Latent).
SDXL_SAMPLING = dict(steps=30, cfg=6.0, sampler_name="euler", scheduler="normal")
SDXL_SETTINGS = f"""**Keep** the pack's method defaults: {method_text(PACK)}. Sampling: 30 `euler` steps on `normal`, cfg 6;
another one-step deterministic sampler (`ddim`, `heun`) works too, a multistep or ancestral one does not continue
exactly. At 1024 px x and z are 4×128×128 latents (N = 128); Φ is 512 wide.

**Needs** Stable Diffusion XL base 1.0 (1024 px) in `models/checkpoints`; the loader offers the download."""
SDXL_FAMILY = Family(SDXL["name"], (SDXL,), 1024, NEGATIVE, SDXL_SAMPLING, TRAINING, SDXL_SETTINGS, "SDXL")
SDXL_ATTRIBUTES = {"sdxl_smile": ("Smile", "a portrait photo of a woman", "a portrait photo of a smiling woman", False)}
DIGITS_FAMILY = Family(DIGITS_CKPT, (), 128, "", dict(PAPER_SAMPLING, cfg=5.0), TRAINING, DIGITS_SETTINGS, "tiny digits model")
PAPER_SETTINGS = """**Keep** the paper's literal settings: 50 `ddim` steps on `ddim_uniform`, x at 0.8·T and z at 0.5·T, both
decomposed as noisy VP latents (`space` latent), k = N/2 = 8, z's vectors `tail` (Algorithm 1 as printed), S_inf `S`,
ρ = 1, Φ 512 wide. On this model the edit barely changes the image (docs/benchmarks.md, Edit quality); digits_bold has the pack's
defaults, which edit."""
PEOPLE_CKPT = "avi_demo_tiny_people_sd2.safetensors"
PEOPLE_SETTINGS = f"""**Model**: the pack's own tiny people model (SD2 family, 128 px, 16x16 latents, trained on CPU from
Noto, Twemoji and OpenMoji people emoji by `devkit/train_tiny_people.py`; shipped with the pack, which lists it in
Load Checkpoint). Its captions name a person, man or woman (or boy, girl, baby, old man, ...), a role, hair and skin
tone, each word or not: "a woman health worker with red hair, dark skin tone".

**Keep** {DEFAULTS_TEXT}; Φ 512 wide."""
PEOPLE = {"people_woman": ("Woman", "a person health worker", "a woman health worker", False)}
PEOPLE_FAMILY = replace(DIGITS_FAMILY, ckpt=PEOPLE_CKPT, settings=PEOPLE_SETTINGS, label="tiny people model")
DIGITS_PAPER_FAMILY = replace(DIGITS_FAMILY, training=dict(TRAINING, k=8, z_vectors=PAPER["z_vectors"]), settings=PAPER_SETTINGS,
                              label="tiny digits model, the paper's literal settings", method=PAPER_METHOD)


def prompts_and_model(b: WorkflowBuilder, original: str, target: str, batch: int = 1, seed: int = SEED,
                      family: Family = SD21_FAMILY, empty: bool = True):
    """Loader, shared seed, empty latent (unless the captures start from an image) and the three prompts; the nodes in a dict."""
    n = {"family": family}
    properties = {"models": list(family.models)} if family.models else None
    n["ckpt"] = b.add("CheckpointLoaderSimple", (X["model"], 0), {"ckpt_name": family.ckpt}, properties=properties)
    n["seed"] = b.add("PrimitiveInt", (X["model"], 160), {"value": seed}, title="seed (both captures)", color=GREEN)
    if empty:
        n["empty"] = b.add("EmptyLatentImage", (X["model"], 300), {"width": family.size, "height": family.size, "batch_size": batch})
    n["original"] = b.add("CLIPTextEncode", (X["prompt"], 0), {"text": original}, title="Original prompt", size=[420, 150], color=GREEN)
    n["target"] = b.add("CLIPTextEncode", (X["prompt"], 190), {"text": target}, title="Target prompt", size=[420, 150], color=GREEN)
    n["negative"] = b.add("CLIPTextEncode", (X["prompt"], 380), {"text": family.negative}, title="Negative prompt", size=[420, 120])
    for name in ("original", "target", "negative"):
        b.connect(n["ckpt"], "CLIP", n[name], "clip")
    b.group("Model and prompts", X["model"] - 20, -60, X["capture"] - X["model"] - 20, 600)
    return n


def z_sampling(sampling: dict, method: dict, inverted: bool, composed: bool = False) -> dict:
    """z's capture run: Z_STEPS of x's FULL_STEPS `ddim_uniform` steps where z is decomposed as x0 (defaults.Z_STEPS) and
    starts from noise; otherwise x's own run (an inverted start is the noise of x's full run, not of a coarser one; two
    composed attributes are measured with z on the full run, bench/bench_real.py)."""
    coarser = (sampling["steps"] == FULL_STEPS and sampling["scheduler"] == "ddim_uniform" and method["space"] == "x0"
               and not inverted and not composed)
    return dict(sampling, steps=Z_STEPS) if coarser else dict(sampling)


def captures(b: WorkflowBuilder, n: dict, composed: bool = False) -> None:
    """x (original prompt, Tx) and z (target prompt, Tz; z_sampling) from the same seed (or n["start"], an inverted
    image), and their SVDs."""
    method, sampling = n["family"].method, n["family"].sampling
    runs = {"capture_x": sampling, "capture_z": z_sampling(sampling, method, "start" in n, composed)}
    for name, prompt, fraction, y in (("capture_x", "original", method["tx"], 0), ("capture_z", "target", method["tz"], 340)):
        label = f"x: original at {fraction:g}·T" if name == "capture_x" else f"z: target at {fraction:g}·T"
        if runs[name]["steps"] != sampling["steps"]:
            label += f", {runs[name]['steps']} steps"
        seed = n["seed"].widgets["value"]  # shown on the linked widget too
        n[name] = b.add("AVICaptureLatent", (X["capture"], y), dict(runs[name], seed=seed, timestep_fraction=fraction),
                        title=f"Capture {label}", color=BLUE)
        b.connect(n["ckpt"], "MODEL", n[name], "model")
        b.connect(n[prompt], 0, n[name], "positive")
        b.connect(n["negative"], 0, n[name], "negative")
        b.connect(n.get("start", n.get("empty")), 0, n[name], "latent_image")
        b.connect(n["seed"], 0, n[name], "seed")
    space = {"space": method["space"]}
    n["svd_x"] = b.add("AVISVDDecompose", (X["svd"], 0), space, title="SVD Decompose x", color=BLUE)
    n["svd_z"] = b.add("AVISVDDecompose", (X["svd"], 140), space, title="SVD Decompose z", color=BLUE)
    b.connect(n["capture_x"], "latent", n["svd_x"], "latent")
    b.connect(n["capture_z"], "latent", n["svd_z"], "latent")
    n["spectrum"] = b.add("PreviewImage", (X["svd"], 280), title="Spectrum of x", size=[360, 260])
    b.connect(n["svd_x"], "spectrum", n["spectrum"], "images")
    b.group("1 · Capture x and z, decompose", X["capture"] - 20, -60, X["train"] - X["capture"] - 20, 760, "#88A")


def learn(b: WorkflowBuilder, n: dict, save_as: str, if_exists: str, note: str) -> None:
    """Train AVI Φ on (x, z), save it, show the loss curves."""
    n["train"] = b.add("AVITrainPhi", (X["train"], 0), dict(n["family"].training, note=note), color=PURPLE)
    b.connect(n["svd_x"], "svd", n["train"], "x")
    b.connect(n["svd_z"], "svd", n["train"], "z")
    n["save_phi"] = b.add("AVISavePhi", (X["train"], 500), {"filename": save_as, "if_exists": if_exists, "note": note}, color=PURPLE)
    b.connect(n["train"], "phi", n["save_phi"], "phi")
    n["losses"] = b.add("PreviewImage", (X["train"], 660), title="Loss curves", size=[380, 260])
    b.connect(n["train"], "loss_curves", n["losses"], "images")
    b.group("2 · Learn the attribute (Φ)", X["train"] - 20, -60, X["edit"] - X["train"] - 20, 1000, "#A8A")


def finishes_with_target(n: dict) -> bool:
    """Whether the family's method finishes an edit with the target prompt (defaults.PACK) or the original only (PAPER)."""
    return n["family"].method["finish"] == "target"


def finish(b: WorkflowBuilder, n: dict, name: str, latent_from, y: float, title: str, target=None):
    """Inject Latent (original prompt; `target`, a prompt node, for every remaining step when given) then VAE Decode;
    returns the decode node."""
    inject = b.add("AVIInjectLatent", (X["edit"], y), {"cfg": n["family"].sampling["cfg"]}, title=title, color=BLUE)
    b.connect(n["ckpt"], "MODEL", inject, "model")
    b.connect(n["original"], 0, inject, "positive")
    b.connect(n["negative"], 0, inject, "negative")
    if target is not None:
        b.connect(target, 0, inject, "target")
    b.connect(*latent_from, inject, "latent")
    decode = b.add("VAEDecode", (X["image"], y), title=f"Decode {name}")
    b.connect(inject, 0, decode, "samples")
    b.connect(n["ckpt"], "VAE", decode, "vae")
    n[f"inject_{name}"], n[f"decode_{name}"] = inject, decode
    return decode


def edited_and_original(b: WorkflowBuilder, n: dict) -> tuple:
    """AVI Integrate at the family's ρ with n["phi_source"]; the edit and x itself finished: their decode nodes."""
    method = n["family"].method
    n["integrate"] = b.add("AVIIntegrate", (X["edit"], 0), {"rho": method["rho"], "s_inf": method["s_inf"]}, color=PURPLE)
    b.connect(n["phi_source"], "phi", n["integrate"], "phi")
    b.connect(n["svd_x"], "svd", n["integrate"], "x")
    b.connect(n["svd_z"], "svd", n["integrate"], "z")
    edited = finish(b, n, "edited", (n["integrate"], "y_pred"), 240, "Inject y_pred (edited)", edit_target(n))
    original = finish(b, n, "original", (n["capture_x"], "latent"), 460, "Inject x (unedited)")
    return edited, original


def edit_target(n: dict, prompt: str = "target"):
    """The prompt node an edit finishes with beside the original: n[prompt] (pack) or none (paper)."""
    return n[prompt] if finishes_with_target(n) else None


def edit_group_title(n: dict, what: str = "Edit (ρ)") -> str:
    return f"{what} and finish with the {'target' if finishes_with_target(n) else 'original'} prompt"


def edit_and_compare(b: WorkflowBuilder, n: dict, name: str) -> None:
    """Integrate at ρ, finish the edit and the original, save both and a side-by-side image."""
    edited, original = edited_and_original(b, n)
    n["stitch"] = b.add("ImageStitch", (X["image"] + 260, 0), {"direction": "right", "spacing_width": 16}, title="Original | edited")
    b.connect(original, 0, n["stitch"], "image1")
    b.connect(edited, 0, n["stitch"], "image2")
    for key, image, y in (("original", original, 300), ("edited", edited, 620), ("side_by_side", n["stitch"], 940)):
        save = b.add("SaveImage", (X["image"] + 260, y), {"filename_prefix": f"avi/{name}/{key}"}, size=[420, 300],
                     title={"original": "Original", "edited": "Edited", "side_by_side": "Original | edited"}[key])
        b.connect(image, 0, save, "images")
    b.group(f"3 · {edit_group_title(n)}", X["edit"] - 20, -60, X["image"] + 720 - X["edit"], 1340, "#8A8")


def sweep(b: WorkflowBuilder, n: dict, name: str, rho_list: str, y: float = 1400) -> None:
    """A second AVI Integrate with a list of ρ, finished and laid out as one captioned grid."""
    n["integrate_sweep"] = b.add("AVIIntegrate", (X["edit"], y), {"rho_list": rho_list, "s_inf": n["family"].method["s_inf"]},
                                 title="AVI Integrate (ρ sweep)", color=PURPLE)
    b.connect(n["phi_source"], "phi", n["integrate_sweep"], "phi")
    b.connect(n["svd_x"], "svd", n["integrate_sweep"], "x")
    b.connect(n["svd_z"], "svd", n["integrate_sweep"], "z")
    decode = finish(b, n, "sweep", (n["integrate_sweep"], "y_pred"), y + 260, "Inject the sweep", edit_target(n))
    n["grid"] = b.add("AVIImageGrid", (X["image"], y + 420), title="ρ sweep grid")
    b.connect(decode, 0, n["grid"], "images")
    b.connect(n["integrate_sweep"], "rho_labels", n["grid"], "labels")
    save = b.add("SaveImage", (X["image"] + 260, y), {"filename_prefix": f"avi/{name}/rho_sweep"}, title="ρ sweep", size=[620, 300])
    b.connect(n["grid"], 0, save, "images")
    b.group("4 · ρ sweep (Figure 7)", X["edit"] - 20, y - 60, X["image"] + 920 - X["edit"], 820, "#AA8")


def attribute_note(label: str, original: str, target: str, name: str, with_sweep: bool, family: Family = SD21_FAMILY) -> str:
    """The read-me of an attribute workflow."""
    sweep_text = f", and a ρ sweep grid (ρ = {RHO_SWEEP}; group 4)" if with_sweep else ""
    return f"""## {label}: an AVI attribute edit ({family.label})
Edits *{original}* towards *{target}* and keeps identity, pose and background: Attribute Vector
Integration on the SVD of the latent. Press **Queue**.

**Change**
- *Original prompt* and *Target prompt* (green): the target adds or removes the attribute words.
- *seed* (green): both captures share it.
- *rho* in **AVI Integrate**: edit strength, 0 (none) to 2 (above 1 extrapolates).

{family.settings}

**Outputs** in `output/avi/{name}/`: the original, the edited image and both side by side{sweep_text}.
Φ is saved to `models/avi/`; **Load AVI Φ** reuses it on new seeds (see sd21_reuse_phi)."""


def build_attribute(oi: dict, name: str, label: str, original: str, target: str, with_sweep: bool,
                    family: Family = SD21_FAMILY) -> dict:
    """The standard edit workflow for one attribute."""
    b = WorkflowBuilder(oi, PACK_MODULE, PACK_ID, version(), CORE_VERSION)
    attribute = name.removeprefix("sd21_")
    b.note(attribute_note(label, original, target, attribute, with_sweep, family), (X["note"], 0), (420, 620))
    n = prompts_and_model(b, original, target, family=family)
    captures(b, n)
    learn(b, n, attribute, "overwrite" if name in OVERWRITING else "add number", f"{original} → {target}")
    n["phi_source"] = n["train"]
    edit_and_compare(b, n, attribute)
    if with_sweep:
        sweep(b, n, attribute, RHO_SWEEP)
    return b.build(name, models=list(family.models) or None)


def build_sweep(oi: dict, spec: tuple = SWEEP, family: Family = SD21_FAMILY) -> dict:
    """Figure 7: one run, a batch of ρ values, a captioned grid."""
    name, label, original, target, rho_list = spec
    attribute = label.split(",")[0].lower()
    b = WorkflowBuilder(oi, PACK_MODULE, PACK_ID, version(), CORE_VERSION)
    b.note(f"""## {label} (the paper's Figure 7)
Learns *{attribute}* from *{original}* → *{target}* ({family.label}), then applies it at ρ = {rho_list} in one run:
one latent per ρ, finished and laid out as one captioned grid. The change grows with ρ while the
identity stays.

**Change** the prompts, the *seed*, and *rho_list* in **AVI Integrate (ρ sweep)** (any list of
values in [0, 2], separated by commas).

{family.settings}

**Output**: `output/avi/rho_sweep/rho_sweep_*.png`.""", (X["note"], 0), (420, 560))
    n = prompts_and_model(b, original, target, family=family)
    captures(b, n)
    learn(b, n, f"{attribute}_sweep", "add number", f"{original} → {target}")
    n["phi_source"] = n["train"]
    sweep(b, n, name.removeprefix("sd21_"), rho_list, y=0)
    return b.build(name, models=list(family.models) or None)


def build_reuse(oi: dict) -> dict:
    """Load a saved Φ and apply it to a batch of new seeds, no training."""
    _, original, target, _ = ATTRIBUTES["sd21_young"]
    b = WorkflowBuilder(oi, PACK_MODULE, PACK_ID, version(), CORE_VERSION)
    b.note(f"""## Reuse a learned attribute on new seeds
Loads `young.safetensors` (saved by sd21_young) and applies it to four new seeds at once, with no
training: like a LoRA, the attribute is learned once and reused.

**Change**
- *phi_name* in **Load AVI Φ**: any attribute in `models/avi` (trained for 512 px SD2.1 latents).
- *seed* and *batch_size* (Empty Latent Image): which and how many new images.
- the prompts: keep the ones the attribute was learned from, or close variants.

{SHARED_SETTINGS}

**Output**: `output/avi/reuse/`: each original above its edit, one column per seed.""", (X["note"], 0), (420, 600))
    n = prompts_and_model(b, original, target, batch=4, seed=2024)
    captures(b, n)
    n["load"] = b.add("AVILoadPhi", (X["train"], 0), {"phi_name": "young.safetensors"}, color=PURPLE)
    n["phi_source"] = n["load"]
    b.group("2 · Load the attribute (Φ)", X["train"] - 20, -60, X["edit"] - X["train"] - 20, 300, "#A8A")
    edited, original_image = edited_and_original(b, n)
    n["stitch"] = b.add("ImageStitch", (X["image"] + 260, 0), {"direction": "down", "spacing_width": 16}, title="Original over edited")
    b.connect(original_image, 0, n["stitch"], "image1")
    b.connect(edited, 0, n["stitch"], "image2")
    n["grid"] = b.add("AVIImageGrid", (X["image"] + 260, 240), {"columns": 4}, title="One column per seed")
    b.connect(n["stitch"], 0, n["grid"], "images")
    save = b.add("SaveImage", (X["image"] + 260, 420), {"filename_prefix": "avi/reuse/original_over_edited"}, size=[620, 360])
    b.connect(n["grid"], 0, save, "images")
    b.group(f"3 · {edit_group_title(n, 'Edit new seeds (ρ)')}", X["edit"] - 20, -60, X["image"] + 920 - X["edit"], 900, "#8A8")
    return b.build("sd21_reuse_phi", models=[SD21])


def version() -> str:
    """The pack's version from pyproject.toml."""
    import tomllib

    with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["version"]


def build_all(object_info: dict) -> dict:
    """{file name: workflow dict} for every example workflow."""
    from devkit.build_workflows_findings import build_findings
    from devkit.build_workflows_flux import build_flux
    from devkit.build_workflows_real import build_composed, build_real_image

    out = {f"{name}.json": build_attribute(object_info, name, *spec) for name, spec in ATTRIBUTES.items()}
    out.update({f"{name}.json": build_attribute(object_info, name, *spec, family=DIGITS_FAMILY) for name, spec in DIGITS.items()})
    out.update({f"{name}.json": build_attribute(object_info, name, *spec, family=PEOPLE_FAMILY) for name, spec in PEOPLE.items()})
    out.update({f"{name}.json": build_attribute(object_info, name, *spec, family=SDXL_FAMILY) for name, spec in SDXL_ATTRIBUTES.items()})
    out.update({f"{name}.json": build_attribute(object_info, name, *spec, family=DIGITS_PAPER_FAMILY)
                for name, spec in DIGITS_PAPER.items()})
    out[f"{SWEEP[0]}.json"] = build_sweep(object_info)
    out[f"{DIGITS_SWEEP[0]}.json"] = build_sweep(object_info, DIGITS_SWEEP, DIGITS_FAMILY)
    out["sd21_reuse_phi.json"] = build_reuse(object_info)
    out.update(build_real_image(object_info))
    out.update(build_composed(object_info))
    out.update(build_findings(object_info))
    out.update(build_flux(object_info))
    return out


def main(out_dir: str) -> None:
    from devkit import comfy_host

    host = comfy_host.boot(tempfile.mkdtemp(prefix="avi-build-"), pack_dir=REPO_ROOT)
    os.makedirs(out_dir, exist_ok=True)
    for file_name, workflow in build_all(host.object_info()).items():
        with open(os.path.join(out_dir, file_name), "w", encoding="utf-8") as f:
            json.dump(workflow, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(os.path.join(out_dir, file_name))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO_ROOT, "example_workflows"))
