"""Edit quality on the shipped tiny digits model: the pack's AVI against baselines, side by side in one run.

Usage: python bench/bench_quality.py [--quick] [--out bench/results] [--checkpoint PATH] [--cases-per-edit 5]

Every image is made by the real embedded ComfyUI through the pack's nodes and stock nodes; every
score reads pixels (bench/digit_metrics.py). A case is one digit, one seed and one edit; its
seed is the first one whose original image does not already show the target attribute.
Methods, all from the same seed and the same 50-step ddim trajectory:
- original: the original prompt (x captured at Tx, finished unchanged; equal to a plain KSampler run)
- target from scratch: the target prompt, KSampler
- switch at Tx / Tz: stock KSamplerAdvanced, original prompt up to the step of Tx (or Tz), target after it
- AVI ρ = 0 ... 1: the paper's settings (Tx 0.8, Tz 0.5, k = N/2, S_inf S, z tail, λ 3/10/10/10, 5 epochs,
  5000 resampled pairs), Φ 512 wide; then every other option the nodes expose at ρ = 1: S+Δs, Sx, head, k = N/4, 3N/4.
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

from bench import digit_metrics as M  # noqa: E402
from devkit import digits  # noqa: E402

CHECKPOINT = os.path.join(REPO_ROOT, "devkit", "checkpoints", "tiny_digits_sd2.safetensors")
SAMPLING = dict(steps=50, cfg=5.0, sampler_name="ddim", scheduler="ddim_uniform")
TX, TZ = 0.8, 0.5
PAPER_TRAINING = dict(k=0, hidden=512, epochs=5, samples_per_pair=-1, batch_size=256, learning_rate=0.001,
                      lambda_1=3.0, lambda_2=10.0, lambda_3=10.0, lambda_4=10.0, rho=1.0, z_vectors="tail", seed=0)
RHOS = (0.0, 0.25, 0.5, 0.75, 1.0)
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
# the palette statistic (bench/bench_model.py: 31 % of colour requests read back right; README).
METHODS = ["original", "target from scratch", "switch at Tx", "switch at Tz"] + [f"AVI ρ={r:g}" for r in RHOS] + [
    "AVI S+Δs", "AVI Sx", "AVI head", f"AVI k={N // 4}", f"AVI k={3 * N // 4}"]


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


def inject(p: dict, name: str, latent) -> list:
    p[name] = {"class_type": "AVIInjectLatent", "inputs": {"model": ["ck", 0], "positive": ["orig", 0], "negative": ["neg", 0],
                                                           "latent": latent, "cfg": SAMPLING["cfg"], "sampler_name": "from capture",
                                                           "scheduler": "from capture"}}
    return [name, 0]


def integrate(p: dict, name: str, phi: str, rho_list: str = "", s_inf: str = "S", z_vectors: str = "as trained") -> list:
    p[name] = {"class_type": "AVIIntegrate", "inputs": {"phi": [phi, 0], "x": ["svd_x", 0], "z": ["svd_z", 0], "rho": 1.0,
                                                        "rho_list": rho_list, "s_inf": s_inf, "z_vectors": z_vectors}}
    return [name, 0]


def case_prompt(ckpt: str, original: str, target: str, seed: int) -> tuple[dict, dict]:
    """The API prompt of one case with every method; {method: (decode node, batch index)}."""
    p = base(ckpt, original, target)
    cap = lambda pos, frac: {"class_type": "AVICaptureLatent", "inputs": {  # noqa: E731
        "model": ["ck", 0], "positive": [pos, 0], "negative": ["neg", 0], "latent_image": ["empty", 0], "seed": seed,
        **SAMPLING, "timestep_fraction": frac, "step": -1}}
    p["cap_x"], p["cap_z"] = cap("orig", TX), cap("tgt", TZ)
    p["svd_x"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["cap_x", 0]}}
    p["svd_z"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["cap_z", 0]}}
    out = {"original": (decode(p, "original", inject(p, "inj_x", ["cap_x", 0])), 0),
           "target from scratch": (decode(p, "scratch", ksampler(p, "ks_target", "tgt", seed)), 0),
           "switch at Tx": (decode(p, "sw_x", switch(p, "sw_x", "cap_x", seed)), 0),
           "switch at Tz": (decode(p, "sw_z", switch(p, "sw_z", "cap_z", seed)), 0)}
    for name, k in (("train", 0), ("train_k4", N // 4), ("train_k12", 3 * N // 4)):
        p[name] = {"class_type": "AVITrainPhi", "inputs": {"x": ["svd_x", 0], "z": ["svd_z", 0], **dict(PAPER_TRAINING, k=k)}}
    sweep = decode(p, "sweep", inject(p, "inj_sweep", integrate(p, "int_sweep", "train", ", ".join(f"{r:g}" for r in RHOS))))
    out.update({f"AVI ρ={r:g}": (sweep, i) for i, r in enumerate(RHOS)})
    for method, node, kwargs in (("AVI S+Δs", "train", {"s_inf": "S+Δs"}), ("AVI Sx", "train", {"s_inf": "Sx"}),
                                 ("AVI head", "train", {"z_vectors": "head"}), (f"AVI k={N // 4}", "train_k4", {}),
                                 (f"AVI k={3 * N // 4}", "train_k12", {})):
        tag = method.split()[1].replace("+", "p").replace("Δ", "d").replace("=", "")
        out[method] = (decode(p, tag, inject(p, f"inj_{tag}", integrate(p, f"int_{tag}", node, "1", **kwargs))), 0)
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
    rows = {}
    for method, image in images.items():
        cls, conf, feats = judge.classify(image)
        measured = judge.measure(image, digit_t)
        value = float(M.attribute_value(measured, attribute)[0])
        rows[method] = {"success": bool(M.attribute_reached(measured, attribute)[0]) and value > o_value,
                        "class_kept": bool(cls[0] == o_cls[0]), "requested_class": bool(cls[0] == digit),
                        "rms": float(M.rms_distance(image, original)[0]), "ssim": float(M.ssim(image, original)[0]),
                        "confidence": float(conf[0]), "value": value, "features": feats[0]}
    return rows


def summarise(results: list, judge: "M.Judge") -> dict:
    """Per method: rates and means over cases, and the Fréchet distance of its images' features to real digits."""
    table = {}
    for method in METHODS:
        rows = [r["scores"][method] for r in results]
        mean = lambda key: sum(float(r[key]) for r in rows) / len(rows)  # noqa: E731
        feats = torch.stack([r["features"] for r in rows])
        table[method] = {"success": mean("success"), "class_kept": mean("class_kept"), "rms": mean("rms"),
                         "ssim": mean("ssim"), "confidence": mean("confidence"),
                         "fd": M.frechet_distance(feats, judge.real_features) if len(rows) > 2 else float("nan")}
    return table


