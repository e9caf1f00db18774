"""The model as its own judge of a finished edit: does it tell where the edit reached the target, and pick a strength?

Usage: python bench/model_judge.py --model people --kinds KIND... [--cases 12] --out FILE.json
       python bench/model_judge.py --analyse FILE.json...

Per case of bench/edit_kinds.py (bench_edits' own cases, the first --cases of each kind), every switch point and every
ρ of the default AVI curve is finished and read by the kind's judge (success, identity). The model then judges each
finished latent x0 itself, as a diffusion classifier does: re-noised with a fixed ε to σ at 0.2 … 0.8·T, it is
denoised once under each prompt (cfg 1), and the gap ‖D(x0 + σε, prompt) − x0‖² of each prompt is kept. The lead of
the target, Σ(gap_original − gap_target) / Σ(gap_original + gap_target), is the model's reading: > 0 where the target
explains the image better. --analyse reports how well that reading separates the judge's successes (AUC) and what a
pick by it gives: the least change (the smallest ρ, or the latest switch point) whose lead reaches τ.
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

from bench import edit_kinds as K  # noqa: E402
from bench.bench_edits import CHECKPOINTS, choose_cases  # noqa: E402
from bench.edit_lab import BASE, Editor, boot_lab  # noqa: E402

LEVELS = (0.2, 0.35, 0.5, 0.65, 0.8)
RHOS = (0.0, 0.5, 1.0, 1.25, 1.5, 2.0)
SWITCHES = (0.5, 0.6, 0.7, 0.8, 0.9)  # the least change first
TAUS = (0.0, 0.005, 0.01, 0.02, 0.03)
AVI_NAMES = [f"AVI ρ={r:g}" for r in RHOS]
SWITCH_NAMES = [f"switch at {f:g}T" for f in SWITCHES]


def denoising_gaps(lab, raws: torch.Tensor, prompt: str, seed: int = 7) -> torch.Tensor:
    """[B, levels] ‖D(x0 + σε, prompt) − x0‖² of finished raw latents, one fixed ε per level, cfg 1."""
    x0 = lab.model.model.process_latent_in(raws)
    out = []
    for j, f in enumerate(LEVELS):
        s = lab.step_at(f)
        eps = torch.randn(x0.shape[1:], generator=torch.Generator().manual_seed(seed + j)).expand_as(x0)
        denoised = lab.branch(x0 + float(lab.sigmas[s]) * eps, s, s, prompt, cfg=1.0)[1]
        out.append((denoised - x0).square().flatten(1).sum(1))
    return torch.stack(out, 1)


def finished_latents(lab, editor, key, case) -> dict:
    """Raw final latents of the original, the target from scratch, every switch point and every default ρ."""
    original, target = case["original"], case["target"]
    run = lab.trajectory(original, case["seed"])
    raws = {"original": run.final, "target from scratch": lab.trajectory(target, case["seed"]).final}
    for f in SWITCHES[::-1]:
        s = lab.step_at(f)
        raws[f"switch at {f:g}T"] = lab.finish(run.x[s:s + 1], s, [target])
    for r in RHOS:
        sx, y = editor.y_pred(key, case, replace(BASE, rho=r))
        raws[f"AVI ρ={r:g}"] = lab.finish(y, sx, [target])
    return raws


def measure(lab, kinds: list, count: int, log=print) -> dict:
    """Per kind: per case, the judge's scores and both prompts' denoising gaps of every finished latent."""
    editor = Editor(lab)
    out = {}
    for kind in [k for k in K.KINDS if k.name in kinds]:
        judge = K.DigitsJudge() if kind.judge == "digits" else K.PeopleJudge()
        start, rows = time.perf_counter(), []
        for i, case in enumerate(choose_cases(lab, judge, kind, count)):
            pair = case["pair"]
            raws = finished_latents(lab, editor, (kind.name, i), case)
            names = list(raws)
            batch = torch.cat([raws[n] for n in names])
            images = lab.decode(batch)
            readings = {n: judge.reading(images[j:j + 1], pair) for j, n in enumerate(names)}
            scores = {n: judge.score(r, readings["original"], pair, kind.may_change) for n, r in readings.items()}
            gap_o, gap_t = denoising_gaps(lab, batch, pair.original), denoising_gaps(lab, batch, pair.target)
            rows.append({"case": {k: v for k, v in case.items() if k != "pair"},
                         "scores": {n: {"success": bool(s.success), "identity": float(s.identity), "leak": bool(s.leak),
                                        "value": float(s.value)} for n, s in scores.items()},
                         "gap_o": {n: gap_o[j].tolist() for j, n in enumerate(names)},
                         "gap_t": {n: gap_t[j].tolist() for j, n in enumerate(names)}})
            lab.trajectories.clear()
            editor.branches.clear()
            log(f"{kind.name} case {i} ({time.perf_counter() - start:.0f} s)")
        out[kind.name] = rows
    return out


def target_lead(row: dict, name: str) -> float:
    """Σ(gap_original − gap_target) / Σ(gap_original + gap_target) over the levels: > 0 where the target explains it better."""
    go, gt = row["gap_o"][name], row["gap_t"][name]
    return sum(a - b for a, b in zip(go, gt)) / sum(a + b for a, b in zip(go, gt))


def auc(positives: list, negatives: list) -> float:
    """P(a success's lead > a failure's), ties half."""
    if not positives or not negatives:
        return float("nan")
    return sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives) / (len(positives) * len(negatives))


def pick(row: dict, names: list, tau: float) -> str:
    """The first of names (least change first) whose lead reaches tau; the highest lead when none does."""
    leads = [target_lead(row, n) for n in names]
    return next((n for n, v in zip(names, leads) if v >= tau), names[max(range(len(names)), key=leads.__getitem__)])


def rates(rows: list, choose) -> str:
    chosen = [choose(r) for r in rows]
    success = sum(r["scores"][c]["success"] for r, c in zip(rows, chosen)) / len(rows)
    identity = sum(r["scores"][c]["identity"] for r, c in zip(rows, chosen)) / len(rows)
    return f"{success:.2f} / {identity:.3f}" if identity < 1 else f"{success:.2f} / {identity:.1f}"


def analyse(results: dict) -> list:
    lines = []
    for kind, rows in results.items():
        edited = [(target_lead(r, n), s["success"]) for r in rows for n, s in r["scores"].items() if n != "original"]
        lines.append(f"{kind} ({len(rows)} cases): AUC of the lead for the judge's success "
                     f"{auc([v for v, ok in edited if ok], [v for v, ok in edited if not ok]):.2f}")
        lines.append("  fixed: " + ", ".join(f"{n.replace('switch at ', 'switch ')} {rates(rows, lambda r, n=n: n)}"
                                            for n in SWITCH_NAMES + AVI_NAMES))
        for tau in TAUS:
            lines.append(f"  picked at τ = {tau:g}: AVI {rates(rows, lambda r: pick(r, AVI_NAMES, tau))}, "
                         f"switch {rates(rows, lambda r: pick(r, SWITCH_NAMES, tau))}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("digits", "people"))
    parser.add_argument("--kinds", nargs="+", default=[])
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--out", default="")
    parser.add_argument("--analyse", nargs="+", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    if args.analyse:
        results = {}
        for path in args.analyse:
            with open(path, encoding="utf-8") as f:
                results.update(json.load(f))
        print("\n".join(analyse(results)))
        return 0
    if not (args.model and args.kinds and args.out):
        parser.error("give --model, --kinds and --out, or --analyse")
    torch.set_num_threads(1)
    results = measure(boot_lab(CHECKPOINTS[args.model]), args.kinds, args.cases, log=lambda s: print(s, flush=True))
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f)
    print("\n".join(analyse(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
