"""Benchmark of avi_core at the paper's defaults: inference latency, training speed, final losses, sizes.

Usage: python bench/bench_core.py [--device cpu|cuda] [--quick] [--json out.json]
Runs the "paper" (hidden 4096) and "compact" Φ presets side by side in one process on a
synthetic captured pair (4×64×64, σx and σz of SD's 0.8·T and 0.5·T steps), so the ratios
printed are measured under the same conditions.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from avi_core import PHI_PRESETS, AttributePhi, CapturedPairs, PhiInfo, TrainSettings, build_phi, integrate, save_phi, to_vp, train_phi  # noqa: E402

SIGMA_X, SIGMA_Z = 3.24, 0.99  # SD2's sigma at timesteps 801 and 501


def synthetic_pair(c=4, h=64, w=64, seed=0) -> CapturedPairs:
    """A pair as the sampler leaves it: shared noise, z's clean prediction a perturbed copy of x's."""
    g = torch.Generator().manual_seed(seed)
    x0x = torch.randn((1, c, h, w), generator=g)
    x0z = x0x + 0.5 * torch.randn((1, c, h, w), generator=g)
    eps = torch.randn((1, c, h, w), generator=g)
    return CapturedPairs(to_vp(x0x + SIGMA_X * eps, SIGMA_X, "eps"), to_vp(x0z + SIGMA_Z * eps, SIGMA_Z, "eps"), x0x, x0z, SIGMA_X, SIGMA_Z)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_inference(phi, pair, device, repeats):
    """Median seconds of one AVI inference (two SVDs, Φ, Algorithm 1, recomposition) of a 4×64×64 latent."""
    x, z = pair.x.to(device), pair.z.to(device)
    for _ in range(3):
        integrate(phi, x, z, rho=1.0)
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        integrate(phi, x, z, rho=1.0)
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def file_size(result, pair):
    """Bytes of the saved .safetensors file of a trained Φ."""
    _, c, h, w = pair.x.shape
    info = PhiInfo(c, h, w, result.settings.k, result.settings.hidden, training=result.settings.as_dict(),
                   losses=result.final_losses)
    with tempfile.TemporaryDirectory() as tmp:
        return os.path.getsize(save_phi(os.path.join(tmp, "phi.safetensors"), AttributePhi(result.phi.cpu(), info)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 500 samples: a smoke run, not the paper's defaults")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device)
    pair = synthetic_pair()
    settings = dict(epochs=1, samples_per_pair=500) if args.quick else {}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; {'quick run' if args.quick else 'paper defaults'}")

    rows = {}
    for preset, hidden in (("paper", PHI_PRESETS["paper"]), ("compact", PHI_PRESETS["compact"])):
        phi = build_phi(64, 64, hidden).to(device).eval()
        latency = time_inference(phi, pair, device, repeats=20 if device.type == "cpu" else 100)
        sync(device)
        start = time.perf_counter()
        result = train_phi(pair, TrainSettings(hidden=hidden, **settings), device=device)
        sync(device)
        wall = time.perf_counter() - start
        rows[preset] = dict(
            hidden=hidden, params=sum(p.numel() for p in result.phi.parameters()), file_bytes=file_size(result, pair),
            inference_s=latency, train_s=wall, samples_per_s=result.samples * result.settings.epochs / wall,
            steps=len(result.history), final_losses=result.final_losses, first_total=result.history[0]["total"],
        )
        print(f"{preset}: trained in {wall:.1f} s", flush=True)

    p, c = rows["paper"], rows["compact"]
    print()
    print(f"{'':28}{'paper':>16}{'compact':>16}{'compact/paper':>16}")
    line = lambda label, a, b, fmt: print(f"{label:28}{fmt(a):>16}{fmt(b):>16}{b / a:>16.3f}")  # noqa: E731
    line("hidden width", p["hidden"], c["hidden"], str)
    line("parameters", p["params"], c["params"], lambda v: f"{v:,}")
    line("file size (MB)", p["file_bytes"] / 1e6, c["file_bytes"] / 1e6, lambda v: f"{v:.1f}")
    line("inference latency (ms)", p["inference_s"] * 1e3, c["inference_s"] * 1e3, lambda v: f"{v:.2f}")
    line("training wall time (s)", p["train_s"], c["train_s"], lambda v: f"{v:.1f}")
    line("training samples/s", p["samples_per_s"], c["samples_per_s"], lambda v: f"{v:.0f}")
    for term in ("l1", "l2", "l3", "l4", "total"):
        line(f"final {term}", p["final_losses"][term], c["final_losses"][term], lambda v: f"{v:.1f}")
    gap = c["final_losses"]["total"] / p["final_losses"]["total"] - 1
    verdict = "within" if abs(gap) <= 0.05 else "NOT within"
    print(f"\ncompact final total loss is {gap:+.2%} of the paper width's: {verdict} 5 %")
    print(f"training lowered the total loss {p['first_total'] / p['final_losses']['total']:.1f}x (paper), "
          f"{c['first_total'] / c['final_losses']['total']:.1f}x (compact)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "quick": args.quick, "presets": rows, "compact_gap": gap}, f, indent=2)


if __name__ == "__main__":
    main()
