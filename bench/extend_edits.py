"""Add candidate settings to a stored run of the edit benchmark: the same cases, only the new methods computed.

Usage: python bench/extend_edits.py RESULTS.json [RESULTS.json ...] --model people --variants "z 20 steps" --label L
       [--auto] [--out bench/results/edits]

A run of bench/bench_edits.py keeps each case's prompts, seed and every method's scores (results_*.json). This reads
such files, draws each case's original again (the benchmark is deterministic: the same seed gives the same image), makes
the edits of the named settings (bench_edits.VARIANTS), scores them with the kind's judge against that original, and
writes the new methods alone (results_MODEL_LABEL.json; with --auto, also "NAME auto": the ρ the model picks along the
setting's curve as AVI auto does along the default's, each case's agreements kept beside it) with the frontier of the
run and them together (frontier_MODEL_LABEL.png). bench_edits.read_results, and so frontier_gap.py and bench_edits.py --from-results, merge
such a file into the run it extends when both are given. No switch, target from scratch or default curve is redrawn.
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

from bench import bench_edits as B  # noqa: E402
from bench import edit_kinds as K  # noqa: E402
from bench.edit_lab import Editor, Lab  # noqa: E402


def case_pair(kind: K.Kind, row: dict) -> K.Pair:
    """The prompt pair a stored case was drawn for: choose_cases tries pair i's seeds from 100·i."""
    i = row["seed"] // 100
    pair = kind.pairs(i + 1)[i]
    if (pair.original, pair.target) != (row["original"], row["target"]):
        raise ValueError(f"{kind.name}: the case with seed {row['seed']} is {row['original']!r} → {row['target']!r}, but pair {i} "
                         f"of this benchmark is {pair.original!r} → {pair.target!r}: the run was made by another version")
    return pair


def auto_name(variant: str) -> str:
    return f"{variant} auto"


def extend(model: str, results: dict, variants: list, log=print, lab: Lab = None, auto: bool = False) -> dict:
    """Every setting of `variants` scored on the cases of a stored run (read_results), as a results file of its own:
    {kind: {"table", "seconds", "cases": [{original, target, seed, scores, agreement}]}} (lab: the model, loaded already;
    auto: each variant's automatic strength too, B.auto_rho over its curve's ρ > 0, agreements kept per case)."""
    lab = lab or Lab(B.CHECKPOINTS[model])
    editor = Editor(lab)
    kinds = {k.name: k for k in K.KINDS if k.model == model}
    judge = K.DigitsJudge() if model == "digits" else K.PeopleJudge()
    added = {}
    for kind_name, done in results.items():
        kind, start = kinds[kind_name], time.perf_counter()
        scored, cases = {}, []
        for i, row in enumerate(done["rows"]):
            pair = case_pair(kind, row)
            case = {"original": row["original"], "target": row["target"], "seed": row["seed"], "pair": pair}
            o = judge.reading(lab.decode(lab.trajectory(case["original"], case["seed"]).final), pair)
            scores, agreement, picked = {}, {}, {}
            for name in variants:
                setting, rhos = B.VARIANTS[name]
                for r in rhos:
                    image = editor.image((kind_name, i), case, replace(setting, rho=r))
                    scores[f"{name} ρ={r:g}"] = judge.score(judge.reading(image, pair), o, pair, kind.may_change)
                if auto:
                    agreement[name] = editor.agreement((kind_name, i), case, setting, list(rhos))
                    picked[name] = B.auto_rho(list(rhos), agreement[name])
                    scores[auto_name(name)] = scores[f"{name} ρ={picked[name]:g}"]
            for method, s in scores.items():
                scored.setdefault(method, []).append(s)
            cases.append({"original": row["original"], "target": row["target"], "seed": row["seed"],
                          "scores": {m: {k: v for k, v in vars(s).items() if k != "features"} for m, s in scores.items()},
                          **({"agreement": agreement, "auto_rho": picked} if auto else {})})
            lab.trajectories.clear()
            editor.branches.clear()
        table = {}
        for name in variants:
            setting, rhos = B.VARIANTS[name]
            for r in rhos:
                table[f"{name} ρ={r:g}"] = B.method_row(scored[f"{name} ρ={r:g}"], judge, B.evaluations(lab, setting))
            rises = [B.monotone([c["scores"][f"{name} ρ={r:g}"]["value"] for r in rhos]) for c in cases]
            table[f"{name} ρ={rhos[-1]:g}"]["rho_monotone"] = sum(rises) / len(rises)
            if auto:
                table[auto_name(name)] = B.method_row(scored[auto_name(name)], judge, B.auto_evaluations(lab, setting, rhos))
        added[kind_name] = {"table": table, "seconds": time.perf_counter() - start, "cases": cases}
        log(f"{model} / {kind_name}: {len(cases)} cases extended in {added[kind_name]['seconds']:.0f} s")
    return added


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="results_*.json of bench_edits.py, one model")
    parser.add_argument("--model", required=True, choices=list(B.CHECKPOINTS))
    parser.add_argument("--variants", nargs="+", required=True, choices=list(B.VARIANTS))
    parser.add_argument("--label", required=True, help="the new files' suffix")
    parser.add_argument("--auto", action="store_true", help="each variant's automatic strength too (two evaluations per ρ)")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "bench", "results", "edits"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = B.read_results(args.results)
    import tempfile
    from devkit import comfy_host
    comfy_host.boot(tempfile.mkdtemp(prefix="avi-bench-"), pack_dir=REPO_ROOT)
    added = extend(args.model, results, args.variants, auto=args.auto)
    name = f"{args.model}_{args.label}"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"results_{name}.json"), "w", encoding="utf-8") as f:
        json.dump(added, f, indent=1, ensure_ascii=False)
    for kind, part in added.items():
        B.add_methods(results[kind], {"table": part["table"], "rows": part["cases"], "seconds": part["seconds"]}, kind)
    B.AVI_METHODS.update({v: B.VARIANTS[v] for v in args.variants})
    B.plot_frontier(os.path.join(args.out, f"frontier_{name}.png"), name, results)
    print(B.format_table(name, results))
    for variant in args.variants:
        print("\n".join(B.frontier_words(name, results, variant)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
