"""How well the shipped tiny models follow their captions: requested attributes read back from the images.

Usage: python bench/bench_model.py [--model digits|people] [--samples 200] [--steps 20] [--cfg 5] [--checkpoint PATH]

Samples go through stock nodes in the real embedded ComfyUI (CLIPTextEncode, KSampler with
ddim/ddim_uniform, VAEDecode). Digits: each prompt asks for a digit and one to three attributes; the
class is read by the classifier fit on real digits, the attributes by devkit/digits.py. People: each
prompt names a gender (or "person"), a skin tone (or none), and some a role, a hair colour or old age;
every one is read by the people scorer fit on real emoji renders (devkit/people_scorer.py), which also reads 400
held-out real drawings as drawn and after the checkpoint's VAE Encode → VAE Decode: the most any UNet could score.
"""
import argparse
import itertools
import os
import sys
import tempfile
import time

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from bench import digit_metrics as M  # noqa: E402
from devkit import digits, people  # noqa: E402

PER_PROMPT = 10


def prompt_specs(count: int) -> list:
    """(digit, thickness, colour, slant) for count prompts: every digit, attributes cycling so that each value recurs."""
    thick = ("bold", "thin", "", "bold", "thin")
    colours = ("red", "blue", "green", "yellow", "white", "")
    slants = ("slanted left", "", "slanted right")
    combos = zip(itertools.cycle(thick), itertools.cycle(colours), itertools.cycle(slants))
    return [(i % 10, *next(combos)) for i in range(count)]


def generate(host, name: str, texts: list, per_prompt: int, steps: int, cfg: float, seed: int = 0) -> torch.Tensor:
    """Images [len(texts) * per_prompt, 3, 128, 128]: one KSampler batch per prompt, through the host."""
    p = {"ck": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": name}},
         "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["ck", 1]}},
         "empty": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": per_prompt}}}
    outs = []
    for i, text in enumerate(texts):
        p[f"pos{i}"] = {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["ck", 1]}}
        p[f"ks{i}"] = {"class_type": "KSampler", "inputs": {
            "model": ["ck", 0], "seed": seed + i, "steps": steps, "cfg": cfg, "sampler_name": "ddim", "scheduler": "ddim_uniform",
            "positive": [f"pos{i}", 0], "negative": ["neg", 0], "latent_image": ["empty", 0], "denoise": 1.0}}
        p[f"dec{i}"] = {"class_type": "VAEDecode", "inputs": {"samples": [f"ks{i}", 0], "vae": ["ck", 2]}}
        outs.append(f"dec{i}")
    result = host.run(p, outputs=outs)
    return torch.cat([result.output(o) for o in outs]).permute(0, 3, 1, 2).float()