def format_table(table: dict, cases: int) -> str:
    """The summary as a markdown table."""
    lines = [f"| method ({cases} cases) | attribute success | class kept | RMS to original | SSIM to original | confidence | FD to real |",
             "|---|---|---|---|---|---|---|"]
    for method, t in table.items():
        lines.append(f"| {method} | {t['success']:.2f} | {t['class_kept']:.2f} | {t['rms']:.3f} | {t['ssim']:.3f} | "
                     f"{t['confidence']:.2f} | {t['fd']:.1f} |")
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
    results = []
    for i, (edit, digit, seed) in enumerate(cases):
        attribute, o_words, t_words = EDITS[edit]
        original, target = digits.prompt(digit, **o_words), digits.prompt(digit, **t_words)
        prompt, where = case_prompt(name, original, target, seed)
        outputs = host.run(prompt, outputs=sorted({node for node, _ in where.values()}))
        images = {m: outputs.output(node)[idx:idx + 1].permute(0, 3, 1, 2).float() for m, (node, idx) in where.items()}
        results.append({"edit": edit, "digit": digit, "seed": seed, "original": original, "target": target,
                        "images": images, "scores": score(judge, images, digit, attribute)})
        log(f"case {i + 1}/{len(cases)}: {original!r} → {target!r}, seed {seed}: "
            f"AVI ρ=1 {'success' if results[-1]['scores']['AVI ρ=1']['success'] else 'no change'}")
    table = summarise(results, judge)
    os.makedirs(out_dir, exist_ok=True)
    save_grid(os.path.join(out_dir, "quality_grid.png"), results)
    seconds = time.perf_counter() - start
    with open(os.path.join(out_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"table": table, "seconds": seconds, "sampling": SAMPLING, "tx": TX, "tz": TZ, "training": PAPER_TRAINING,
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
    print(f"{len(done['results'])} cases in {done['seconds']:.0f} s; grid and results.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
