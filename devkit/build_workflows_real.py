"""The example workflows that edit an uploaded image (Invert Latent) and stack two learned attributes (devkit/build_workflows.py)."""
from dataclasses import replace

from avi_core.defaults import STACKED
from devkit.build_workflows import (BLUE, CORE_VERSION, DIGITS_FAMILY, DIGITS_SETTINGS, GREEN, PACK_ID, PACK_MODULE, PURPLE,
                                    SD21_FAMILY, X, Family, WorkflowBuilder, captures, edit_group_title, edit_target, finish,
                                    finishes_with_target, learn, prompts_and_model, version)

# name -> (label, original prompt, target prompt, family, image in input/)
REAL_IMAGE = {
    "digits_real_image": ("Bold, on a real image", "a handwritten 3", "a bold handwritten 3", DIGITS_FAMILY, "avi_real_digit_3.png"),
    "sd21_real_image": ("Smile, on your photo", "a photo of a woman", "a photo of a smiling woman", SD21_FAMILY, "example.png"),
}
STACKED_TEXT = (f"\n\nStacked, each **AVI Integrate** is at ρ = {STACKED['rho']:g}; the stacked edit finishes with the prompt naming both "
                "attributes, the first alone with its own target.")
DIGITS_STACKED_FAMILY = replace(DIGITS_FAMILY, method=STACKED, settings=DIGITS_SETTINGS + STACKED_TEXT)
# name -> (label, original prompt, first target, second target, the prompt naming both, family)
COMPOSED = {
    "digits_two_attributes": ("Bold and slanted right", "a handwritten 4", "a bold handwritten 4",
                              "a handwritten 4 slanted right", "a bold handwritten 4 slanted right", DIGITS_STACKED_FAMILY),
}
REFINE = 2  # Invert Latent's fixed-point iterations: bench/bench_real.py, reconstruction table


def image_to_edit(b: WorkflowBuilder, n: dict, image: str) -> None:
    """Load Image → (scale to the family's size) → VAE Encode → Invert Latent at the captures' cfg; n["start"] is the inversion."""
    family: Family = n["family"]
    n["load"] = b.add("LoadImage", (X["model"], 640), {"image": image}, title="Image to edit", size=[380, 420], color=GREEN)
    n["scale"] = b.add("ImageScale", (X["prompt"], 640), {"upscale_method": "lanczos", "width": family.size, "height": family.size,
                                                          "crop": "center"}, title=f"Scale to {family.size} px")
    b.connect(n["load"], "IMAGE", n["scale"], "image")
    n["encode"] = b.add("VAEEncode", (X["prompt"], 820))
    b.connect(n["scale"], 0, n["encode"], "pixels")
    b.connect(n["ckpt"], "VAE", n["encode"], "vae")
    sampling = family.sampling
    n["start"] = b.add("AVIInvertLatent", (X["prompt"], 920), {"steps": sampling["steps"], "cfg": sampling["cfg"],
                                                               "sampler_name": sampling["sampler_name"],
                                                               "scheduler": sampling["scheduler"], "refine": REFINE}, color=BLUE)
    b.connect(n["ckpt"], "MODEL", n["start"], "model")
    b.connect(n["original"], 0, n["start"], "positive")
    b.connect(n["negative"], 0, n["start"], "negative")
    b.connect(n["encode"], 0, n["start"], "latent")
    b.group("0 · The image: encode and invert", X["model"] - 20, 580, X["capture"] - X["model"] - 20, 600, "#8AA")


def side_by_side(b: WorkflowBuilder, n: dict, name: str, images: list, titles: dict, y: float = 0) -> None:
    """Images stitched left to right, saved with the last one alone; titles: {save key: title}."""
    row = images[0]
    for i, image in enumerate(images[1:]):
        stitch = b.add("ImageStitch", (X["image"] + 260, y + 140 * i), {"direction": "right", "spacing_width": 16},
                       title=" | ".join(titles.values()) if i == len(images) - 2 else None)
        b.connect(row, 0, stitch, "image1")
        b.connect(image, 0, stitch, "image2")
        row = stitch
    for key, image, dy in (("edited", images[-1], 300), ("side_by_side", row, 620)):
        save = b.add("SaveImage", (X["image"] + 260, y + dy), {"filename_prefix": f"avi/{name}/{key}"}, size=[520, 300],
                     title="Edited" if key == "edited" else " | ".join(titles.values()))
        b.connect(image, 0, save, "images")


