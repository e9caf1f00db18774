"""The Flux dev example workflow (devkit/build_workflows.py): the attribute edit as ComfyUI's Flux dev example samples."""
from dataclasses import replace

from devkit.build_workflows import (CORE_VERSION, GREEN, PACK_ID, PACK_MODULE, TRAINING, X, Family, WorkflowBuilder, attribute_note,
                                    captures, edit_and_compare, learn, method_text, prompts_and_model, version)

FLUX = {
    "name": "flux1-dev-fp8.safetensors",
    "url": "https://huggingface.co/Comfy-Org/flux1-dev/resolve/main/flux1-dev-fp8.safetensors",
    "directory": "checkpoints",
}
# ComfyUI's Flux dev checkpoint example: 20 euler steps on simple, cfg 1, FluxGuidance 3.5 on the prompt.
FLUX_SAMPLING = dict(steps=20, cfg=1.0, sampler_name="euler", scheduler="simple")
FLUX_GUIDANCE = 3.5
FLUX_SIZE = 1024


def flux_settings(method: dict) -> str:
    """The Keep / Needs paragraphs of the Flux read-me."""
    return f"""**Keep** the pack's method defaults: {method_text(method)}. Sampling as ComfyUI's Flux dev example: 20 `euler`
steps on `simple`, **FluxGuidance** {FLUX_GUIDANCE:g} on both prompts and cfg 1 (the negative prompt is then unused). At
{FLUX_SIZE} px x and z are 16×128×128 latents (N = 128); Φ is 512 wide. For a flow model a timestep fraction is the σ
the capture stops nearest (Flux counts its timesteps as σ; the pack reads them on the same 0..999 scale as SD's).

**Needs** FLUX.1 dev (the fp8 checkpoint with its text encoders and VAE) in `models/checkpoints`; the loader offers the
download."""


def flux_family(method: dict = None) -> Family:
    """Flux dev at 1024 px with its example's sampling."""
    family = Family(FLUX["name"], (FLUX,), FLUX_SIZE, "", FLUX_SAMPLING, TRAINING, "", "Flux dev", method)
    return replace(family, settings=flux_settings(family.method))


FLUX_ATTRIBUTES = {"flux_smile": ("Smile", "a portrait photo of a woman", "a portrait photo of a smiling woman")}


def guidance_and_latent(b: WorkflowBuilder, n: dict) -> None:
    """Empty SD3 latent (16 channels) and FluxGuidance on both prompts: n["original"] and n["target"] become the guided ones."""
    n["empty"] = b.add("EmptySD3LatentImage", (X["model"], 300), {"width": FLUX_SIZE, "height": FLUX_SIZE, "batch_size": 1})
    for i, name in enumerate(("original", "target")):
        guided = b.add("FluxGuidance", (X["prompt"], 620 + 110 * i), {"guidance": FLUX_GUIDANCE}, title=f"Flux guidance ({name})",
                       color=GREEN)
        b.connect(n[name], 0, guided, "conditioning")
        n[name] = guided
    b.group("Flux guidance on both prompts", X["prompt"] - 20, 560, 360, 300)


def build_flux(object_info: dict) -> dict:
    """{file name: workflow} of the Flux dev attribute edits."""
    out = {}
    family = flux_family()
    for name, (label, original, target) in FLUX_ATTRIBUTES.items():
        b = WorkflowBuilder(object_info, PACK_MODULE, PACK_ID, version(), CORE_VERSION)
        b.note(attribute_note(label, original, target, name, False, family), (X["note"], 0), (420, 700))
        n = prompts_and_model(b, original, target, family=family, empty=False)
        guidance_and_latent(b, n)
        captures(b, n)
        learn(b, n, name, "add number", f"{original} → {target}")
        n["phi_source"] = n["train"]
        edit_and_compare(b, n, name)
        out[f"{name}.json"] = b.build(name, models=[FLUX])
    return out
