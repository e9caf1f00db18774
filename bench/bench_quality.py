"""Edit quality on the shipped tiny digits model: the pack's AVI against baselines, side by side in one run.

Usage: python bench/bench_quality.py [--quick] [--out bench/results] [--checkpoint PATH] [--cases-per-edit 5]

Every image is made by the real embedded ComfyUI through the pack's nodes and stock nodes; every
score reads pixels (bench/digit_metrics.py). A case is one digit, one seed and one edit; its
seed is the first one whose original image does not already show the target attribute.
Methods, all from the same seed and the same 50-step ddim trajectory:
- original: the original prompt (x captured at Tx, finished unchanged; equal to a plain KSampler run)
- target from scratch: the target prompt, KSampler
- switch at f·T: stock KSamplerAdvanced, original prompt up to the step of f·T, target after it (f = 0.9 ... 0.5)
- AVI paper ρ = 0 ... 1: the paper's literal settings (Tx 0.8, Tz 0.5, noisy VP latents, k = N/2, S_inf S, z tail,
  λ 3/10/10/10, 5 epochs, 5000 resampled pairs), Φ 512 wide
- AVI ρ = 0 ... 2: the pack's defaults (Tx 0.6, Tz 0.5 on the target's own run of 20 steps, x0 predictions, k = 1,
  S_inf Sx→S, z aligned, same Φ training)
Every method also reports its model evaluations (sampler steps; a reused Φ needs no training) and the
identity distance (1 − cosine of the classifier's style-blind features; bench/digit_metrics.py).
Prints one table, writes results.json and a picture grid (rows: cases, columns: methods).
"""
import argparse
import json
import os
import sys
import tempfile
import time

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from avi_core import defaults  # noqa: E402
from bench import digit_metrics as M  # noqa: E402
from devkit import digits  # noqa: E402

CHECKPOINT = os.path.join(REPO_ROOT, "demo_models", "avi_demo_tiny_digits_sd2.safetensors")
SAMPLING = dict(steps=50, cfg=5.0, sampler_name="ddim", scheduler="ddim_uniform")
PAPER_TRAINING = dict(k=0, hidden=512, epochs=5, samples_per_pair=-1, batch_size=256, learning_rate=0.001,
                      lambda_1=3.0, lambda_2=10.0, lambda_3=10.0, lambda_4=10.0, rho=1.0, z_vectors="tail", seed=0)
# (Tx, Tz, SVD Decompose space, Train k and z_vectors, Integrate s_inf, ρ values)
PAPER = dict(defaults.PAPER, rhos=(0.0, 0.25, 0.5, 0.75, 1.0))
DEFAULT = dict(defaults.PACK, z_steps=defaults.Z_STEPS, rhos=(0.0, 0.5, 1.0, 1.25, 1.5, 2.0))  # z as the workflows take it
DEFAULT_RHO = defaults.PACK["rho"]
MONOTONE_UP_TO = 1.5  # the ρ-monotone rate is taken over ρ <= this (the slider goes on to 2, where the edit breaks up)
SWITCHES = (0.9, 0.8, 0.7, 0.6, 0.5)
TX, TZ = PAPER["tx"], PAPER["tz"]
N = 16  # singular values of a 16x16 latent

# edit name -> (attribute judged, original prompt words, target prompt words) as prompt() keyword arguments
EDITS = {
    "bold": ("bold", {}, {"thickness": "bold"}),
    "thin": ("thin", {}, {"thickness": "thin"}),
    "thin → bold": ("bold", {"thickness": "thin"}, {"thickness": "bold"}),
    "bold → thin": ("thin", {"thickness": "bold"}, {"thickness": "thin"}),
    "slanted right": ("slanted right", {}, {"slant_word": "slanted right"}),
    "slanted left": ("slanted left", {}, {"slant_word": "slanted left"}),
}
# Ink colour is left out: the model follows colour words, but its VAE decodes colour too loosely for
# the palette statistic (bench/bench_model.py: 31 % of colour requests read back right; docs/models.md).
METHODS = (["original", "target from scratch"] + [f"switch at {f:g}T" for f in SWITCHES]
           + [f"AVI paper ρ={r:g}" for r in PAPER["rhos"]] + [f"AVI ρ={r:g}" for r in DEFAULT["rhos"]])


