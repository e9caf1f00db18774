"""The paper's Figure 7 on the tiny digits model: the attribute grows with ρ while the digit stays.

Usage: python bench/figure7.py [--results bench/reference/quality_results.json] [--out docs]

Runs example_workflows/digits_rho_sweep.json through the embedded ComfyUI (as a user queues it) and keeps
its captioned grid; measures the stroke of each image in the grid; and plots the attribute
statistic against ρ over the benchmark's cases (the committed copy of bench/bench_quality.py's full
run: the pack's defaults beside the paper's literal settings). Writes docs/figure7_grid.jpg and docs/figure7_rho.png.
"""
import argparse
import json
import os
import sys
import tempfile

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from bench import digit_metrics as M  # noqa: E402
from bench.bench_quality import DEFAULT, EDITS, PAPER, place_checkpoint, CHECKPOINT  # noqa: E402

WORKFLOW = os.path.join(REPO_ROOT, "example_workflows", "digits_rho_sweep.json")


def run_sweep_workflow(host) -> tuple[torch.Tensor, list, torch.Tensor, int]:
    """(grid image [H, W, 3], ρ values, the decoded sweep [R, 3, 128, 128], the digit) from the digits ρ-sweep workflow."""
    from devkit.workflow_api import ui_to_api
    with open(WORKFLOW, encoding="utf-8") as f:
        workflow = json.load(f)
    prompt = ui_to_api(workflow, host.object_info())
    result = host.run(prompt)
    grid_node = next(k for k, v in prompt.items() if v["class_type"] == "AVIImageGrid")
    integrate = next(k for k, v in prompt.items() if v["class_type"] == "AVIIntegrate")
    decode = prompt[grid_node]["inputs"]["images"][0]
    rhos = [float(r) for r in prompt[integrate]["inputs"]["rho_list"].split(",")]
    original = next(v["inputs"]["text"] for v in prompt.values() if v.get("_meta", {}).get("title") == "Original prompt")
    digit = int(next(w for w in original.split() if w.isdigit()))
    return result.output(grid_node)[0], rhos, result.output(decode).permute(0, 3, 1, 2).float(), digit


def curves(results: dict) -> dict:
    """Mean attribute statistic per ρ (relative to each case's original), for the default and the paper's settings."""
    out = {}
    for label, prefix, rhos in (("pack defaults", "AVI ρ=", DEFAULT["rhos"]), ("paper's settings", "AVI paper ρ=", PAPER["rhos"])):
        per_group = {}
        for case in results["cases"]:
            group = M.attribute_group(EDITS[case["edit"]][0])
            start = case["scores"]["original"]["value"]
            per_group.setdefault(group, []).append([case["scores"][f"{prefix}{r:g}"]["value"] - start for r in rhos])
        out[label] = {g: (list(rhos), torch.tensor(v).mean(0).tolist()) for g, v in per_group.items()}
    return out


def plot(path: str, sweep_rhos: list, stroke: list, mean_curves: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(sweep_rhos, stroke, "o-")
    axes[0].axhline(M.ATTRIBUTE_TARGETS["bold"][2], color="k", ls=":", lw=0.8, label="'bold' threshold")
    axes[0].set_xlabel("ρ")
    axes[0].set_ylabel("stroke (ink / class median)")
    axes[0].set_title("digits_rho_sweep.json: one image per ρ", fontsize=9)
    axes[0].legend(fontsize=7)
    for label, style in (("pack defaults", "-"), ("paper's settings", "--")):
        for group, (rhos, values) in mean_curves[label].items():
            axes[1].plot(rhos, values, style, marker="o", label=f"{group}, {label}")
    axes[1].set_xlabel("ρ")
    axes[1].set_ylabel("attribute statistic − original's (toward the target)")
    axes[1].set_title("benchmark cases: mean change of the attribute", fontsize=9)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=os.path.join(REPO_ROOT, "bench", "reference", "quality_results.json"))
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "docs"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from devkit import comfy_host
    from PIL import Image
    host = comfy_host.boot(tempfile.mkdtemp(prefix="avi-fig7-"), pack_dir=REPO_ROOT)
    place_checkpoint(CHECKPOINT)
    grid, rhos, images, digit = run_sweep_workflow(host)
    judge = M.Judge.load()
    stroke = judge.measure(images, torch.full((len(rhos),), digit)).thickness.tolist()
    Image.fromarray((grid.clamp(0, 1).numpy() * 255).round().astype("uint8")).save(os.path.join(args.out, "figure7_grid.jpg"), quality=92)
    with open(args.results, encoding="utf-8") as f:
        mean_curves = curves(json.load(f))
    plot(os.path.join(args.out, "figure7_rho.png"), rhos, stroke, mean_curves)
    print("ρ:", rhos)
    print("stroke:", [round(s, 3) for s in stroke])
    for label, groups in mean_curves.items():
        for group, (r, v) in groups.items():
            print(f"{label}, {group}: " + ", ".join(f"ρ={a:g}: {b:+.3f}" for a, b in zip(r, v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
