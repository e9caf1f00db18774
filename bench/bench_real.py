"""Real images and composed attributes on the shipped tiny digits model: reconstruction, real-image edits, two stacked edits.

Usage: python bench/bench_real.py [--quick] [--out bench/results] [--part reconstruction|real|composed|all]

Every image is made by the real embedded ComfyUI through the pack's nodes and stock nodes (Load Image,
VAE Encode, VAE Decode, KSampler); the real digits are held-out MNIST digits the model never saw
(bench/real_images.py), drawn in the model's plain style.
- reconstruction: Load Image → VAE Encode → Invert Latent → Capture (0.6·T) → Inject, no edit; error of the
  result against the VAE round trip (the best any latent edit can give back) and the real image, per
  steps, cfg and refine; and the drift when the inversion's cfg differs from the sampling cfg.
- real: one attribute on a real digit whose reconstruction lacks it; baselines from the same inverted latent
  (the target prompt all the way, the original prompt then the target after 0.8·T / 0.6·T) beside AVI.
- composed: two attributes (stroke and slant) on generated and real digits: AVI Integrate with Φ₁, then Φ₂ on
  its result, finished with the prompt naming both (defaults.STACKED) and with the original prompt, beside each
  single edit, the prompt naming both and the switch to it; success = both attributes reached.
Scores are bench/bench_quality.py's (identity distance, class kept, RMS, SSIM) against the unedited result.
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
from bench import bench_quality as Q  # noqa: E402
from bench import digit_metrics as M  # noqa: E402
from bench.real_images import held_out_digits, to_input_folder  # noqa: E402
from devkit import digits  # noqa: E402

STEPS, CFG, REFINE = 50, Q.SAMPLING["cfg"], 2
RECONSTRUCTION = ([(s, CFG, CFG, REFINE) for s in (10, 20)] + [(STEPS, c, c, r) for c in (1.0, CFG) for r in (0, 1, 2, 4)]
                  + [(STEPS, 1.0, CFG, 0), (STEPS, 1.0, CFG, REFINE)])  # (steps, inversion cfg, sampling cfg, refine)
REAL_EDITS = ("bold", "thin", "slanted right", "slanted left")
PAIRS = (("bold", "slanted right"), ("thin", "slanted left"), ("bold", "slanted left"), ("thin", "slanted right"))
RHOS = tuple(sorted({1.0, 1.25, 1.5, defaults.PACK["rho"]}))
REAL_METHODS = (["reconstruction", "target from the inverted latent", "switch at 0.8T", "switch at 0.6T", "AVI paper ρ=1"]
                + [f"AVI ρ={r:g}" for r in RHOS] + [f"AVI ρ={defaults.PACK['rho']:g}, cfg 1"])
SWITCHES = (0.9, 0.8)  # the stock prompt switch to the prompt naming both attributes, after these fractions of T
COMPOSED_METHODS = ("original", "prompt with both words", *(f"switch at {f:g}T" for f in SWITCHES), "first alone", "second alone",
                    "composed, original finish", "composed")
COMPOSED_PER_PAIR = 4  # cases per pair of attributes and source (generated, real)


def finishing_prompt(method: dict, prompt: str):
    """The prompt node a method's edit finishes with beside the original: `prompt` (finish "target") or none."""
    return prompt if method["finish"] == "target" else None


def words(attribute: str) -> dict:
    """prompt() keyword arguments that ask for an attribute."""
    return {"slant_word": attribute} if attribute.startswith("slanted") else {"thickness": attribute}


def real_start(p: dict, image_name: str, cfg: float, refine: int, steps: int = STEPS, tag: str = "") -> list:
    """Load Image → VAE Encode → Invert Latent (original prompt); returns the inverted latent's link."""
    p[f"load{tag}"] = {"class_type": "LoadImage", "inputs": {"image": image_name}}
    p[f"enc{tag}"] = {"class_type": "VAEEncode", "inputs": {"pixels": [f"load{tag}", 0], "vae": ["ck", 2]}}
    p[f"inv{tag}"] = {"class_type": "AVIInvertLatent", "inputs": {
        "model": ["ck", 0], "positive": ["orig", 0], "negative": ["neg", 0], "latent": [f"enc{tag}", 0], "steps": steps, "cfg": cfg,
        "sampler_name": Q.SAMPLING["sampler_name"], "scheduler": Q.SAMPLING["scheduler"], "refine": refine}}
    return [f"inv{tag}", 0]