def base(ckpt: str, original: str, target: str) -> dict:
    """Loader, prompts (empty negative: the model was trained with empty captions for cfg) and a 128 px latent."""
    enc = lambda text: {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["ck", 1]}}  # noqa: E731
    return {"ck": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
            "orig": enc(original), "tgt": enc(target), "neg": enc(""),
            "empty": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}}}


def decode(p: dict, name: str, latent) -> str:
    p[f"dec_{name}"] = {"class_type": "VAEDecode", "inputs": {"samples": latent, "vae": ["ck", 2]}}
    return f"dec_{name}"


def ksampler(p: dict, name: str, positive: str, seed: int) -> list:
    p[name] = {"class_type": "KSampler", "inputs": {"model": ["ck", 0], "seed": seed, **SAMPLING, "positive": [positive, 0],
                                                    "negative": ["neg", 0], "latent_image": ["empty", 0], "denoise": 1.0}}
    return [name, 0]


def switch(p: dict, name: str, step_from: str, seed: int) -> list:
    """Stock KSamplerAdvanced: the original prompt up to the captured step, the target prompt after it."""
    common = {"model": ["ck", 0], "noise_seed": seed, **SAMPLING, "negative": ["neg", 0]}
    p[f"{name}_a"] = {"class_type": "KSamplerAdvanced", "inputs": {**common, "add_noise": "enable", "positive": ["orig", 0],
                      "latent_image": ["empty", 0], "start_at_step": 0, "end_at_step": [step_from, 1], "return_with_leftover_noise": "enable"}}
    p[f"{name}_b"] = {"class_type": "KSamplerAdvanced", "inputs": {**common, "add_noise": "disable", "positive": ["tgt", 0],
                      "latent_image": [f"{name}_a", 0], "start_at_step": [step_from, 1], "end_at_step": 10000,
                      "return_with_leftover_noise": "disable"}}
    return [f"{name}_b", 0]


def inject(p: dict, name: str, latent, target: str = None) -> list:
    """Inject Latent with the original prompt; with `target` (a prompt node), the target's for every remaining step."""
    extra = {"target": [target, 0], "target_steps": -1} if target else {}
    p[name] = {"class_type": "AVIInjectLatent", "inputs": {"model": ["ck", 0], "positive": ["orig", 0], "negative": ["neg", 0],
                                                           "latent": latent, "cfg": SAMPLING["cfg"], "sampler_name": "from capture",
                                                           "scheduler": "from capture", **extra}}
    return [name, 0]


def integrate(p: dict, name: str, phi: str, x: str, z: str, rho_list: str, s_inf: str) -> list:
    p[name] = {"class_type": "AVIIntegrate", "inputs": {"phi": [phi, 0], "x": [x, 0], "z": [z, 0], "rho": 1.0,
                                                        "rho_list": rho_list, "s_inf": s_inf, "z_vectors": "as trained"}}
    return [name, 0]


