"""Memory and time of stock VAE Decode per latent on the CPU: the figures behind Singular Value Sweep's size warning.

Usage: python bench/bench_decode.py [--vae taesd|kl|both] [--side 16] [--counts 4,16] [--json out.json]
Each run decodes N latents of side×side cells with ComfyUI's own VAEDecode node in a fresh process (so each
peak is its own) and reports the peak resident memory (VmHWM) above the resident memory before decoding, and
the decode's wall time. Two VAEs: `taesd`, the shipped tiny digits model's (TAESD, as loaded from its
checkpoint), and `kl`, the full-size AutoencoderKL decoder that SD1.5, SD2 and SDXL checkpoints carry (random
weights: the cost does not depend on them). The per-latent figure is the slope between the two counts, so the
model, the host and the process's own memory drop out. ComfyUI sizes its decode batches from the free memory,
so the counts here stay within one batch: the figure is what each latent decoded at once costs.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
DIGITS = os.path.join(REPO_ROOT, "demo_models", "avi_demo_tiny_digits_sd2.safetensors")
MB = 2 ** 20


def rss(field: str) -> int:
    """VmRSS or VmHWM of this process in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def load_vae(kind: str):
    """The VAE as ComfyUI's VAE loader builds it: the digits checkpoint's TAESD, or an SD AutoencoderKL (random weights)."""
    import torch

    import comfy.sd
    if kind == "taesd":
        import comfy.utils
        prefix = "first_stage_model."
        weights = comfy.utils.load_torch_file(DIGITS)
        return comfy.sd.VAE(sd={k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
    from comfy.ldm.models.autoencoder import AutoencoderKL
    config = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
              "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    model = AutoencoderKL(ddconfig=config, embed_dim=4)
    return comfy.sd.VAE(sd=model.state_dict(), device=torch.device("cpu"))


def measure_one(kind: str, side: int, count: int) -> dict:
    """Decode `count` latents in this process; peak memory above the start, and seconds."""
    from devkit import comfy_host

    comfy_host.prepare(tempfile.mkdtemp(prefix="avi-decode-"))
    import torch

    import nodes
    vae = load_vae(kind)
    latents = {"samples": torch.randn(count, 4, side, side, generator=torch.Generator().manual_seed(0))}
    nodes.VAEDecode().decode(vae, {"samples": latents["samples"][:1]})  # weights loaded and kernels warm
    before = rss("VmRSS")
    start = time.perf_counter()
    images = nodes.VAEDecode().decode(vae, latents)[0]
    seconds = time.perf_counter() - start
    return {"vae": kind, "side": side, "count": count, "pixels": list(images.shape[1:3]),
            "peak_mb": (rss("VmHWM") - before) / MB, "seconds": seconds}


def run(kind: str, side: int, count: int) -> dict:
    """measure_one in a fresh process."""
    out = subprocess.run([sys.executable, __file__, "--one", kind, str(side), str(count)], cwd=REPO_ROOT,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae", choices=("taesd", "kl", "both"), default="both")
    parser.add_argument("--side", type=int, default=16, help="latent side in cells (16: the digits model's 128 px)")
    parser.add_argument("--counts", default="4,16", help="two latent counts; the figure is the slope between them")
    parser.add_argument("--json")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]), int(args.one[2]))))
        return 0
    low, high = (int(c) for c in args.counts.split(","))
    rows = []
    for kind in ("taesd", "kl") if args.vae == "both" else (args.vae,):
        a, b = run(kind, args.side, low), run(kind, args.side, high)
        per = {"vae": kind, "side": args.side, "pixels": a["pixels"], "counts": [low, high],
               "mb_per_latent": (b["peak_mb"] - a["peak_mb"]) / (high - low),
               "s_per_latent": (b["seconds"] - a["seconds"]) / (high - low), "runs": [a, b]}
        rows.append(per)
        print(f"{kind:5} {args.side}x{args.side} latents ({a['pixels'][0]}x{a['pixels'][1]} px): "
              f"{per['mb_per_latent']:.2f} MB and {per['s_per_latent']:.3f} s per latent "
              f"(N = {low}: {a['peak_mb']:.0f} MB, {a['seconds']:.2f} s; N = {high}: {b['peak_mb']:.0f} MB, {b['seconds']:.2f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