def prompt_following(host, name: str, samples: int = 200, steps: int = 20, cfg: float = 5.0) -> dict:
    """Rates over `samples` images: requested class, and each requested attribute value (by value and overall)."""
    judge = M.Judge.load()
    specs = prompt_specs(-(-samples // PER_PROMPT))
    images = generate(host, name, [digits.prompt(*spec) for spec in specs], PER_PROMPT, steps, cfg)
    requested = [s for s in specs for _ in range(PER_PROMPT)]
    digit = torch.tensor([s[0] for s in requested])
    cls, conf, _ = judge.classify(images)
    measured = judge.measure(images, digit)
    hits: dict = {}
    for i, (_, thick, colour, slant_word) in enumerate(requested):
        one = digits.Measured(measured.thickness[i:i + 1], measured.slant[i:i + 1], measured.colour[i:i + 1])
        for value in (thick, colour, slant_word):
            if value:
                hits.setdefault(value, []).append(bool(M.attribute_reached(one, value)[0]))
    rates = {v: sum(h) / len(h) for v, h in hits.items()}
    by_group = {}
    for group in ("thickness", "slant", "colour"):
        pooled = [x for v, h in hits.items() if M.attribute_group(v) == group for x in h]
        by_group[group] = sum(pooled) / len(pooled)
    return {"samples": len(requested), "class": float((cls == digit).float().mean()), "confidence": float(conf.mean()),
            "attributes": rates, "groups": by_group, "images": images}


PEOPLE_ROLES = ("", "health worker", "teacher", "", "cook", "farmer", "", "scientist", "pilot", "artist", "judge")


def people_specs(count: int) -> list:
    """Attribute dicts (age, gender, role, hair, skin) for count prompts: genders and tones in turn, some roles,
    a hair colour every fourth prompt and old age every fifth (on plain persons, as the emoji have them)."""
    specs = []
    for i in range(count):
        gender = ("male", "female", "neutral")[i % 3]
        skin = people.SKINS[(i // 3) % len(people.SKINS)]
        hair = ("red", "blond", "white", "curly", "bald")[(i // 4) % 5] if i % 4 == 3 else ""
        old = i % 5 == 4 and not hair
        role = "" if hair or old else PEOPLE_ROLES[i % len(PEOPLE_ROLES)]
        specs.append({"age": "old" if old else "adult", "gender": gender, "role": role, "hair": hair, "skin": skin})
    return specs


def asked_of(age: str, gender: str, role: str = "", hair: str = "", skin: str = "") -> dict:
    """What the judge must read of an image asked for these attributes ('' where nothing is asked)."""
    return {"gender": gender if gender != "neutral" else "", "skin": skin, "hair": hair, "age": "old" if age == "old" else "",
            "role": role}


def attribute_rates(read, asked: list) -> tuple:
    """({head: share of images read as asked}, {head: images asked}) of a judge's reading against asked_of per image."""
    hits: dict = {}
    for i, want in enumerate(asked):
        got = read.at(i)
        for head, value in want.items():
            if value:
                hits.setdefault(head, []).append(got[head] == value)
    return {h: sum(v) / len(v) for h, v in hits.items()}, {h: len(v) for h, v in hits.items()}


def people_following(host, name: str, samples: int = 200, steps: int = 20, cfg: float = 5.0) -> dict:
    """Rates over `samples` images of each requested attribute (gender only where man or woman is named)."""
    from bench.people_metrics import PeopleJudge
    judge = PeopleJudge.load()
    specs = people_specs(-(-samples // PER_PROMPT))
    images = generate(host, name, [people.describe(**s) for s in specs], PER_PROMPT, steps, cfg)
    rates, counts = attribute_rates(judge.read(images), [asked_of(**s) for s in specs for _ in range(PER_PROMPT)])
    return {"samples": len(images), "attributes": rates, "counts": counts, "images": images,
            "texts": [people.describe(**s) for s in specs]}


@torch.no_grad()
def people_round_trip(host, name: str, count: int = 400) -> dict:
    """The judge on held-out real drawings as drawn and after the checkpoint's stock VAE Encode → VAE Decode: the most
    a model with this VAE can score, whatever its UNet ({"real": rates, "round trip": rates, "counts"})."""
    import folder_paths
    from bench.people_metrics import PeopleJudge
    from devkit import people_sources, tiny_models
    data = people_sources.held_out()
    judge = PeopleJudge.load(data)
    vae = tiny_models.load_tiny_checkpoint(folder_paths.get_full_path("checkpoints", name))[2]
    images, idx, _ = data.batch(count, torch.Generator().manual_seed(5), held=True)
    back = vae.decode(vae.encode(images.permute(0, 2, 3, 1))).permute(0, 3, 1, 2).float().clamp(0, 1)
    drawn = [data.drawings[i] for i in idx.tolist()]
    # gender as the prompts ask it: of adults and old persons (children's nouns are not asked)
    asked = [asked_of(d.age, d.gender if d.age in ("adult", "old") else "neutral", d.role, d.hair, d.skin) for d in drawn]
    real, counts = attribute_rates(judge.read(images), asked)
    return {"real": real, "round trip": attribute_rates(judge.read(back), asked)[0], "counts": counts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--model", choices=("digits", "people"), default="digits")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--checkpoint", default="", help="default: the shipped checkpoint of --model")
    parser.add_argument("--grid", default="", help="also write the first sample of every prompt as one picture (JPEG or PNG)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from bench.bench_quality import place_checkpoint
    from devkit import comfy_host
    host = comfy_host.boot(tempfile.mkdtemp(prefix="avi-bench-"), pack_dir=REPO_ROOT)
    start = time.perf_counter()
    checkpoint = args.checkpoint or os.path.join(REPO_ROOT, "demo_models", f"avi_demo_tiny_{args.model}_sd2.safetensors")
    if args.model == "people":
        r = people_following(host, place_checkpoint(checkpoint), args.samples, args.steps, args.cfg)
        print(f"{r['samples']} samples, {args.steps} ddim steps, cfg {args.cfg:g} ({time.perf_counter() - start:.0f} s)")
        for head, rate in r["attributes"].items():
            print(f"{head}: {rate:.3f} of {r['counts'][head]} requests")
        ceiling = people_round_trip(host, place_checkpoint(checkpoint))
        print("the judge on held-out real drawings, as drawn → after VAE Encode and Decode: " + ", ".join(
            f"{h} {ceiling['real'][h]:.3f} → {ceiling['round trip'][h]:.3f} ({ceiling['counts'][h]})" for h in ceiling["real"]))
        if args.grid:
            save_grid(args.grid, r["images"][::PER_PROMPT], r["texts"])
        return 0
    r = prompt_following(host, place_checkpoint(checkpoint), args.samples, args.steps, args.cfg)
    print(f"{r['samples']} samples, {args.steps} ddim steps, cfg {args.cfg:g} ({time.perf_counter() - start:.0f} s)")
    print(f"requested class: {r['class']:.3f} (mean classifier confidence {r['confidence']:.3f})")
    for group, rate in r["groups"].items():
        values = ", ".join(f"{v} {r['attributes'][v]:.2f}" for v in r["attributes"] if M.attribute_group(v) == group)
        print(f"{group}: {rate:.3f} ({values})")
    if args.grid:
        specs = prompt_specs(len(r["images"]) // PER_PROMPT)
        save_grid(args.grid, r["images"][::PER_PROMPT], [digits.prompt(*s).removeprefix("a ").replace("handwritten ", "") for s in specs])
    return 0


def save_grid(path: str, images: torch.Tensor, captions: list, columns: int = 10) -> None:
    """One image per prompt, captioned, `columns` per row."""
    from PIL import Image, ImageDraw
    cell, caption = 128, 28
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * cell, rows * (cell + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (image, words) in enumerate(zip(images, captions)):
        x, y = (i % columns) * cell, (i // columns) * (cell + caption)
        sheet.paste(Image.fromarray((image.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype("uint8")), (x, y))
        draw.text((x + 3, y + cell + 2), words[:22], fill="black")
        draw.text((x + 3, y + cell + 14), words[22:44], fill="black")
    sheet.save(path, quality=90)


if __name__ == "__main__":
    sys.exit(main())
