"""Sweeps of the AVI edit's settings on the tiny digits model, scored as bench/bench_quality.py scores.

Usage: python bench/sweep_edit.py GROUP [--cases-per-edit 2] [--out bench/reference/sweeps]

GROUP is one of SWEEPS (or "all"). Cases are the benchmark's (bench/reference/quality_results.json,
the committed copy of its full run: edit, digit, seed), the first --cases-per-edit of each edit. Every setting is a change from BASE (the
pack's defaults) or from PAPER (the paper's literal settings); its Φ is trained per case by
avi_core.train_phi on the captured pair (Φ cached for settings that differ only at inference).
Prints one line per setting and writes GROUP.json.
"""
import argparse
import json
import os
import sys
import time
from dataclasses import replace

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from bench import digit_metrics as M  # noqa: E402
from bench.edit_lab import BASE, PAPER, Editor, Setting  # noqa: E402
from bench.bench_quality import EDITS  # noqa: E402
from devkit import digits  # noqa: E402


REFERENCE_RESULTS = os.path.join(REPO_ROOT, "bench", "reference", "quality_results.json")
RHO_SWEEP = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def grid(**axes):
    """Settings that vary one field at a time from BASE over each axis's values."""
    return [replace(BASE, **{name: value}) for name, values in axes.items() for value in values]


SWEEPS = {
    # where the paper's recipe loses the edit: the prompt of the remaining steps, and ρ up to 2
    "paper_finish": [replace(PAPER, rho=r, finish=f) for f in ("original", "target 5", "target 10", "target 15", "target")
                     for r in RHO_SWEEP],
    # the paper's recipe: the reading decisions of docs/method.md against their alternatives, and its options
    "paper_options": [PAPER] + [replace(PAPER, **kw) for kw in
                      [dict(vp=False), dict(samples=0), dict(s_inf="S+Δs"), dict(s_inf="Sx"), dict(z_vectors="head"),
                       dict(train_z="head"), dict(k=4), dict(k=12), dict(space="x0")]],
    # the pack's defaults, one knob at a time
    "timing": [replace(BASE, tx=tx, dtau=d) for tx in (0.9, 0.8, 0.7, 0.6, 0.5) for d in (0.1, 0.3) if tx - d >= 0.2],
    "structure": [BASE] + [replace(BASE, **kw) for kw in
                  [dict(k=2), dict(k=4), dict(k=8), dict(train_z="tail"), dict(train_z="head"), dict(s_inf="S"), dict(s_inf="S+Δs"),
                   dict(finish="target 5"), dict(finish="target")]],
    "rho": [replace(BASE, rho=r) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)],
    # Figure 8: each loss left out
    "losses": [replace(BASE, weights=w) for w in
               [(0.0, 10.0, 10.0, 10.0), (3.0, 0.0, 10.0, 10.0), (3.0, 10.0, 0.0, 10.0), (3.0, 10.0, 10.0, 0.0)]],
    "phi": [replace(BASE, **kw) for kw in [dict(hidden=128), dict(hidden=2048), dict(epochs=1), dict(epochs=20)]],
    "cfg": [replace(BASE, cfg=c) for c in (3.0, 7.5)],
}


class Runner(Editor):
    """The benchmark's digits cases, Φ cache and scoring on one Lab."""

    def __init__(self, lab, judge, cases):
        super().__init__(lab)
        self.judge, self.cases = judge, cases

    def prompts(self, case):
        attribute, o_words, t_words = EDITS[case["edit"]]
        return attribute, digits.prompt(case["digit"], **o_words), digits.prompt(case["digit"], **t_words)

    def pair(self, case) -> tuple[str, str]:
        return self.prompts(case)[1:]

    def score(self, case, original: torch.Tensor, image: torch.Tensor) -> dict:
        """success (attribute reached and moved towards it), class kept, RMS to the original, attribute value."""
        attribute = self.prompts(case)[0]
        cls_o, _, feats_o = self.judge.classify(original)
        cls, _, feats = self.judge.classify(image)
        d = torch.tensor([case["digit"]])
        value = float(M.attribute_value(self.judge.measure(image, d), attribute)[0])
        o_value = float(M.attribute_value(self.judge.measure(original, d), attribute)[0])
        return {"success": bool(M.attribute_reached(self.judge.measure(image, d), attribute)[0]) and value > o_value,
                "class_kept": bool(cls[0] == cls_o[0]), "rms": float(M.rms_distance(image, original)[0]),
                "identity": float(M.identity_distance(feats, feats_o)[0]),
                "value": value, "o_value": o_value}


