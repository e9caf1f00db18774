"""Peak memory and time of Train AVI Φ and of AVI inference as the latent grows (64², 96², 128² × 4 and 16 channels).

Usage: python bench/bench_memory.py [--device cpu|cuda] [--steps 3] [--full] [--json out.json]
Training runs at the paper's defaults (latent space, one pair, 5001 resampled samples, Φ 4096 wide, batch 256,
5 epochs) on a synthetic captured pair. Each measurement runs in its own process, so each peak is its own:
peak resident memory (VmHWM) on the CPU, torch.cuda.max_memory_allocated on a GPU. Without --full, training stops
after --steps steps (the peak is reached in the first steps: Adam's state exists from step 1 and every batch
has the same size) and the training time is projected as setup + steps × median step (the final no-grad
evaluation pass left out). "held" is the trainer holding every resampled pair (the path below HOLD_BYTES), run only
where it fits the bound; its size elsewhere is computed (trainer.held_bytes).
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
from avi_core import CapturedPairs, TrainSettings, build_phi, integrate  # noqa: E402
from avi_core.trainer import HOLD_BYTES, TrainingCancelled, held_bytes, train_with_autograd  # noqa: E402
from bench.bench_core import synthetic_pair  # noqa: E402

SIZES = (64, 96, 128)
CHANNELS = (4, 16)
BOUNDS_GB = {4: 4.0, 16: 8.0}  # the bounds at 128×128, 4 and 16 channels
GB = 2 ** 30


def peak_bytes(device: torch.device) -> int:
    """Peak memory of this process so far: GPU allocations on a GPU, resident memory on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_training(channels: int, size: int, device: torch.device, steps: int, hold: bool) -> dict:
    """Train at the paper's defaults, stopped after `steps` steps (0: to the end); times and the peak."""
    pair = synthetic_pair(channels, size, size)
    settings = TrainSettings()
    marks = [time.perf_counter()]
    setup_done = []

    def progress(step, total, record):
        sync(device)
        marks.append(time.perf_counter())

    def should_stop():
        if not setup_done:
            setup_done.append(time.perf_counter())
        return bool(steps) and len(marks) > steps

    finished = True
    try:
        result = train_with_autograd(pair, settings, progress, should_stop, device, hold_bytes=(1 << 62) if hold else HOLD_BYTES)
    except TrainingCancelled:
        finished = False
    end = time.perf_counter()
    step_times = [b - a for a, b in zip([setup_done[0]] + marks[1:-1], marks[1:])]
    resolved = settings.resolved(size, 1)
    samples = resolved.samples_per_pair + 1
    total_steps = resolved.epochs * math.ceil(samples / resolved.batch_size)
    out = {"setup_s": setup_done[0] - marks[0], "steps_measured": len(step_times), "total_steps": total_steps,
           "step_s": statistics.median(step_times[1:] or step_times), "first_step_s": step_times[0],
           "peak_gb": peak_bytes(device) / GB, "finished": finished}
    if finished:
        out["total_s"] = end - marks[0]
        out["final_loss"] = result.final_losses["total"]
    else:
        out["total_s_projected"] = out["setup_s"] + total_steps * out["step_s"]
    return out


def measure_inference(channels: int, size: int, device: torch.device, repeats: int = 5) -> dict:
    """One AVI edit (two SVDs, Φ 4096 wide, Algorithm 1, recomposition) of one latent: median time and the peak."""
    pair = synthetic_pair(channels, size, size)
    phi = build_phi(size, size).to(device).eval()
    x, z = pair.x.to(device), pair.z.to(device)
    times = []
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        integrate(phi, x, z, 1.0)
        sync(device)
        times.append(time.perf_counter() - start)
    return {"edit_s": statistics.median(times[1:]), "peak_gb": peak_bytes(device) / GB}


def child(args) -> None:
    """One measurement in this process; its JSON on the last line of stdout."""
    device = torch.device(args.device)
    if args.what == "inference":
        out = measure_inference(args.channels, args.size, device)
    else:
        out = measure_training(args.channels, args.size, device, 0 if args.full else args.steps, args.what == "held")
    print(json.dumps(out))


def run_child(what: str, channels: int, size: int, args) -> dict:
    """measure_* in a fresh process (so its peak is its own)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", what, "--channels", str(channels), "--size", str(size),
           "--device", args.device, "--steps", str(args.steps)] + (["--full"] if args.full else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def held_gb(channels: int, size: int) -> float:
    """Size of the training set the held trainer keeps (x, z, Û, V̂ of 5001 samples) for this latent."""
    pair = CapturedPairs(*(torch.zeros(1, channels, size, size) for _ in range(4)), 3.0, 1.0)
    return held_bytes(pair, TrainSettings().resolved(size, 1).samples_per_pair) / GB


def report(rows: list) -> str:
    lines = ["| latent | train peak GB | bound | held set GB (held peak) | setup s | step s | training s | edit s | edit peak GB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, i = r["train"], r["inference"]
        if "error" in t:
            lines.append(f"| {r['latent']} | error: {t['error']} |")
            continue
        held = f"{r['held_set_gb']:.1f}" + (f" ({r['held']['peak_gb']:.2f})" if "peak_gb" in r.get("held", {}) else "")
        total = t.get("total_s", t.get("total_s_projected"))
        mark = "" if t["finished"] else " (projected)"
        bound = f"{BOUNDS_GB[r['channels']]:.0f}" if r["size"] == 128 else ""
        lines.append(f"| {r['latent']} | {t['peak_gb']:.2f} | {bound} | {held} | {t['setup_s']:.1f} | {t['step_s']:.2f} | "
                     f"{total:.0f}{mark} | {i.get('edit_s', float('nan')):.3f} | {i.get('peak_gb', float('nan')):.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="training steps measured (the rest projected)")
    parser.add_argument("--full", action="store_true", help="train to the end instead of projecting")
    parser.add_argument("--json", default=os.path.join(REPO_ROOT, "bench", "results", "memory.json"))
    parser.add_argument("--child", choices=("train", "held", "inference"), dest="what")
    parser.add_argument("--channels", type=int)
    parser.add_argument("--size", type=int)
    args = parser.parse_args()
    if args.what:
        return child(args)
    rows, started = [], time.perf_counter()
    for channels in CHANNELS:
        for size in SIZES:
            row = {"latent": f"{channels}×{size}×{size}", "channels": channels, "size": size,
                   "held_set_gb": held_gb(channels, size)}
            row["train"] = run_child("train", channels, size, args)
            row["inference"] = run_child("inference", channels, size, args)
            if row["held_set_gb"] < 0.75 * BOUNDS_GB[channels]:  # where it fits: the growth measured, not only computed
                row["held"] = run_child("held", channels, size, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    table = report(rows)
    print(table)
    meta = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "steps_measured": args.steps, "full": args.full, "wall_s": time.perf_counter() - started}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "rows": rows, "table": table}, f, indent=1, ensure_ascii=False)
    print(f"wrote {args.json} ({meta['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