def capture(p: dict, name: str, positive: str, fraction: float, start: list, cfg: float = CFG, steps: int = STEPS, seed: int = 0) -> list:
    p[name] = {"class_type": "AVICaptureLatent", "inputs": {
        "model": ["ck", 0], "positive": [positive, 0], "negative": ["neg", 0], "latent_image": start, "seed": seed,
        **dict(Q.SAMPLING, steps=steps, cfg=cfg), "timestep_fraction": fraction, "step": -1}}
    return [name, 0]


def finish(p: dict, name: str, latent: list, cfg: float = CFG, target: str = None) -> str:
    """Inject Latent (original prompt; with `target`, the target prompt for every remaining step) and decode."""
    extra = {"target": [target, 0], "target_steps": -1} if target else {}
    p[f"inj_{name}"] = {"class_type": "AVIInjectLatent", "inputs": {
        "model": ["ck", 0], "positive": ["orig", 0], "negative": ["neg", 0], "latent": latent, "cfg": cfg,
        "sampler_name": "from capture", "scheduler": "from capture", **extra}}
    return Q.decode(p, name, [f"inj_{name}", 0])


def avi_edit(p: dict, tag: str, method: dict, target: str, start: list, rhos, cfg: float = CFG, x: str = None, seed: int = 0) -> tuple:
    """Captures, SVDs, Φ and Integrate for one setting; returns (Integrate link, x's SVD node, z's SVD node)."""
    if x is None:
        x = f"svd_x_{tag}"
        p[x] = {"class_type": "AVISVDDecompose", "inputs": {"latent": capture(p, f"cap_x_{tag}", "orig", method["tx"], start, cfg, seed=seed),
                                                             "space": method["space"]}}
    z = f"svd_z_{tag}"
    p[z] = {"class_type": "AVISVDDecompose", "inputs": {"latent": capture(p, f"cap_z_{tag}", target, method["tz"], start, cfg, seed=seed),
                                                         "space": method["space"]}}
    p[f"train_{tag}"] = {"class_type": "AVITrainPhi", "inputs": {"x": [x, 0], "z": [z, 0], **dict(
        Q.PAPER_TRAINING, k=method["k"], z_vectors=method["z_vectors"])}}
    y = Q.integrate(p, f"int_{tag}", f"train_{tag}", x, z, ", ".join(f"{r:g}" for r in rhos), method["s_inf"])
    return y, x, z


def images_of(outputs, where: dict) -> dict:
    return {m: outputs.output(node)[i:i + 1].permute(0, 3, 1, 2).float() for m, (node, i) in where.items()}


def rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).mean().sqrt())


def reconstruction(host, ckpt: str, judge, count: int, log=print) -> dict:
    """Per setting: mean latent error, pixel RMS to the VAE round trip and to the real image, class kept, inversion evaluations."""
    images, labels = held_out_digits(count, offset=10)
    names = to_input_folder(images, "avi_bench_real")
    table, floor = {}, []
    for steps, inv_cfg, cfg, refine in RECONSTRUCTION:
        rows = []
        for name, label in zip(names, labels):
            p = Q.base(ckpt, digits.prompt(int(label)), digits.prompt(int(label)))
            start = real_start(p, name, inv_cfg, refine, steps)
            dec = finish(p, "back", capture(p, "cap", "orig", defaults.PACK["tx"], start, cfg, steps), cfg)
            Q.decode(p, "round_trip", ["enc", 0])
            out = host.run(p, outputs=[dec, "dec_round_trip", "inj_back", "enc", "load"])
            back, trip = (out.output(n).permute(0, 3, 1, 2).float() for n in (dec, "dec_round_trip"))
            real = out.output("load", 0).permute(0, 3, 1, 2).float()
            latent, encoded = out.output("inj_back")["samples"], out.output("enc")["samples"]
            rows.append({"latent": float((latent - encoded).norm() / encoded.norm()), "to_round_trip": rms(back, trip),
                         "to_real": rms(back, real), "class_kept": int(judge.classify(back)[0][0]) == int(label)})
            if len(floor) < len(names):  # the VAE's own loss, once per image
                floor.append({"to_real": rms(trip, real), "class_kept": int(judge.classify(trip)[0][0]) == int(label)})
        key = f"{steps} steps, inversion cfg {inv_cfg:g}, sampling cfg {cfg:g}, refine {refine}"
        table[key] = {k: sum(float(r[k]) for r in rows) / len(rows) for k in rows[0]} | {
            "steps": steps, "inversion_cfg": inv_cfg, "cfg": cfg, "refine": refine, "inversion_evaluations": steps * (refine + 1)}
        log(f"{key}: pixel RMS to the round trip {table[key]['to_round_trip']:.4f}")
    table["VAE round trip only"] = {k: sum(float(r[k]) for r in floor) / len(floor) for k in floor[0]} | {"latent": 0.0, "to_round_trip": 0.0}
    return table