def real_image_note(label: str, original: str, target: str, name: str, family: Family, image: str) -> str:
    return f"""## {label}: edit an uploaded image ({family.label})
Inverts the image (DDIM inversion along the model's own 50 steps), then edits it as a generated
one: both captures start from the inverted latent instead of a seed's noise. Press **Queue**.

**Change**
- **Image to edit** (green): upload your image ({image} is the example); it is scaled to {family.size} px.
- *Original prompt*: describe the image as it is; *Target prompt*: add or remove the attribute words.
- *rho* in **AVI Integrate**: edit strength.

**Invert Latent** runs at the captures' cfg ({family.sampling['cfg']:g}) with refine {REFINE}: finished
unedited, the image comes back within a pixel RMS of about 0.006 of its VAE round trip (docs/benchmarks.md,
Real images). Inverting at cfg 1 and sampling at another cfg loses the image; keep the two cfg equal.

{family.settings}

**Outputs** in `output/avi/{name}/`: the upload, the unedited inversion and the edit side by side, and the edit."""


def build_real_image(object_info: dict) -> dict:
    """{file name: workflow} of the uploaded-image edits."""
    out = {}
    for name, (label, original, target, family, image) in REAL_IMAGE.items():
        b = WorkflowBuilder(object_info, PACK_MODULE, PACK_ID, version(), CORE_VERSION)
        attribute = name.split("_", 1)[1]
        b.note(real_image_note(label, original, target, attribute, family, image), (X["note"], 0), (420, 700))
        n = prompts_and_model(b, original, target, family=family, empty=False)
        image_to_edit(b, n, image)
        captures(b, n)
        learn(b, n, f"{attribute}_{name.split('_')[0]}", "add number", f"{original} → {target}")
        n["integrate"] = b.add("AVIIntegrate", (X["edit"], 0), {"rho": family.method["rho"], "s_inf": family.method["s_inf"]}, color=PURPLE)
        for source, socket in ((n["train"], "phi"), (n["svd_x"], "x"), (n["svd_z"], "z")):
            b.connect(source, 0, n["integrate"], socket)
        edited = finish(b, n, "edited", (n["integrate"], "y_pred"), 240, "Inject y_pred (edited)", edit_target(n))
        unedited = finish(b, n, "original", (n["capture_x"], "latent"), 460, "Inject x (unedited: the inversion)")
        side_by_side(b, n, attribute, [n["scale"], unedited, edited], {"upload": "Uploaded", "unedited": "unedited", "edited": "edited"})
        b.group(f"3 · {edit_group_title(n)}", X["edit"] - 20, -60, X["image"] + 820 - X["edit"], 1000, "#8A8")
        out[f"{name}.json"] = b.build(name, models=list(family.models) or None)
    return out


def composed_note(label: str, original: str, first: str, second: str, family: Family) -> str:
    return f"""## {label}: two learned attributes on one image ({family.label})
Learns one attribute from *{original}* → *{first}* and another from *{original}* → *{second}*,
then applies the first (**AVI Integrate 1**) and the second on its result (**SVD Decompose y₁** →
**AVI Integrate 2**): attributes stack like LoRAs. Press **Queue**.

**Change**
- the four prompts (green): each target adds its own attribute words to the original; the last names both, for the
  stacked edit's finish.
- *rho* in each **AVI Integrate**: the strength of that attribute (0 leaves it out).
- **Load AVI Φ** can replace either **Train AVI Φ**: stack attributes saved earlier.

{family.settings}

**Outputs** in `output/avi/two_attributes/`: the original, the first attribute alone and both, side by side."""


