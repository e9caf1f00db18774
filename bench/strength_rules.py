"""Rules for the automatic strength, judged on stored runs: where each lies against the prompt switch's frontier.

Usage: python bench/strength_rules.py RESULTS.json [RESULTS.json ...] [--thresholds -0.5 -0.25 0 0.25] [--resamples 300]

Each case of bench_edits.py's results keeps the model's agreement at every ρ of the default curve and the judge's
scores there, so any rule (avi_core.strength.pick_strength with a threshold and a fallback) can be re-taken without
running a model. Per rule: the gap to the switch's frontier on every kind (bench/frontier_gap.py), its mean and its
worst, on all cases and on each half of them (a rule that only fits one half is luck), beside the fixed ρ = 1.
"""
import argparse
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from avi_core.strength import pick_strength  # noqa: E402
from bench.bench_edits import AVI_METHODS, read_results  # noqa: E402
from bench.frontier_gap import gaps  # noqa: E402

RULE = "rule"


def rule_gaps(kinds: dict, threshold, fallback, resamples: int, part) -> dict:
    """{kind: gap to the frontier} on the cases part(n) of each kind: the rule's picks (fallback None: the sweep's strongest
    ρ where none reaches the threshold), or the fixed ρ = 1 with threshold None."""
    rhos = list(AVI_METHODS["AVI"][1])
    out = {}
    for kind, cases in kinds.items():
        chosen = cases[part(len(cases))]
        for c in chosen:
            rho = 1.0 if threshold is None else rhos[pick_strength(rhos, c["agreement"], threshold,
                                                                   max(rhos) if fallback is None else fallback)]
            c["scores"][RULE] = c["scores"][f"AVI ρ={rho:g}"]
        out[kind] = gaps(chosen, [RULE], resamples)[RULE][0]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--thresholds", nargs="+", type=float, default=[-0.5, -0.25, 0.0, 0.25])
    parser.add_argument("--resamples", type=int, default=300)
    args = parser.parse_args(argv)
    kinds = {k: d["rows"] for k, d in read_results(args.results).items()}
    halves = {"all": lambda n: slice(None), "first half": lambda n: slice(0, n // 2), "second half": lambda n: slice(n // 2, None)}
    print("| rule | " + " | ".join(f"{h}: mean gap (worst)" for h in halves) + " |")
    print("|---|" + "---|" * len(halves))
    for label, threshold, fallback in ([("fixed ρ = 1", None, None)]
                                       + [(f"{t:g}, strongest ρ where none", t, None) for t in args.thresholds]
                                       + [(f"{t:g}, ρ = 1 where none", t, 1.0) for t in args.thresholds]):
        cells = []
        for part in halves.values():
            g = rule_gaps(kinds, threshold, fallback, args.resamples, part)
            cells.append(f"{sum(g.values()) / len(g):+.3f} ({min(g.values()):+.3f})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