def mean_scores(rows: list) -> dict:
    return {key: sum(float(r[key]) for r in rows) / len(rows) for key in ("success", "class_kept", "identity", "rms")}


def load_cases(per_edit: int) -> list:
    with open(REFERENCE_RESULTS, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    chosen = []
    for edit in EDITS:
        chosen += [c for c in cases if c["edit"] == edit][:per_edit]
    return [{k: c[k] for k in ("edit", "digit", "seed")} for c in chosen]


def describe(s: Setting) -> str:
    """The fields that differ from the pack's defaults (or, for settings in the paper's space, from the paper's)."""
    ref, name = (PAPER, "paper") if s.space == "latent" else (BASE, "default")
    return ", ".join([name] + [f"{k}={v}" for k, v in s.__dict__.items() if v != getattr(ref, k)])


def sweep_table(folder: str, compact: bool = False) -> str:
    """One markdown table of every setting in the sweep files of a folder (each setting once), baselines first.

    compact keeps ρ = 0, 1 and 2 of the paper_finish sweep (its other ρ change little).
    """
    rows, seen, baselines = [], set(), {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            done = json.load(f)
        baselines.update(done["baselines"])
        for entry in done["settings"]:
            setting = Setting(**(entry["setting"] | {"weights": tuple(entry["setting"]["weights"])}))
            if compact and entry["group"] == "paper_finish" and setting.rho not in (0.0, 1.0, 2.0):
                continue
            if (entry["group"], setting) not in seen:
                seen.add((entry["group"], setting))
                rows.append((entry["group"], describe(setting), entry))
    cell = lambda m: f"{m['success']:.2f} | {m['class_kept']:.2f} | {m['identity']:.3f} | {m['rms']:.3f}"  # noqa: E731
    lines = ["| sweep | setting | success | class kept | identity distance | RMS |", "|---|---|---|---|---|---|"]
    lines += [f"| baseline | {name} | {cell(m)} |" for name, m in baselines.items() if name != "original"]
    lines += [f"| {group} | {text} | {cell(m)} |" for group, text, m in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("group", choices=list(SWEEPS) + ["baselines", "all", "report"],
                        help="a sweep, all of them, or 'report': print the table of the sweep files in --out")
    parser.add_argument("--cases-per-edit", type=int, default=2)
    parser.add_argument("--compact", action="store_true", help="with report: fewer ρ rows of paper_finish")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "bench", "reference", "sweeps"))
    args = parser.parse_args(argv)
    if args.group == "report":
        print(sweep_table(args.out, compact=args.compact))
        return 0
    torch.set_num_threads(1)
    from bench.edit_lab import boot_lab
    lab, judge = boot_lab(), M.Judge.load()
    cases = load_cases(args.cases_per_edit)
    runner = Runner(lab, judge, cases)
    groups = list(SWEEPS) if args.group == "all" else [args.group]
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    originals, baseline_rows = {}, {}
    for i, case in enumerate(cases):
        images = runner.baseline_images(case)
        originals[i] = images["original"]
        for name, image in images.items():
            baseline_rows.setdefault(name, []).append(runner.score(case, originals[i], image))
    summary = {"cases": cases, "baselines": {n: mean_scores(r) for n, r in baseline_rows.items()}, "settings": []}
    for name, m in summary["baselines"].items():
        print(f"{name:28s} success {m['success']:.2f}  class kept {m['class_kept']:.2f}  identity {m['identity']:.3f}  rms {m['rms']:.3f}", flush=True)
    for group in groups if args.group != "baselines" else []:
        for s in SWEEPS[group]:
            rows = [runner.score(case, originals[i], runner.image(i, case, s)) for i, case in enumerate(cases)]
            m = mean_scores(rows)
            summary["settings"].append({"group": group, "setting": s.__dict__ | {"weights": list(s.weights)}, **m,
                                       "per_case": rows})
            print(f"[{group}] {describe(s):50s} success {m['success']:.2f}  class kept {m['class_kept']:.2f}  "
                  f"identity {m['identity']:.3f}  rms {m['rms']:.3f}  ({time.perf_counter() - start:.0f} s)", flush=True)
        with open(os.path.join(args.out, f"{args.group}.json"), "w", encoding="utf-8") as f:
            json.dump(summary | {"seconds": time.perf_counter() - start}, f, indent=1)
    with open(os.path.join(args.out, f"{args.group}.json"), "w", encoding="utf-8") as f:
        json.dump(summary | {"seconds": time.perf_counter() - start}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