def first_lacking(host, ckpt: str, judge, attributes: list, offset: int, tries: int = 40) -> tuple:
    """(image name, label, offset after it): the next held-out digit whose reconstruction lacks every attribute."""
    for j in range(offset, offset + tries):
        image, label = held_out_digits(1, offset=j)
        name, = to_input_folder(image, f"avi_bench_case_{j}")
        p = Q.base(ckpt, digits.prompt(int(label)), digits.prompt(int(label)))
        dec = finish(p, "back", capture(p, "cap", "orig", defaults.PACK["tx"], real_start(p, name, CFG, REFINE)))
        back = host.run(p, outputs=[dec]).output(dec).permute(0, 3, 1, 2).float()
        measured = judge.measure(back, label.view(1))
        if int(judge.classify(back)[0][0]) == int(label) and not any(bool(M.attribute_reached(measured, a)[0]) for a in attributes):
            return name, int(label), j + 1
    raise RuntimeError(f"no held-out digit from {offset} on lacks {attributes}")


def real_case(ckpt: str, name: str, digit: int, attribute: str) -> tuple[dict, dict]:
    """One real-image case with every method of REAL_METHODS; {method: (decode node, batch index)}."""
    p = Q.base(ckpt, digits.prompt(digit), digits.prompt(digit, **words(attribute)))
    start = real_start(p, name, CFG, REFINE)
    out = {"reconstruction": (finish(p, "back", capture(p, "cap_x", "orig", defaults.PACK["tx"], start)), 0)}
    out["target from the inverted latent"] = (finish(p, "target", capture(p, "cap_0", "orig", 1.0, start), target="tgt"), 0)
    for f in (0.8, 0.6):
        out[f"switch at {f:g}T"] = (finish(p, f"sw{f:g}", capture(p, f"cap_sw{f:g}", "orig", f, start), target="tgt"), 0)
    y, _, _ = avi_edit(p, "paper", defaults.PAPER, "tgt", start, [1.0])
    out["AVI paper ρ=1"] = (finish(p, "paper", y), 0)
    y, _, _ = avi_edit(p, "pack", defaults.PACK, "tgt", start, RHOS)
    decoded = finish(p, "pack", y, target=finishing_prompt(defaults.PACK, "tgt"))
    out.update({f"AVI ρ={r:g}": (decoded, i) for i, r in enumerate(RHOS)})
    y, _, _ = avi_edit(p, "cfg1", defaults.PACK, "tgt", real_start(p, name, 1.0, REFINE, tag="_cfg1"), [defaults.PACK["rho"]], cfg=1.0)
    out[f"AVI ρ={defaults.PACK['rho']:g}, cfg 1"] = (finish(p, "cfg1", y, cfg=1.0, target=finishing_prompt(defaults.PACK, "tgt")), 0)
    return p, out