def avi(p: dict, tag: str, method: dict, seed: int) -> str:
    """Captures, SVDs, Φ, the ρ sweep and its finish for one AVI setting; returns the sweep's decode node."""
    cap = lambda pos, frac, steps: {"class_type": "AVICaptureLatent", "inputs": {  # noqa: E731
        "model": ["ck", 0], "positive": [pos, 0], "negative": ["neg", 0], "latent_image": ["empty", 0], "seed": seed,
        **dict(SAMPLING, steps=steps), "timestep_fraction": frac, "step": -1}}
    p[f"cap_x_{tag}"] = cap("orig", method["tx"], SAMPLING["steps"])
    p[f"cap_z_{tag}"] = cap("tgt", method["tz"], method.get("z_steps", SAMPLING["steps"]))
    for side in "xz":
        p[f"svd_{side}_{tag}"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": [f"cap_{side}_{tag}", 0], "space": method["space"]}}
    p[f"train_{tag}"] = {"class_type": "AVITrainPhi", "inputs": {"x": [f"svd_x_{tag}", 0], "z": [f"svd_z_{tag}", 0],
                                                                 **dict(PAPER_TRAINING, k=method["k"], z_vectors=method["z_vectors"])}}
    y = integrate(p, f"int_{tag}", f"train_{tag}", f"svd_x_{tag}", f"svd_z_{tag}", ", ".join(f"{r:g}" for r in method["rhos"]),
                  method["s_inf"])
    return decode(p, tag, inject(p, f"inj_{tag}", y, "tgt" if method["finish"] == "target" else None))


def evaluations(steps_x: int, steps_z: int) -> int:
    """Model evaluations of an edit with a reused Φ: x's capture (steps 0..sx), z's (0..sz), the finish (sx..end)."""
    return (steps_x + 1) + (steps_z + 1) + (SAMPLING["steps"] - steps_x)


def case_prompt(ckpt: str, original: str, target: str, seed: int) -> tuple[dict, dict]:
    """The API prompt of one case with every method; {method: (decode node, batch index)}."""
    p = base(ckpt, original, target)
    p["cap_x"] = {"class_type": "AVICaptureLatent", "inputs": {
        "model": ["ck", 0], "positive": ["orig", 0], "negative": ["neg", 0], "latent_image": ["empty", 0], "seed": seed,
        **SAMPLING, "timestep_fraction": TX, "step": -1}}
    out = {"original": (decode(p, "original", inject(p, "inj_x", ["cap_x", 0])), 0),
           "target from scratch": (decode(p, "scratch", ksampler(p, "ks_target", "tgt", seed)), 0)}
    for f in SWITCHES:
        tag = f"sw_{f:g}".replace(".", "")
        p[f"at_{tag}"] = {"class_type": "AVICaptureLatent", "inputs": {**p["cap_x"]["inputs"], "timestep_fraction": f}}
        out[f"switch at {f:g}T"] = (decode(p, tag, switch(p, tag, f"at_{tag}", seed)), 0)
    paper, default = avi(p, "paper", PAPER, seed), avi(p, "default", DEFAULT, seed)
    out.update({f"AVI paper ρ={r:g}": (paper, i) for i, r in enumerate(PAPER["rhos"])})
    out.update({f"AVI ρ={r:g}": (default, i) for i, r in enumerate(DEFAULT["rhos"])})
    return p, out


def original_prompt(ckpt: str, original: str, seed: int) -> dict:
    """A plain generation of the original prompt (for choosing a case's seed)."""
    p = base(ckpt, original, original)
    decode(p, "original", ksampler(p, "ks", "orig", seed))
    return p


def choose_cases(host, ckpt: str, judge: "M.Judge", per_edit: int, edits: list) -> list:
    """(edit, digit, seed) per case: for each edit and digit, the first seed whose original lacks the target attribute."""
    cases = []
    for e, edit in enumerate(edits):
        attribute, o_words, _ = EDITS[edit]
        for j in range(per_edit):
            digit = (3 * e + 7 * j) % 10
            for seed in range(100 * j, 100 * j + 30):
                run = host.run(original_prompt(ckpt, digits.prompt(digit, **o_words), seed), outputs=["dec_original"])
                image = run.output("dec_original").permute(0, 3, 1, 2)
                if not bool(M.attribute_reached(judge.measure(image, torch.tensor([digit])), attribute)[0]):
                    cases.append((edit, digit, seed))
                    break
    return cases


def score(judge: "M.Judge", images: dict, digit: int, attribute: str) -> dict:
    """Per method: success, class kept, RMS and SSIM to the original, classifier confidence, attribute value, features."""
    original = images["original"]
    o_cls, _, _ = judge.classify(original)
    digit_t = torch.tensor([digit])  # thickness is relative to the requested class's ink
    o_value = float(M.attribute_value(judge.measure(original, digit_t), attribute)[0])
    _, _, o_feats = judge.classify(original)
    rows = {}
    for method, image in images.items():
        cls, conf, feats = judge.classify(image)
        measured = judge.measure(image, digit_t)
        value = float(M.attribute_value(measured, attribute)[0])
        rows[method] = {"success": bool(M.attribute_reached(measured, attribute)[0]) and value > o_value,
                        "class_kept": bool(cls[0] == o_cls[0]), "requested_class": bool(cls[0] == digit),
                        "rms": float(M.rms_distance(image, original)[0]), "ssim": float(M.ssim(image, original)[0]),
                        "confidence": float(conf[0]), "value": value, "features": feats[0],
                        "identity": float(M.identity_distance(feats, o_feats)[0])}
    return rows


def monotone(values: list, tolerance: float = 0.01) -> bool:
    """The attribute statistic rises with ρ: never falls by more than `tolerance` and ends above where it starts."""
    return all(b >= a - tolerance for a, b in zip(values, values[1:])) and values[-1] > values[0]


def summarise(results: list, judge: "M.Judge", evals: dict) -> dict:
    """Per method: rates and means over cases, model evaluations, and the Fréchet distance of its features to real digits."""
    table = {}
    for method in METHODS:
        rows = [r["scores"][method] for r in results]
        mean = lambda key: sum(float(r[key]) for r in rows) / len(rows)  # noqa: E731
        feats = torch.stack([r["features"] for r in rows])
        table[method] = {"success": mean("success"), "class_kept": mean("class_kept"), "rms": mean("rms"),
                         "identity": mean("identity"), "ssim": mean("ssim"), "confidence": mean("confidence"),
                         "evaluations": evals[method],
                         "fd": M.frechet_distance(feats, judge.real_features) if len(rows) > 2 else float("nan")}
    for prefix, rhos in (("AVI paper ρ=", PAPER["rhos"]), ("AVI ρ=", DEFAULT["rhos"])):
        for key, upto in (("rho_monotone", MONOTONE_UP_TO), ("rho_monotone_all", max(rhos))):
            rises = [monotone([r["scores"][f"{prefix}{rho:g}"]["value"] for rho in rhos if rho <= upto]) for r in results]
            table[f"{prefix}{rhos[-1]:g}"][key] = sum(rises) / len(rises)
    return table


def method_evaluations(outputs, steps: int = SAMPLING["steps"]) -> dict:
    """Model evaluations per method (cfg doubles every one alike): 50 for a plain generation."""
    evals = {m: steps for m in METHODS if not m.startswith("AVI")}
    for prefix, tag, method in (("AVI paper ρ=", "paper", PAPER), ("AVI ρ=", "default", DEFAULT)):
        count = evaluations(outputs.output(f"cap_x_{tag}", 1), outputs.output(f"cap_z_{tag}", 1))
        evals.update({f"{prefix}{r:g}": count for r in method["rhos"]})
    return evals


def format_table(table: dict, cases: int) -> str:
    """The summary as a markdown table."""
    lines = [f"| method ({cases} cases) | attribute success | class kept | identity distance | RMS to original | SSIM to original | "
             "FD to real | model evaluations | ρ monotone (ρ ≤ 1.5) |", "|---|---|---|---|---|---|---|---|---|"]
    for method, t in table.items():
        mono = f"{t['rho_monotone']:.2f}" if "rho_monotone" in t else ""
        if method.startswith("AVI ρ=") and "rho_monotone" in t:  # the default's sweep goes on past the measured range
            mono += f" ({t['rho_monotone_all']:.2f} up to ρ = {max(DEFAULT['rhos']):g})"
        lines.append(f"| {method} | {t['success']:.2f} | {t['class_kept']:.2f} | {t['identity']:.3f} | {t['rms']:.3f} | "
                     f"{t['ssim']:.3f} | {t['fd']:.1f} | {t['evaluations']} ({t['evaluations'] / SAMPLING['steps']:.2f}×) | {mono} |")
    return "\n".join(lines)


def per_edit_table(results: list, methods: list) -> str:
    """Attribute success per edit for a few methods."""
    edits = list(dict.fromkeys(r["edit"] for r in results))
    lines = ["| method | " + " | ".join(edits) + " |", "|---|" + "---|" * len(edits)]
    for m in methods:
        cells = []
        for e in edits:
            rows = [r["scores"][m]["success"] for r in results if r["edit"] == e]
            cells.append(f"{sum(rows)}/{len(rows)}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_grid(path: str, results: list, cell: int = 64) -> None:
    """Rows: cases; columns: methods; each cell downscaled to `cell` px."""
    from PIL import Image
    rows = []
    for r in results:
        cells = [torch.nn.functional.interpolate(r["images"][m], size=(cell, cell), mode="area") for m in METHODS]
        rows.append(torch.cat(cells, dim=3))
    grid = torch.cat(rows, dim=2)[0].permute(1, 2, 0).clamp(0, 1)
    Image.fromarray((grid.numpy() * 255).round().astype("uint8")).save(path)


def place_checkpoint(checkpoint: str) -> str:
    """Link a checkpoint into the booted host's models/checkpoints; the name loaders list it by."""
    import folder_paths
    folder = folder_paths.get_folder_paths("checkpoints")[0]
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(checkpoint)
    if not os.path.lexists(os.path.join(folder, name)):
        os.symlink(os.path.abspath(checkpoint), os.path.join(folder, name))
    return name


def run(host, name: str, quick: bool, out_dir: str, per_edit: int = 7, log=print) -> dict:
    """Choose the cases, run every method through the host, score; returns {"table", "results", "seconds"}."""
    start = time.perf_counter()
    judge = M.Judge.load()
    edits = ["bold"] if quick else list(EDITS)
    cases = choose_cases(host, name, judge, 1 if quick else per_edit, edits)
    results, evals = [], None
    for i, (edit, digit, seed) in enumerate(cases):
        attribute, o_words, t_words = EDITS[edit]
        original, target = digits.prompt(digit, **o_words), digits.prompt(digit, **t_words)
        prompt, where = case_prompt(name, original, target, seed)
        outputs = host.run(prompt, outputs=sorted({node for node, _ in where.values()}))
        evals = evals or method_evaluations(outputs)
        images = {m: outputs.output(node)[idx:idx + 1].permute(0, 3, 1, 2).float() for m, (node, idx) in where.items()}
        results.append({"edit": edit, "digit": digit, "seed": seed, "original": original, "target": target,
                        "images": images, "scores": score(judge, images, digit, attribute)})
        log(f"case {i + 1}/{len(cases)}: {original!r} → {target!r}, seed {seed}: "
            f"AVI ρ={DEFAULT_RHO:g} {'success' if results[-1]['scores'][f'AVI ρ={DEFAULT_RHO:g}']['success'] else 'no change'}")
    table = summarise(results, judge, evals)
    os.makedirs(out_dir, exist_ok=True)
    save_grid(os.path.join(out_dir, "quality_grid.png"), results)
    seconds = time.perf_counter() - start
    with open(os.path.join(out_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"table": table, "seconds": seconds, "sampling": SAMPLING, "paper": PAPER, "default": DEFAULT, "training": PAPER_TRAINING,
                   "cases": [{k: v for k, v in r.items() if k != "images"} | {"scores": {m: {k: v for k, v in s.items() if k != "features"}
                             for m, s in r["scores"].items()}} for r in results]}, f, indent=1, ensure_ascii=False)
    return {"table": table, "results": results, "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one case (bold): a smoke run of every method")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "bench", "results"))
    parser.add_argument("--checkpoint", default=CHECKPOINT)
    parser.add_argument("--cases-per-edit", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # many small tensors: one thread is faster on a shared CPU (see tests/host/conftest.py)
    from devkit import comfy_host
    host = comfy_host.boot(tempfile.mkdtemp(prefix="avi-bench-"), pack_dir=REPO_ROOT)
    done = run(host, place_checkpoint(args.checkpoint), args.quick, args.out, args.cases_per_edit)
    print(format_table(done["table"], len(done["results"])))
    print(per_edit_table(done["results"], ["target from scratch", "switch at 0.9T", "switch at 0.8T", "AVI paper ρ=1",
                                           *dict.fromkeys(["AVI ρ=1", f"AVI ρ={DEFAULT_RHO:g}", "AVI ρ=1.5"])]))
    print(f"{len(done['results'])} cases in {done['seconds']:.0f} s; grid and results.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