def build_composed(object_info: dict) -> dict:
    """{file name: workflow} of the two-attribute edits."""
    out = {}
    for name, (label, original, first, second, both_words, family) in COMPOSED.items():
        b = WorkflowBuilder(object_info, PACK_MODULE, PACK_ID, version(), CORE_VERSION)
        b.note(composed_note(label, original, first, second, family), (X["note"], 0), (420, 600))
        n = prompts_and_model(b, original, first, family=family)
        n["target_2"] = b.add("CLIPTextEncode", (X["prompt"], 640), {"text": second}, title="Second target prompt", size=[420, 150],
                              color=GREEN)
        b.connect(n["ckpt"], "CLIP", n["target_2"], "clip")
        n["target_both"] = b.add("CLIPTextEncode", (X["prompt"], 830), {"text": both_words}, title="Both attributes prompt",
                                 size=[420, 150], color=GREEN)
        b.connect(n["ckpt"], "CLIP", n["target_both"], "clip")
        captures(b, n, composed=True)
        n["capture_z2"] = b.add("AVICaptureLatent", (X["capture"], 700), dict(family.sampling, seed=n["seed"].widgets["value"],
                                timestep_fraction=family.method["tz"]), title=f"Capture z₂: second target at {family.method['tz']:g}·T", color=BLUE)
        for source, output, socket in ((n["ckpt"], "MODEL", "model"), (n["target_2"], 0, "positive"), (n["negative"], 0, "negative"),
                                       (n["empty"], 0, "latent_image"), (n["seed"], 0, "seed")):
            b.connect(source, output, n["capture_z2"], socket)
        n["svd_z2"] = b.add("AVISVDDecompose", (X["svd"], 700), {"space": family.method["space"]}, title="SVD Decompose z₂", color=BLUE)
        b.connect(n["capture_z2"], "latent", n["svd_z2"], "latent")
        learn(b, n, "first_attribute", "add number", f"{original} → {first}")
        n["train_2"] = b.add("AVITrainPhi", (X["train"], 1000), dict(family.training, note=f"{original} → {second}"),
                             title="Train AVI Φ₂", color=PURPLE)
        b.connect(n["svd_x"], "svd", n["train_2"], "x")
        b.connect(n["svd_z2"], "svd", n["train_2"], "z")
        n["save_phi_2"] = b.add("AVISavePhi", (X["train"], 1500), {"filename": "second_attribute", "if_exists": "add number",
                                                                  "note": f"{original} → {second}"}, color=PURPLE)
        b.connect(n["train_2"], "phi", n["save_phi_2"], "phi")
        b.group("2b · Learn the second attribute (Φ₂)", X["train"] - 20, 960, X["edit"] - X["train"] - 20, 700, "#A8A")
        method = family.method
        n["integrate"] = b.add("AVIIntegrate", (X["edit"], 0), {"rho": method["rho"], "s_inf": method["s_inf"]},
                               title="AVI Integrate 1 (first attribute)", color=PURPLE)
        for source, socket in ((n["train"], "phi"), (n["svd_x"], "x"), (n["svd_z"], "z")):
            b.connect(source, 0, n["integrate"], socket)
        n["svd_y1"] = b.add("AVISVDDecompose", (X["edit"], 260), {"space": method["space"]}, title="SVD Decompose y₁", color=BLUE)
        b.connect(n["integrate"], "y_pred", n["svd_y1"], "latent")
        n["integrate_2"] = b.add("AVIIntegrate", (X["edit"], 400), {"rho": method["rho"], "s_inf": method["s_inf"]},
                                 title="AVI Integrate 2 (second, on the first)", color=PURPLE)
        for source, socket in ((n["train_2"], "phi"), (n["svd_y1"], "x"), (n["svd_z2"], "z")):
            b.connect(source, 0, n["integrate_2"], socket)
        both = finish(b, n, "edited", (n["integrate_2"], "y_pred"), 640, "Inject y₁₂ (both attributes)",
                      edit_target(n, "target_both"))
        first_only = finish(b, n, "first", (n["integrate"], "y_pred"), 860, "Inject y₁ (first attribute)", edit_target(n))
        original_image = finish(b, n, "original", (n["capture_x"], "latent"), 1080, "Inject x (unedited)")
        side_by_side(b, n, "two_attributes", [original_image, first_only, both],
                     {"original": "Original", "first": "first attribute", "both": "both"})
        ending = "the prompt naming both" if finishes_with_target(n) else "the original prompt"
        b.group(f"3 · Stack the two attributes and finish with {ending}", X["edit"] - 20, -60,
                X["image"] + 820 - X["edit"], 1400, "#8A8")
        out[f"{name}.json"] = b.build(name, models=list(family.models) or None)
    return out

