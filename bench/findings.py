"""The paper's findings on the shipped digits model: runs the three findings workflows and times the trajectory analysis.

Usage: python bench/findings.py [--out docs]
Runs example_workflows/digits_figure2_sweep.json, digits_figure5_distance.json and digits_mobility.json through the real
embedded ComfyUI (as the frontend queues them), copies their pictures to OUT (findings_*.png) and writes
OUT/findings.json: the Figure 5 distance per step pair (mean and std over seeds), the mobility ranks, and the memory
and time of a 50-step, 8-seed trajectory of 4×64×64 latents analysed by avi_core (the issue's bounds: 1 GB, 10 s).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from avi_core.trajectory import consecutive_distances, mobility  # noqa: E402

WORKFLOWS = {"digits_figure2_sweep": "AVISingularValueSweep", "digits_figure5_distance": "AVITrajectoryDistance",
             "digits_mobility": "AVIMobilityMap"}
PAPER_FIGURE5_SD21 = 4.3e-4  # section 4.3: SD2.1, "a photo of a celebrity", 30 samples, p = 4


def analysis_cost(steps: int = 50, seeds: int = 8, shape=(4, 64, 64)) -> dict:
    """Bytes of a trajectory's latents and x0 predictions, and seconds of distance + mobility on it (this process's threads)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps, seeds, *shape, generator=g)
    start = time.perf_counter()
    consecutive_distances(x, 4, "left")
    mobility(x[steps // 5], x[steps // 2])
    return {"trajectory_bytes": 2 * x.numel() * x.element_size(), "analysis_seconds": time.perf_counter() - start,
            "threads": torch.get_num_threads(), "shape": [steps, seeds, *shape]}


def run_workflows(out_dir: str) -> dict:
    from bench.bench_quality import CHECKPOINT, place_checkpoint
    from devkit import comfy_host, workflow_api
    host = comfy_host.boot(tempfile.mkdtemp(prefix="avi-findings-"), pack_dir=REPO_ROOT)
    place_checkpoint(CHECKPOINT)
    import folder_paths
    results = {}
    for name, node_type in WORKFLOWS.items():
        with open(os.path.join(REPO_ROOT, "example_workflows", f"{name}.json"), encoding="utf-8") as f:
            prompt = workflow_api.ui_to_api(json.load(f), host.object_info())
        result = host.run(prompt)
        node = next(k for k, v in prompt.items() if v["class_type"] == node_type)
        for i, entry in enumerate(e for ui in result.ui["outputs"].values() for e in ui.get("images", [])):
            src = os.path.join(folder_paths.get_output_directory(), entry["subfolder"], entry["filename"])
            shutil.copyfile(src, os.path.join(out_dir, f"findings_{name.removeprefix('digits_')}_{i}.png"))
        if node_type == "AVITrajectoryDistance":
            results["figure5_mean"] = result.output(node, 0)
            results["figure5_table"] = result.output(node, 2).splitlines()[1:]
        elif node_type == "AVIMobilityMap":
            results["mobility_ranks"] = result.output(node, 1).splitlines()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "docs"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    results = run_workflows(args.out)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    results["cost"] = analysis_cost()
    results["paper_figure5_sd21"] = PAPER_FIGURE5_SD21
    with open(os.path.join(args.out, "findings.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
    print(f"Figure 5 mean distance {results['figure5_mean']:.4g} (paper, SD2.1: {PAPER_FIGURE5_SD21:g})")
    print("\n".join(results["figure5_table"]))
    print("\n".join(results["mobility_ranks"]))
    cost = results["cost"]
    print(f"trajectory {cost['shape']}: {cost['trajectory_bytes'] / 2**20:.0f} MiB, analysis {cost['analysis_seconds']:.2f} s "
          f"on {cost['threads']} thread(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
