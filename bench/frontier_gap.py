"""How far an edit lies above or below the prompt switch's frontier, with a bootstrap interval over the cases.

Usage: python bench/frontier_gap.py RESULTS.json [RESULTS.json ...] [--curve AVI] [--resamples 2000] [--out FILE.json]
       [--paired POINT REFERENCE]

Reads the per-case scores bench_edits.py stores (results_*.json). The switch's frontier for one kind is the upper
convex hull of (identity distance, success) over the original (0, 0), the switch at 0.9 … 0.5·T and the target from
scratch (the switch at 1.0·T): any point on it is reached by switching at one of two steps, chosen per case at random in
the right share. An edit's gap is its success less the frontier's at its identity distance: above 0, no mix of switch
points reaches its success at its distance. Cases are resampled with replacement (the same cases for every method), so
the interval says whether a gap is more than the cases' luck.
"""
import argparse
import json
import os
import sys

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from bench.bench_edits import SWITCHES, read_results  # noqa: E402

FRONTIER = ["original"] + [f"switch at {f:g}T" for f in SWITCHES] + ["target from scratch"]


def hull_success(points: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """The frontier of points [R, P, 2] (identity, success) read at identities [R]: the best success any share of two
    points reaches at no more than that distance (the upper convex hull, flat past its peak)."""
    ident, succ = points[..., 0], points[..., 1]
    di, dj = ident.unsqueeze(-1), ident.unsqueeze(-2)
    si, sj = succ.unsqueeze(-1), succ.unsqueeze(-2)
    a = at.view(-1, 1, 1)
    # point i within reach, moved towards j as far as the distance allows (all the way when j is within reach too)
    share = ((a - di) / (dj - di).clamp(min=1e-12)).clamp(0, 1)
    reach = torch.maximum(si, si + share * (sj - si))
    return torch.where(di <= a, reach, torch.full_like(reach, -1.0)).flatten(1).max(1).values


def means(cases: list, methods: list, pick: torch.Tensor) -> torch.Tensor:
    """[R, M, 2] mean (identity, success) of each method over each resample of the cases (pick [R, N] case indices)."""
    table = torch.tensor([[[c["scores"][m]["identity"], float(c["scores"][m]["success"])] for m in methods]
                          for c in cases], dtype=torch.float64)
    return table[pick].mean(1)


def resampled_gaps(cases: list, curve: list, resamples: int, seed: int = 0) -> torch.Tensor:
    """[1 + R, M] gap of each curve point to the switch's frontier: on the cases as run, then on each resample of them."""
    n = len(cases)
    gen = torch.Generator().manual_seed(seed)
    pick = torch.cat([torch.arange(n).view(1, n), torch.randint(n, (resamples, n), generator=gen)])
    frontier = means(cases, FRONTIER, pick)
    points = means(cases, curve, pick)
    return torch.stack([points[:, j, 1] - hull_success(frontier, points[:, j, 0]) for j in range(len(curve))], 1)


def interval(g: torch.Tensor) -> tuple:
    """(value as run, 5th percentile, 95th percentile) of a [1 + R] resampled figure."""
    lo, hi = torch.quantile(g[1:], torch.tensor([0.05, 0.95], dtype=torch.float64)).tolist()
    return float(g[0]), lo, hi


def gaps(cases: list, curve: list, resamples: int, seed: int = 0) -> dict:
    """{curve point: (gap on the cases as run, 5th percentile, 95th percentile)} against the switch's frontier."""
    g = resampled_gaps(cases, curve, resamples, seed)
    return {name: interval(g[:, j]) for j, name in enumerate(curve)}


def paired_differences(results: dict, point: str, reference: str, resamples: int) -> dict:
    """{kind, and "mean over kinds": (point's gap less the reference's, 5th, 95th percentile)}: both read on the same
    resamples of each kind's cases, so the interval is that of the difference itself."""
    out, total = {}, 0
    for kind, done in results.items():
        g = resampled_gaps(done["rows"], [point, reference], resamples)
        diff = g[:, 0] - g[:, 1]
        out[kind], total = interval(diff), total + diff / len(results)
    out["mean over kinds"] = interval(total)
    return out


def curve_points(cases: list, curve: str) -> list:
    """The curve's methods in the order the run stores them (`AVI` → AVI ρ=0 … AVI ρ=2; `AVI auto` alone)."""
    names = [m for m in cases[0]["scores"] if m.startswith(curve + " ρ=")]
    return names or [curve]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="results_*.json files of bench_edits.py")
    parser.add_argument("--curve", nargs="+", default=["AVI", "AVI auto"], help="method names or curve prefixes")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--out", default="", help="also write the gaps as JSON")
    parser.add_argument("--paired", nargs=2, metavar=("POINT", "REFERENCE"), default=None,
                        help="print instead POINT's gap less REFERENCE's per kind and over kinds (e.g. 'z 20 steps ρ=1' 'AVI ρ=1')")
    args = parser.parse_args(argv)
    results = read_results(args.results)
    if args.paired:
        print(f"| kind | {args.paired[0]} less {args.paired[1]} (gap to the switch's frontier) | 90 % interval |\n|---|---|---|")
        for kind, (d, lo, hi) in paired_differences(results, *args.paired, args.resamples).items():
            print(f"| {kind} | {d:+.3f} | {lo:+.3f} … {hi:+.3f} |")
        return 0
    dump = {}
    print("| kind | method | success / identity | gap to the switch's frontier | 90 % interval |")
    print("|---|---|---|---|---|")
    for kind, done in results.items():
        cases = done["rows"]
        names = [m for c in args.curve for m in curve_points(cases, c)]
        dump[kind] = gaps(cases, names, args.resamples)
        for name, (gap, lo, hi) in dump[kind].items():
            t = done["table"][name]
            print(f"| {kind} ({len(cases)}) | {name} | {t['success']:.2f} / {t['identity']:.3f} | {gap:+.3f} | "
                  f"{lo:+.3f} … {hi:+.3f} |")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(dump, f, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