def composed_case(ckpt: str, digit: int, first: str, second: str, name: str = None, seed: int = 0) -> tuple[dict, dict]:
    """Two attributes on one digit (a real one when name is given, else generated from seed); {method: (node, index)}."""
    p = Q.base(ckpt, digits.prompt(digit), digits.prompt(digit, **words(first)))
    for tag, attrs in (("tgt2", words(second)), ("both", words(first) | words(second))):
        p[tag] = {"class_type": "CLIPTextEncode", "inputs": {"text": digits.prompt(digit, **attrs), "clip": ["ck", 1]}}
    start = real_start(p, name, CFG, REFINE) if name else ["empty", 0]
    stacked = defaults.STACKED
    rho = [stacked["rho"]]
    y1, x, _ = avi_edit(p, "first", stacked, "tgt", start, rho, seed=seed)
    y2, _, _ = avi_edit(p, "second", stacked, "tgt2", start, rho, x=x, seed=seed)
    p["svd_y1"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": y1, "space": stacked["space"]}}
    y12 = Q.integrate(p, "int_both", "train_second", "svd_y1", "svd_z_second", "", stacked["s_inf"])
    p["int_both"]["inputs"]["rho"] = stacked["rho"]
    both = (finish(p, "both_words", capture(p, "cap_0", "orig", 1.0, start), target="both") if name
            else Q.decode(p, "both_words", Q.ksampler(p, "ks_both", "both", seed)))
    out = {"original": (finish(p, "original", ["cap_x_first", 0]), 0), "prompt with both words": (both, 0)}
    for f in SWITCHES:
        out[f"switch at {f:g}T"] = (finish(p, f"sw{f:g}", capture(p, f"cap_sw{f:g}", "orig", f, start, seed=seed), target="both"), 0)
    out |= {"first alone": (finish(p, "first", y1, target=finishing_prompt(stacked, "tgt")), 0),
            "second alone": (finish(p, "second", y2, target=finishing_prompt(stacked, "tgt2")), 0),
            "composed, original finish": (finish(p, "composed_original", y12), 0),
            "composed": (finish(p, "composed", y12, target=finishing_prompt(stacked, "both")), 0)}
    return p, out


def composed_scores(judge, images: dict, digit: int, first: str, second: str) -> dict:
    """Per method: both attributes reached and above the original's, each alone, identity, class kept, RMS."""
    one = {a: Q.score(judge, images, digit, a) for a in (first, second)}
    return {m: {"success": one[first][m]["success"] and one[second][m]["success"], "first": one[first][m]["success"],
                "second": one[second][m]["success"], "class_kept": one[first][m]["class_kept"], "identity": one[first][m]["identity"],
                "rms": one[first][m]["rms"], "ssim": one[first][m]["ssim"]} for m in images}


def mean_table(rows: list, methods, keys) -> dict:
    return {m: {k: sum(float(r[m][k]) for r in rows) / len(rows) for k in keys} for m in methods}


def real_edits(host, ckpt: str, judge, per_edit: int, log=print) -> tuple[dict, list]:
    rows, cases, offset = [], [], 0
    for attribute in REAL_EDITS:
        for _ in range(per_edit):
            name, digit, offset = first_lacking(host, ckpt, judge, [attribute], offset)
            p, where = real_case(ckpt, name, digit, attribute)
            images = images_of(host.run(p, outputs=sorted({n for n, _ in where.values()})), where)
            images["original"] = images["reconstruction"]
            scores = Q.score(judge, images, digit, attribute)
            rows.append(scores)
            cases.append({"edit": attribute, "digit": digit, "image": name,
                          "scores": {m: {k: v for k, v in s.items() if k != "features"} for m, s in scores.items()}})
            default = f"AVI ρ={defaults.PACK['rho']:g}"
            log(f"real {attribute} on a {digit}: {default} {'success' if scores[default]['success'] else 'no change'}")
    return mean_table(rows, REAL_METHODS, ("success", "class_kept", "identity", "rms", "ssim")), cases


def composed_edits(host, ckpt: str, judge, per_pair: int, pairs=PAIRS, log=print) -> dict:
    tables, cases, offset = {}, [], 100
    for source in ("generated", "real"):
        rows = []
        for first, second in pairs:
            for j in range(per_pair):
                if source == "real":
                    name, digit, offset = first_lacking(host, ckpt, judge, [first, second], offset)
                    seed = 0
                else:
                    name, digit = None, (3 * len(rows) + 1) % 10
                    seed = choose_seed(host, ckpt, judge, digit, [first, second], 200 * j)
                p, where = composed_case(ckpt, digit, first, second, name, seed)
                images = images_of(host.run(p, outputs=sorted({n for n, _ in where.values()})), where)
                scores = composed_scores(judge, images, digit, first, second)
                rows.append(scores)
                cases.append({"source": source, "pair": [first, second], "digit": digit, "seed": seed, "image": name, "scores": scores})
                log(f"composed {source} {first} + {second} on a {digit}: {'both' if scores['composed']['success'] else 'not both'}")
        tables[source] = mean_table(rows, COMPOSED_METHODS, ("success", "first", "second", "class_kept", "identity", "rms", "ssim"))
    return {"tables": tables, "cases": cases}


def choose_seed(host, ckpt: str, judge, digit: int, attributes: list, first_seed: int, tries: int = 40) -> int:
    """The first seed whose plain generation lacks every attribute."""
    for seed in range(first_seed, first_seed + tries):
        out = host.run(Q.original_prompt(ckpt, digits.prompt(digit), seed), outputs=["dec_original"])
        measured = judge.measure(out.output("dec_original").permute(0, 3, 1, 2), torch.tensor([digit]))
        if not any(bool(M.attribute_reached(measured, a)[0]) for a in attributes):
            return seed
    raise RuntimeError(f"no seed from {first_seed} gives a {digit} without {attributes}")


def format_rows(table: dict, columns: list, title: str) -> str:
    """A markdown table: one row per key of table, the given (key, header, format) columns."""
    lines = [f"| {title} | " + " | ".join(h for _, h, _ in columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(fmt.format(row[k]) for k, _, fmt in columns) + " |" for name, row in table.items()]
    return "\n".join(lines)


RECON_COLUMNS = [("to_round_trip", "pixel RMS to the VAE round trip", "{:.4f}"), ("to_real", "pixel RMS to the real image", "{:.4f}"),
                 ("latent", "latent error (relative)", "{:.4f}"), ("class_kept", "class kept", "{:.2f}")]
EDIT_COLUMNS = [("success", "attribute success", "{:.2f}"), ("class_kept", "class kept", "{:.2f}"), ("identity", "identity distance", "{:.3f}"),
                ("rms", "RMS to unedited", "{:.3f}"), ("ssim", "SSIM to unedited", "{:.3f}")]
COMPOSED_COLUMNS = [("success", "both attributes", "{:.2f}"), ("first", "stroke", "{:.2f}"), ("second", "slant", "{:.2f}")] + EDIT_COLUMNS[1:]


def run(host, ckpt: str, quick: bool, out_dir: str, parts=("reconstruction", "real", "composed"), log=print) -> dict:
    start = time.perf_counter()
    judge = M.Judge.load()
    done = {}
    if "reconstruction" in parts:
        done["reconstruction"] = reconstruction(host, ckpt, judge, 2 if quick else 12, log)
    if "real" in parts:
        done["real"], done["real_cases"] = real_edits(host, ckpt, judge, 1 if quick else 4, log)
    if "composed" in parts:
        composed = composed_edits(host, ckpt, judge, 1 if quick else COMPOSED_PER_PAIR, PAIRS[:1] if quick else PAIRS, log)
        done["composed"], done["composed_cases"] = composed["tables"], composed["cases"]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "real_results.json")
    if set(parts) != {"reconstruction", "real", "composed"} and os.path.exists(path):  # one part: the others stay as measured
        with open(path, encoding="utf-8") as f:
            done = json.load(f) | done | {f"{'_'.join(parts)}_seconds": time.perf_counter() - start}
    else:
        done["seconds"] = time.perf_counter() - start
    with open(path + ".part", "w", encoding="utf-8") as f:
        json.dump(done, f, indent=1, ensure_ascii=False)
    os.replace(path + ".part", path)
    return done


def report(done: dict) -> str:
    parts = []
    if "reconstruction" in done:
        parts.append(format_rows(done["reconstruction"], RECON_COLUMNS, "reconstruction (held-out real digits)"))
    if "real" in done:
        parts.append(format_rows(done["real"], EDIT_COLUMNS, f"real-image edit ({len(done['real_cases'])} cases)"))
    for source, table in done.get("composed", {}).items():
        n = sum(1 for c in done["composed_cases"] if c["source"] == source)
        parts.append(format_rows(table, COMPOSED_COLUMNS, f"two attributes, {source} digits ({n} cases)"))
    return "\n\n".join(parts) + "\n\n" + ", ".join(f"{k.replace('_', ' ')}: {v:.0f}" for k, v in done.items() if k.endswith("seconds"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: two images, one case per part")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "bench", "results"))
    parser.add_argument("--part", choices=("reconstruction", "real", "composed", "all"), default="all")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # many small tensors: one thread is faster on a shared CPU
    from devkit import comfy_host
    host = comfy_host.boot(tempfile.mkdtemp(prefix="avi-bench-real-"), pack_dir=REPO_ROOT)
    parts = ("reconstruction", "real", "composed") if args.part == "all" else (args.part,)
    print(report(run(host, Q.place_checkpoint(Q.CHECKPOINT), args.quick, args.out, parts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
