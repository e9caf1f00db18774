"""Write the pack's subgraph blueprints (subgraphs/*.json): the whole edit as one node in ComfyUI's node library.

Usage: python devkit/build_blueprints.py [OUT_DIR]   (default: subgraphs/)
Boots the embedded ComfyUI once to read /object_info, then builds each blueprint from the tables below.

Every setting comes from the pack's defaults (avi_core.defaults.PACK, through build_workflows' METHOD,
TRAINING and PAPER_SAMPLING), so a blueprint changes with them: rerun this script and commit the files
(tests/host/test_blueprints.py fails until they match). Which inner widget the blueprint's `strength`
drives is STRENGTH, the one place to change when the edit's strength changes.
"""
import json
import os
import sys
from dataclasses import dataclass

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from devkit.blueprint_builder import BlueprintBuilder  # noqa: E402
from devkit.build_workflows import (BLUE, CORE_VERSION, GREEN, METHOD, PACK_ID, PACK_MODULE, PAPER_SAMPLING, PURPLE,  # noqa: E402
                                    SEED, TRAINING, version, z_sampling)
from devkit.build_workflows_real import REFINE  # noqa: E402

OUT_DIR = os.path.join(REPO_ROOT, "subgraphs")
CATEGORY = "AVI"  # listed under Subgraph Blueprints/AVI in the node library
SAMPLING = PAPER_SAMPLING  # the nodes' own defaults: 50 ddim steps on ddim_uniform, cfg 7.5
# The blueprint's strength is AVI Integrate's ρ, starting at the pack's default.
STRENGTH = {"node": "integrate", "widget": "rho", "value": METHOD["rho"]}
COLUMNS = dict(prompt=0, capture=460, svd=880, train=1280, edit=1700, image=2120)


@dataclass(frozen=True)
class Blueprint:
    """One blueprint: its file name (the node's name in the library), what its captures start from, its description."""

    name: str
    start: str  # "noise": an empty latent and a seed; "image": an IMAGE input, encoded and inverted
    description: str


BLUEPRINTS = (
    Blueprint("AVI attribute edit", "noise",
              "Edits one attribute from an original prompt towards a target prompt and keeps the rest (AVI on the SVD of the "
              "latent), finished with the target prompt. Both prompts are sampled from one seed; outputs the original image, the edited image and the learned "
              "attribute Φ (Save AVI Φ keeps it for new seeds). Strength is AVI Integrate's ρ. Open the node to change the size "
              "(Empty Latent Image), the sampling or the training."),
    Blueprint("AVI edit an image", "image",
              "Edits one attribute of an image: the image is encoded and inverted (DDIM) under the original prompt, which "
              "should describe it, then edited towards the target prompt as AVI attribute edit does. The image's size is "
              "the edit's size. Outputs the unedited inversion, the edited image and the learned attribute Φ."),
)

EVERY = ("noise", "image")
# The subgraph's inputs, in the order the node shows them: (name, type, label, the kinds that have it, the inner
# inputs it feeds). width and height are inputs because frontend 1.49 shows a subgraph node's widgets only as inputs,
# and the latent size (which Φ is trained for) differs by model: 128 px for the digits model, 512 for SD1/2, 1024 for SDXL.
INPUTS = (
    ("model", "MODEL", "model", EVERY, [("capture_x", "model"), ("capture_z", "model"), ("inject_edited", "model"),
                                        ("inject_original", "model"), ("invert", "model")]),
    ("clip", "CLIP", "clip", EVERY, [("original", "clip"), ("target", "clip"), ("negative", "clip")]),
    ("vae", "VAE", "vae", EVERY, [("decode_original", "vae"), ("decode_edited", "vae"), ("encode", "vae")]),
    ("image", "IMAGE", "image", ("image",), [("encode", "pixels")]),
    ("original_prompt", "STRING", "original prompt", EVERY, [("original", "text")]),
    ("target_prompt", "STRING", "target prompt", EVERY, [("target", "text")]),
    ("seed", "INT", "seed", ("noise",), [("capture_x", "seed"), ("capture_z", "seed")]),
    ("strength", "FLOAT", "strength", EVERY, [(STRENGTH["node"], STRENGTH["widget"])]),
    ("width", "INT", "width", ("noise",), [("size", "width")]),
    ("height", "INT", "height", ("noise",), [("size", "height")]),
)
ONE_KIND_ONLY = {"size", "encode", "invert"}  # inner nodes of one kind: skipped where the other kind lists them
OUTPUTS = (("original", "IMAGE", "original image", "decode_original", 0),
           ("edited", "IMAGE", "edited image", "decode_edited", 0),
           ("phi", "AVI_PHI", "Φ", "train", "phi"))


