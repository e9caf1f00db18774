"""Which heads of the people judge change between an original and its edits, and how confidently.

Usage: python bench/people_leak.py [--cases 12] [--out leak.json]    (--analyse leak.json: the table only)

bench_edits counts leakage as any head besides the goal's whose class changes. Per people kind, on bench_edits' own
first --cases cases, this reads every head of the original, of the same original finished from 0.5·T at cfg 4.5
instead of 5 (an image a user calls the same: the judge's floor), of the switch at 0.5·T and 0.8·T, the default edit
and the target from scratch, and reports per head the rate of changed classes, and of changes where both readings
are confident (top probability above bench/edit_kinds.CONFIDENT).
"""
import argparse
import json
import os
import sys

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from bench import edit_kinds as K  # noqa: E402
from bench.bench_edits import CHECKPOINTS, choose_cases  # noqa: E402
from bench.edit_lab import BASE, Editor, boot_lab  # noqa: E402

METHODS = ("original at cfg 4.5", "switch at 0.5T", "switch at 0.8T", "AVI ρ=1", "target from scratch")


def read_kind(lab, editor, judge, kind, count: int) -> list:
    """Per case: method -> head -> [class, top probability]."""
    rows = []
    for i, case in enumerate(choose_cases(lab, judge, kind, count)):
        original, target = case["original"], case["target"]
        run = lab.trajectory(original, case["seed"])
        raws = {"original": run.final, "target from scratch": lab.trajectory(target, case["seed"]).final}
        for f in (0.5, 0.8):
            s = lab.step_at(f)
            raws[f"switch at {f:g}T"] = lab.finish(run.x[s:s + 1], s, [target])
        s = lab.step_at(0.5)
        raws["original at cfg 4.5"] = lab.finish(run.x[s:s + 1], s, [original], cfg=4.5)
        sx, y = editor.y_pred((kind.name, i), case, BASE)
        raws["AVI ρ=1"] = lab.finish(y, sx, [target])
        names = list(raws)
        read = judge.judge.read(lab.decode(torch.cat([raws[n] for n in names])))
        rows.append({n: {h: [read.classes[h][j], float(read.probs[h][j].max())] for h in read.classes} for j, n in enumerate(names)})
        lab.trajectories.clear()
        editor.branches.clear()
    return rows


def analyse(results: dict) -> list:
    lines = []
    for kind, rows in results.items():
        heads = list(rows[0]["original"])
        lines.append(f"{kind} ({len(rows)} cases); the original's mean top probability: "
                     + ", ".join(f"{h} {sum(r['original'][h][1] for r in rows) / len(rows):.2f}" for h in heads))
        for m in METHODS:
            changed = lambda r, h: r[m][h][0] != r["original"][h][0]  # noqa: E731
            sure = lambda r, h: K.sure_change(r["original"][h], r[m][h])  # noqa: E731
            lines.append(f"  {m}: changed " + ", ".join(f"{h} {sum(changed(r, h) for r in rows) / len(rows):.2f}" for h in heads)
                         + "; confidently " + ", ".join(f"{h} {sum(sure(r, h) for r in rows) / len(rows):.2f}" for h in heads))
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--out", default="")
    parser.add_argument("--analyse", default="", metavar="JSON")
    args = parser.parse_args(argv)
    if args.analyse:
        with open(args.analyse, encoding="utf-8") as f:
            print("\n".join(analyse(json.load(f))))
        return 0
    torch.set_num_threads(1)
    lab = boot_lab(CHECKPOINTS["people"])
    editor, judge = Editor(lab), K.PeopleJudge()
    results = {kind.name: read_kind(lab, editor, judge, kind, args.cases) for kind in K.KINDS if kind.model == "people"}
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f)
    print("\n".join(analyse(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
