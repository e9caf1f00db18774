"""The edit benchmark over models and kinds of edit: AVI against the stock prompt switch, as a frontier.

Usage: python bench/bench_edits.py [--models digits people] [--cases 40] [--quick] [--out bench/results/edits]

For every model (the shipped digits and people models) and kind of edit (bench/edit_kinds.py: digits stroke, slant and
content; people person → woman, person → man, man ↔ woman, → older, hair colour), cases are prompt pairs with a seed
whose original image does not yet show the goal. Every method starts from that seed's noise on the same 50-step ddim
trajectory (cfg 5), side by side in one run:
- original; target from scratch; the stock prompt switch at f·T (the original prompt to the step of f·T, the target
  after it: KSamplerAdvanced twice, or [a:b:f] prompt editing);
- AVI paper ρ = …: the paper's literal settings; AVI ρ = …: the pack's defaults (bench/edit_lab.py: BASE, PAPER), the edit
  finished with the target prompt; AVI auto: per case, the ρ of that curve Inject Latent's automatic strength takes
  (avi_core.strength, from the agreements the run stores per case).
Per model and kind: success, identity distance, leakage (anything not asked for changed; sure: read confidently in
both images, bench/edit_kinds.CONFIDENT), the Fréchet distance of the judge's features to real images, model
evaluations, and the frontier (success against identity distance) as one plot per model. It calls the host's sampling
functions directly (bench/edit_lab.py) with cached trajectories; tests/host/test_bench_edits.py checks that those match
the nodes.
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

from avi_core import defaults, strength  # noqa: E402
from bench import digit_metrics as DM  # noqa: E402
from bench import edit_kinds as K  # noqa: E402
from bench.edit_lab import BASE, PAPER, STEPS, Editor  # noqa: E402

CHECKPOINTS = {model: os.path.join(REPO_ROOT, "demo_models", f"avi_demo_tiny_{model}_sd2.safetensors") for model in ("digits", "people")}
SWITCHES = (0.9, 0.8, 0.7, 0.6, 0.5)
# name -> (setting, ρ values): each ρ is one point of the method's curve. "AVI" takes z on x's own 50 steps, as the
# stored runs (bench/reference/edits) were made; the workflows' z on 20 steps (defaults.Z_STEPS) is "z 20 steps".
AVI_METHODS = {"AVI paper": (PAPER, (0.0, 0.25, 0.5, 0.75, 1.0)), "AVI": (BASE, (0.0, 0.5, 1.0, 1.25, 1.5, 2.0))}
# Candidate settings a run can add beside them (--variants), for comparing methods on the same cases.
RHOS = (0.0, 0.5, 1.0, 1.25, 1.5, 2.0)
VARIANTS = {
    "original finish": (replace(BASE, finish="original"), RHOS),  # the pack's 0.1 default (ρ = 1.25), the paper's finish
    "no Φ": (replace(BASE, s_inf="Sx→Sz"), RHOS),
    "branch": (replace(BASE, z_from="branch"), RHOS),
    "0.8 branch": (replace(BASE, tx=0.8, z_from="branch"), RHOS),
    "0.7 branch": (replace(BASE, tx=0.7, z_from="branch"), RHOS),
    # z on the target's own run but taken earlier than x (fewer steps to capture it: 61 and 56 evaluations)
    "z at 0.8T": (replace(BASE, dtau=round(BASE.tx - 0.8, 6)), RHOS),
    "z at 0.9T": (replace(BASE, dtau=round(BASE.tx - 0.9, 6)), RHOS),
    "x at 0.7T": (replace(BASE, tx=0.7), RHOS),  # x one tenth of T earlier (z stays 0.1·T after it): ρ = 0 is the switch at 0.7T
    "k=4": (replace(BASE, k=4), RHOS),  # x's four leading singular pairs kept instead of one
    # the target prompt for the first 10 or 20 of the 30 steps after x, then the original (Inject Latent's target_steps)
    "target 10": (replace(BASE, finish="target 10"), RHOS),
    "target 20": (replace(BASE, finish="target 20"), RHOS),
    # the edit made at x's step (0.6T) joins the original's run at 0.7T or 0.8T: more target steps to bring it back to
    # the image manifold (ρ = 0 is the switch at 0.7T or 0.8T; 5 or 10 evaluations more)
    "renoise 0.7T": (replace(BASE, renoise=0.1), RHOS),
    "renoise 0.8T": (replace(BASE, renoise=0.2), RHOS),
    # z on the target prompt's own run of fewer steps (same sampler and scheduler), taken at its step nearest 0.5·T;
    # 20 is the workflows' default (its curve and automatic strength: extend_edits.py --auto, label z20)
    "z 10 steps": (replace(BASE, z_steps=10), (0.5, 1.0, 1.25, 1.5)),
    "z 20 steps": (replace(BASE, z_steps=defaults.Z_STEPS), RHOS),
    # Φ trained on the next seed's captures, as a saved Φ is reused on a new seed (x and z stay the case's own)
    "Φ of another seed": (replace(BASE, phi_seed=1), (1.0, 1.25)),
}
AUTO = "AVI auto"  # the strength the model picks (auto_rho) among the default curve's ρ > 0
AUTO_THRESHOLD = strength.THRESHOLD
SEEDS_TRIED = 30


def method_names() -> list:
    return (["original", "target from scratch"] + [f"switch at {f:g}T" for f in SWITCHES]
            + [f"{name} ρ={r:g}" for name, (_, rhos) in AVI_METHODS.items() for r in rhos] + [AUTO])


def auto_rho(rhos: list, agreement: list, threshold: float = AUTO_THRESHOLD) -> float:
    """The ρ avi_core.strength.pick_strength takes from Editor.agreement (the model as its own judge)."""
    return rhos[strength.pick_strength(rhos, agreement, threshold)]


def take_auto(row: dict) -> bool:
    """Set a case's AVI auto (auto_rho, its scores) to the default curve's ρ that auto_rho takes; whether that moved it."""
    rho = auto_rho(list(AVI_METHODS["AVI"][1]), row["agreement"])
    moved = rho != row.get("auto_rho")
    row["auto_rho"], row["scores"][AUTO] = rho, row["scores"][f"AVI ρ={rho:g}"]
    return moved


def evaluations(lab, setting) -> int:
    """Model evaluations of an edit with a reused Φ: x's capture (steps 0..sx), z's (0..sz of its own run, or sx..sz when
    z branches off x's run), the finish (sx..end, or from the earlier step a renoised edit joins)."""
    sx, sz = lab.step_at(setting.tx), lab.step_at(setting.tx - setting.dtau, setting.z_steps)
    z_steps = (sz - sx + 1) if setting.z_from == "branch" else (sz + 1)
    joins = lab.step_at(setting.tx + setting.renoise) if setting.renoise else sx
    return (sx + 1) + z_steps + (STEPS - joins)


def auto_evaluations(lab, setting, rhos) -> int:
    """An edit at the automatic strength: the edit's evaluations, and two per ρ of the curve for the agreement."""
    return evaluations(lab, setting) + 2 * len(rhos)


def choose_cases(lab, judge, kind: K.Kind, count: int) -> list:
    """Per pair, the first seed (of SEEDS_TRIED from 100·i) whose original is a usable case."""
    cases = []
    for i, pair in enumerate(kind.pairs(count)):
        for seed in range(100 * i, 100 * i + SEEDS_TRIED):
            image = lab.decode(lab.trajectory(pair.original, seed).final)
            if judge.originals_ok(judge.reading(image, pair), pair):
                cases.append({"original": pair.original, "target": pair.target, "seed": seed, "pair": pair})
                break
    return cases


def case_images(editor: Editor, key, case: dict) -> dict:
    """Every method's image [1, 3, H, W] of one case."""
    images = editor.baseline_images(case, SWITCHES)
    for name, (setting, rhos) in AVI_METHODS.items():
        for r in rhos:
            images[f"{name} ρ={r:g}"] = editor.image(key, case, replace(setting, rho=r))
    return images


def case_agreement(editor: Editor, key, case: dict) -> list:
    """Editor.agreement along the default curve's ρ values (two batched model evaluations per ρ)."""
    setting, rhos = AVI_METHODS["AVI"]
    return editor.agreement(key, case, setting, list(rhos))


def monotone(values: list, tolerance: float = 0.01) -> bool:
    """The goal's statistic rises with ρ: never falls by more than `tolerance`, and ends above where it starts."""
    return all(b >= a - tolerance for a, b in zip(values, values[1:])) and values[-1] > values[0]


def method_row(scores: list, judge, evaluations: int) -> dict:
    """One method's table row over one kind's cases: rates, means, FD of the judge's features to real images, evaluations."""
    n = len(scores)
    feats = torch.stack([s.features for s in scores])
    return {"success": sum(s.success for s in scores) / n, "identity": sum(s.identity for s in scores) / n,
            "leak": sum(s.leak for s in scores) / n, "sure_leak": sum(s.sure_leak for s in scores) / n,
            "fd": DM.frechet_distance(feats, judge.real_features) if n > 2 else float("nan"), "evaluations": evaluations}


def summarise(rows: list, judge, evals: dict) -> dict:
    """Per method over the cases of one kind: method_row, and how often the goal rises with ρ along each AVI curve."""
    table = {}
    for r in rows:
        take_auto(r)
    for method in method_names():
        table[method] = method_row([r["scores"][method] for r in rows], judge, evals[method])
    for name, (_, rhos) in AVI_METHODS.items():
        rises = [monotone([r["scores"][f"{name} ρ={rho:g}"].value for rho in rhos]) for r in rows]
        table[f"{name} ρ={rhos[-1]:g}"]["rho_monotone"] = sum(rises) / len(rises)
    return table


def dominance(table: dict, curve: str) -> list:
    """Per switch point: the best point of the curve (a name prefix) with at least its success at no more identity
    distance, or None; (switch, its success, identity, curve point or None)."""
    points = [(m, t) for m, t in table.items() if m.startswith(curve + " ρ=")]
    out = []
    for f in SWITCHES:
        s = table[f"switch at {f:g}T"]
        better = [(m, t) for m, t in points if t["success"] >= s["success"] and t["identity"] <= s["identity"]]
        out.append((f, s["success"], s["identity"], min(better, key=lambda mt: mt[1]["identity"])[0] if better else None))
    return out


def run_model(model: str, count: int, log=print, kinds: list = None) -> dict:
    """Cases of every kind of one model, every method, scored: {kind: {"table", "cases"}}."""
    from bench.edit_lab import Lab
    lab = Lab(CHECKPOINTS[model])
    editor = Editor(lab)
    judges = {}
    out = {}
    for kind in [k for k in K.KINDS if k.model == model and (kinds is None or k.name in kinds)]:
        judge = judges.setdefault(kind.judge, K.DigitsJudge() if kind.judge == "digits" else K.PeopleJudge())
        start = time.perf_counter()
        cases = choose_cases(lab, judge, kind, count)
        rows = []
        for i, case in enumerate(cases):
            pair = case["pair"]
            images = case_images(editor, (kind.name, i), case)
            readings = {m: judge.reading(img, pair) for m, img in images.items()}
            scores = {m: judge.score(r, readings["original"], pair, kind.may_change) for m, r in readings.items()}
            rows.append({"case": {k: v for k, v in case.items() if k != "pair"}, "scores": scores, "images": images,
                         "agreement": case_agreement(editor, (kind.name, i), case)})
            lab.trajectories.clear()
            editor.branches.clear()
        evals = {m: STEPS for m in method_names() if not m.startswith("AVI")}
        for name, (setting, rhos) in AVI_METHODS.items():
            evals.update({f"{name} ρ={r:g}": evaluations(lab, setting) for r in rhos})
        evals[AUTO] = auto_evaluations(lab, *AVI_METHODS["AVI"])
        out[kind.name] = {"table": summarise(rows, judge, evals), "rows": rows, "seconds": time.perf_counter() - start}
        log(f"{model} / {kind.name}: {len(rows)} cases in {out[kind.name]['seconds']:.0f} s")
    return out


def format_table(model: str, results: dict) -> str:
    lines = [f"| {model}: kind | method | success | identity distance | leakage (sure) | FD | evaluations |", "|---|---|---|---|---|---|---|"]
    for kind, done in results.items():
        for method, t in done["table"].items():
            lines.append(f"| {kind} ({len(done['rows'])}) | {method} | {t['success']:.2f} | {t['identity']:.3f} | {t['leak']:.2f} ({t.get('sure_leak', float('nan')):.2f}) | "
                         f"{t['fd']:.1f} | {t['evaluations']} ({t['evaluations'] / STEPS:.2f}×) |")
    return "\n".join(lines)


def frontier_words(model: str, results: dict, curve: str = "AVI") -> list:
    """Where the curve lies above the switch and where below, one line per kind."""
    lines = []
    for kind, done in results.items():
        verdicts = dominance(done["table"], curve)
        above = [f"{f:g}T" for f, _, _, m in verdicts if m]
        below = [f"{f:g}T ({s:.2f} at {d:.3f})" for f, s, d, m in verdicts if not m]
        lines.append(f"{model} / {kind}: {curve} at or above the switch at {', '.join(above) or 'no point'}; "
                     f"below at {', '.join(below) or 'no point'}")
    return lines


def plot_frontier(path: str, model: str, results: dict) -> None:
    """One panel per kind: success against identity distance, the switch's points beside each AVI curve."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kinds = list(results)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.8), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        t = results[kind]["table"]
        sw = [t[f"switch at {f:g}T"] for f in SWITCHES]
        ax.plot([s["identity"] for s in sw], [s["success"] for s in sw], "o-", color="grey", label="prompt switch")
        for f, s in zip(SWITCHES, sw):
            ax.annotate(f"{f:g}T", (s["identity"], s["success"]), fontsize=7, color="grey", xytext=(3, -8), textcoords="offset points")
        for (name, (_, rhos)), colour in zip(AVI_METHODS.items(), ("tab:orange", "tab:blue", "tab:green", "tab:red")):
            pts = [t[f"{name} ρ={r:g}"] for r in rhos]
            ax.plot([p["identity"] for p in pts], [p["success"] for p in pts], "s-", color=colour, label=name)
            for r, p in zip(rhos, pts):
                ax.annotate(f"{r:g}", (p["identity"], p["success"]), fontsize=7, color=colour, xytext=(3, 3), textcoords="offset points")
            if name != "AVI" and f"{name} auto" in t:  # a candidate setting's own automatic strength (extend_edits.py --auto)
                a = t[f"{name} auto"]
                ax.plot([a["identity"]], [a["success"]], "D", color=colour, markerfacecolor="none", markersize=9, label=f"{name} auto")
        a = t[AUTO]
        ax.plot([a["identity"]], [a["success"]], "D", color="tab:blue", markerfacecolor="none", markersize=9, label=AUTO)
        s = t["target from scratch"]
        ax.plot([s["identity"]], [s["success"]], "*", color="black", markersize=10, label="target from scratch")
        ax.set_title(f"{model}: {kind} ({len(results[kind]['rows'])} cases)", fontsize=9)
        ax.set_xlabel("identity distance (lower keeps more)")
        ax.set_ylabel("success")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_grid(path: str, results: dict, methods: list, per_kind: int = 4, cell: int = 64) -> None:
    """Rows: the first cases of each kind; columns: the given methods."""
    from PIL import Image
    rows = []
    for done in results.values():
        for r in done["rows"][:per_kind]:
            cells = [torch.nn.functional.interpolate(r["images"][m], size=(cell, cell), mode="area") for m in methods]
            rows.append(torch.cat(cells, dim=3))
    grid = torch.cat(rows, dim=2)[0].permute(1, 2, 0).clamp(0, 1)
    Image.fromarray((grid.numpy() * 255).round().astype("uint8")).save(path)


def write(out_dir: str, model: str, results: dict) -> None:
    os.makedirs(out_dir, exist_ok=True)
    plot_frontier(os.path.join(out_dir, f"frontier_{model}.png"), model, results)
    save_grid(os.path.join(out_dir, f"grid_{model}.jpg"), results,
              ["original", "target from scratch", "switch at 0.8T", "switch at 0.6T", "AVI paper ρ=1", "AVI ρ=1", "AVI ρ=1.25"])
    dump = {kind: {"table": done["table"], "seconds": done["seconds"],
                   "cases": [dict(r["case"], agreement=r["agreement"], auto_rho=r["auto_rho"], scores={m: {k: v for k, v in vars(s).items() if k != "features"}
                                                     for m, s in r["scores"].items()}) for r in done["rows"]]}
            for kind, done in results.items()}
    with open(os.path.join(out_dir, f"results_{model}.json"), "w", encoding="utf-8") as f:
        json.dump(dump, f, indent=1, ensure_ascii=False)


def repick_auto(done: dict) -> int:
    """AVI auto of a stored run re-taken by today's rule (auto_rho) from the agreements and per-ρ scores each case keeps;
    the table's row follows, its FD unknown where a pick moved (the run keeps no image features). Returns the moves."""
    if AUTO not in done["table"] or any("agreement" not in r for r in done["rows"]):
        return 0   # a run before the automatic strength
    moved = sum(take_auto(r) for r in done["rows"])
    if moved:
        row = done["table"][AUTO]
        for key in ("success", "identity", "leak", "sure_leak"):
            row[key] = sum(float(r["scores"][AUTO].get(key, "nan")) for r in done["rows"]) / len(done["rows"])
        row["fd"] = float("nan")
    return moved


def add_methods(done: dict, part: dict, where: str) -> None:
    """Merge a file's methods of one kind (bench/extend_edits.py) into the run of the same cases. The file may repeat a
    method an earlier file gave if it brings new ones too and scores the repeated one the same in every case (a
    deterministic rerun of it: a setting's whole curve where one ρ of it was measured before)."""
    same = [(r["original"], r["target"], r["seed"]) for r in done["rows"]] == \
           [(r["original"], r["target"], r["seed"]) for r in part["rows"]]
    again = set(done["table"]) & set(part["table"])
    if not same or again == set(part["table"]) or any(row["scores"][m] != added["scores"][m]
                                                      for m in again for row, added in zip(done["rows"], part["rows"])):
        raise ValueError(f"{where} is already in an earlier file; give each kind once, or a file of other methods on the "
                         "same cases (bench/extend_edits.py)")
    done["table"].update({m: row for m, row in part["table"].items() if m not in again})
    for row, added in zip(done["rows"], part["rows"]):
        row["scores"].update(added["scores"])
    done["seconds"] += part["seconds"]


def read_results(paths: list) -> dict:
    """Tables and cases of results_*.json files written by write(), merged by kind (runs split over kinds; methods added
    to the same cases by bench/extend_edits.py), AVI auto re-taken by today's rule (repick_auto)."""
    merged = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for kind, done in json.load(f).items():
                part = {"table": done["table"], "rows": done["cases"], "seconds": done["seconds"]}
                if kind in merged:
                    add_methods(merged[kind], part, f"{path}: kind {kind!r}")
                    continue
                merged[kind] = part
                merged[kind]["auto_moved"] = repick_auto(merged[kind])
    return merged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(CHECKPOINTS), choices=list(CHECKPOINTS))
    parser.add_argument("--kinds", nargs="+", default=None, help="only these kinds (names as in bench/edit_kinds.py)")
    parser.add_argument("--cases", type=int, default=40, help="cases per kind")
    parser.add_argument("--quick", action="store_true", help="one case per kind")
    parser.add_argument("--variants", nargs="*", default=[], choices=list(VARIANTS), help="candidate settings to add")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "bench", "results", "edits"))
    parser.add_argument("--label", default="", help="file names' suffix, for runs of part of a model's kinds side by side")
    parser.add_argument("--from-results", nargs="+", default=None, metavar="JSON",
                        help="run nothing: merge these results files (one model, kinds run apart) into one frontier "
                             "plot, table and verdict, written as --models' first model with --label")
    args = parser.parse_args(argv)
    AVI_METHODS.update({name: VARIANTS[name] for name in args.variants})  # their curves drawn too with --from-results
    if args.from_results:
        model = args.models[0] + (f"_{args.label}" if args.label else "")
        results = read_results(args.from_results)
        os.makedirs(args.out, exist_ok=True)
        plot_frontier(os.path.join(args.out, f"frontier_{model}.png"), model, results)
        print(format_table(model, results))
        print("\n".join(frontier_words(model, results)))
        print("AVI auto re-taken by today's rule: " + ", ".join(f"{k} {d['auto_moved']} of {len(d['rows'])} picks moved"
                                                              for k, d in results.items()))
        return 0
    torch.set_num_threads(1)  # many small tensors: one thread is faster on a shared CPU (see tests/host/conftest.py)
    import tempfile
    from devkit import comfy_host
    comfy_host.boot(tempfile.mkdtemp(prefix="avi-bench-"), pack_dir=REPO_ROOT)
    for model in args.models:
        results = run_model(model, 1 if args.quick else args.cases, kinds=args.kinds)
        write(args.out, model + (f"_{args.label}" if args.label else ""), results)
        print(format_table(model, results))
        print("\n".join(frontier_words(model, results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