def add_nodes(b: BlueprintBuilder, start: str) -> dict:
    """The edit graph inside the subgraph, keyed by role; n["start"] is what the captures start from."""
    c = COLUMNS
    n = {
        "original": b.add("CLIPTextEncode", (c["prompt"], 0), {"text": ""}, title="Original prompt", size=[400, 140], color=GREEN),
        "target": b.add("CLIPTextEncode", (c["prompt"], 180), {"text": ""}, title="Target prompt", size=[400, 140], color=GREEN),
        "negative": b.add("CLIPTextEncode", (c["prompt"], 360), {"text": ""}, title="Negative prompt", size=[400, 120]),
    }
    if start == "noise":
        n["start"] = n["size"] = b.add("EmptyLatentImage", (c["prompt"], 520), title="Size (Φ is trained for it)")
    else:
        n["encode"] = b.add("VAEEncode", (c["prompt"], 520))
        sampling = {k: SAMPLING[k] for k in ("steps", "cfg", "sampler_name", "scheduler")}  # retraced by the captures
        n["start"] = n["invert"] = b.add("AVIInvertLatent", (c["prompt"], 620), dict(sampling, refine=REFINE), color=BLUE)
    runs = {"capture_x": SAMPLING, "capture_z": z_sampling(SAMPLING, METHOD, inverted=start == "image")}
    for key, prompt, fraction, y in (("capture_x", "original", METHOD["tx"], 0), ("capture_z", "target", METHOD["tz"], 340)):
        widgets = dict(runs[key], timestep_fraction=fraction, **({"seed": SEED} if start == "noise" else {}))
        n[key] = b.add("AVICaptureLatent", (c["capture"], y), widgets, color=BLUE,
                       title=f"Capture {'x: original' if key == 'capture_x' else 'z: target'} at {fraction:g}·T"
                             + (f", {runs[key]['steps']} steps" if runs[key]["steps"] != SAMPLING["steps"] else ""))
    for key, y in (("svd_x", 0), ("svd_z", 160)):
        n[key] = b.add("AVISVDDecompose", (c["svd"], y), {"space": METHOD["space"]}, title=f"SVD Decompose {key[-1]}", color=BLUE)
    n["train"] = b.add("AVITrainPhi", (c["train"], 0), dict(TRAINING), color=PURPLE)
    n["integrate"] = b.add("AVIIntegrate", (c["edit"], 0), {STRENGTH["widget"]: STRENGTH["value"], "s_inf": METHOD["s_inf"]},
                           color=PURPLE)
    for key, y, title in (("inject_edited", 260, "Inject y_pred (edited)"), ("inject_original", 480, "Inject x (unedited)")):
        n[key] = b.add("AVIInjectLatent", (c["edit"], y), {"cfg": SAMPLING["cfg"]}, title=title, color=BLUE)
    n["decode_edited"] = b.add("VAEDecode", (c["image"], 260), title="Decode edited")
    n["decode_original"] = b.add("VAEDecode", (c["image"], 480), title="Decode original")
    return n


def wire(b: BlueprintBuilder, n: dict, start: str) -> None:
    """The links between inner nodes (those from the subgraph's inputs are in INPUTS)."""
    links = [("negative", 0, "capture_x", "negative"), ("negative", 0, "capture_z", "negative"),
             ("original", 0, "capture_x", "positive"), ("target", 0, "capture_z", "positive"),
             ("start", 0, "capture_x", "latent_image"), ("start", 0, "capture_z", "latent_image"),
             ("capture_x", "latent", "svd_x", "latent"), ("capture_z", "latent", "svd_z", "latent"),
             ("svd_x", "svd", "train", "x"), ("svd_z", "svd", "train", "z"),
             ("train", "phi", "integrate", "phi"), ("svd_x", "svd", "integrate", "x"), ("svd_z", "svd", "integrate", "z"),
             ("integrate", "y_pred", "inject_edited", "latent"), ("capture_x", "latent", "inject_original", "latent"),
             ("inject_edited", 0, "decode_edited", "samples"), ("inject_original", 0, "decode_original", "samples")]
    for key in ("inject_edited", "inject_original"):
        links += [("original", 0, key, "positive"), ("negative", 0, key, "negative")]
    if METHOD["finish"] == "target":  # the edit finishes with the target prompt; the unedited x with the original
        links.append(("target", 0, "inject_edited", "target"))
    if start == "image":
        links += [("encode", 0, "invert", "latent"), ("original", 0, "invert", "positive"), ("negative", 0, "invert", "negative")]
    for src, output, dst, input_name in links:
        b.connect(n[src], output, n[dst], input_name)


def build_blueprint(object_info: dict, spec: Blueprint) -> dict:
    """One blueprint file's dict."""
    b = BlueprintBuilder(object_info, PACK_MODULE, PACK_ID, version(), CORE_VERSION)
    n = add_nodes(b, spec.start)
    wire(b, n, spec.start)
    for name, io_type, label, kinds, targets in INPUTS:
        if spec.start not in kinds:
            continue
        unknown = {key for key, _ in targets if key not in n} - ONE_KIND_ONLY
        if unknown:
            raise KeyError(f"input {name!r} feeds inner nodes {sorted(unknown)} that no blueprint has")
        b.subgraph_input(name, io_type, label, [(n[key], input_name) for key, input_name in targets if key in n])
    for name, io_type, label, key, output in OUTPUTS:
        b.subgraph_output(name, io_type, label, n[key], output)
    return b.build_blueprint(spec.name, CATEGORY, spec.description)


def build_all(object_info: dict) -> dict:
    """{file name: blueprint dict} for every blueprint."""
    return {f"{spec.name}.json": build_blueprint(object_info, spec) for spec in BLUEPRINTS}


def main(out_dir: str) -> None:
    import tempfile

    from devkit import comfy_host

    host = comfy_host.boot(tempfile.mkdtemp(prefix="avi-build-"), pack_dir=REPO_ROOT)
    os.makedirs(out_dir, exist_ok=True)
    for file_name, blueprint in build_all(host.object_info()).items():
        with open(os.path.join(out_dir, file_name), "w", encoding="utf-8") as f:
            json.dump(blueprint, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(os.path.join(out_dir, file_name))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else OUT_DIR)
