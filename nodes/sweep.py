"""Singular Value Sweep: one captured latent with each of several singular values scaled by each of several factors (Figures 2-4)."""
import torch

import comfy.model_management
from comfy_api.v0_0_2 import io

from ..avi_core import scale_singular_value
from ..avi_core.checks import check_channel
from ..avi_core.svd import FACTOR_LIMIT
from .latent_meta import with_capture
from .schema import schema
from .types import AVISVD, require_svd
from .ui import CATEGORY, show_text
from .widgets import AVINode, parse_numbers


MAX_LATENTS = 1024
# Stock VAE Decode on a CPU per latent cell (8×8 px), measured by bench/bench_decode.py: peak memory above the server's
# while a latent is decoded, and seconds. TAESD (the tiny digits model's VAE): 42 MB and 0.33 s per 128×128 px latent;
# the full-size AutoencoderKL of SD1.5/SD2/SDXL: 390 MB and 2.2 s at 128 px, 5.9 GB and 44 s at 512 px. Both grow
# with the pixels.
DECODE_COST = (("a TAESD-size VAE (the tiny digits model)", 0.16 * 2**20, 0.0013),
               ("a full-size SD VAE", 1.5 * 2**20, 0.010))
# ComfyUI 0.3.75 decodes as many latents at once as fit its estimate of free memory, 2178·64 float32 values per cell
# for both VAEs (VAE.memory_used_decode): the batch that sets the peak.
ESTIMATED_BYTES_PER_CELL = 2178 * 64 * 4
WARN_BYTES, WARN_SECONDS = 2**30, 60.0  # a warning when even the small VAE would take more


def amount(value: float, unit: str) -> str:
    """Bytes as MB/GB, seconds as s/min/h, rounded for a warning."""
    if unit == "B":
        return f"{value / 2**30:.1f} GB" if value >= 2**30 else f"{value / 2**20:.0f} MB"
    return f"{value / 3600:.1f} h" if value >= 3600 else f"{value / 60:.1f} min" if value >= 60 else f"{value:.1f} s"


def decode_estimate(count: int, height: int, width: int, free_bytes: float) -> str:
    """What VAE Decode of `count` latents of height×width cells takes on a CPU with free_bytes free, from measured costs."""
    cells = height * width
    at_once = max(1, min(count, int(free_bytes // (ESTIMATED_BYTES_PER_CELL * cells))))
    each = ", ".join(f"{amount(cells * t, 's')} and {amount(cells * b, 'B')} per latent with {vae}" for vae, b, t in DECODE_COST)
    in_all = " / ".join(amount(count * cells * t, "s") for _, _, t in DECODE_COST)
    peak = " / ".join(amount(at_once * cells * b, "B") for _, b, _ in DECODE_COST)
    text = (f"{count} latents of {width * 8}×{height * 8} px to finish and decode. Measured on a CPU, VAE Decode takes {each}: "
            f"{in_all} in all, and {peak} at once, as ComfyUI decodes {at_once} at a time with {amount(free_bytes, 'B')} free")
    _, small_bytes, small_seconds = DECODE_COST[0]
    if at_once * cells * small_bytes > WARN_BYTES or count * cells * small_seconds > WARN_SECONDS:
        text = f"warning: {text}. Sweep fewer factors or indices"
    return text


def free_cpu_memory() -> float:
    """Bytes the host counts as free on the CPU, where the measured costs hold."""
    return comfy.model_management.get_free_memory(torch.device("cpu"))


def sweep(svd, indices: list, factors: list, channel) -> torch.Tensor:
    """[F·I·B, C, H, W] factor-major: for each factor, for each index, the decomposed matrix with σ_index scaled."""
    return torch.cat([scale_singular_value(svd, i, f, channel) for f in factors for i in indices])


class SingularValueSweep(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVISingularValueSweep",
            display_name="Singular Value Sweep",
            category=CATEGORY,
            description="The paper's Figures 2-4 in one run: for each chosen singular index and each factor, the captured latent with "
                        "that one singular value scaled. Finish the batch with Inject Latent and lay it out with AVI Image Grid "
                        "(columns: factors, rows: indices).",
            inputs=[
                AVISVD.Input("svd", tooltip="SVD of a captured latent (SVD Decompose; the paper scales the noisy latent: space latent)."),
                io.String.Input("indices", default="0, 1, 2, 3", tooltip="Singular indices to scale, 0 = the largest: one row each."),
                io.String.Input("factors", default="0, 0.5, 1, 1.5, 2",
                                tooltip=f"Multipliers of σ_index (1 changes nothing), each from {-FACTOR_LIMIT:g} to {FACTOR_LIMIT:g}: "
                                        "one column each."),
                io.Int.Input("channel", default=-1, min=-1, max=63, tooltip="Latent channel to change; -1 changes every channel."),
            ],
            outputs=[
                io.Latent.Output("latents", display_name="latents", tooltip="One latent per (factor, index), factor-major, at the captured "
                                                                           "step with its capture metadata: connect to Inject Latent."),
                io.String.Output("factor_labels", display_name="labels", tooltip="Column captions for AVI Image Grid ('σ × 0.5', ...)."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, svd, indices, factors, channel) -> io.NodeOutput:
        svd = require_svd(svd, "svd")
        n, channels = svd.svd.n, svd.shape[1]
        index_list = parse_numbers("indices", indices, True, "0, 1, 2", low=0, high=n - 1, why=f" (N = {n} singular values)")
        factor_list = parse_numbers("factors", factors, False, "0, 0.5, 1.5", low=-FACTOR_LIMIT, high=FACTOR_LIMIT)
        channel = check_channel(channel, channels)
        count = len(index_list) * len(factor_list) * svd.shape[0]
        if count > MAX_LATENTS:
            raise ValueError(f"{len(index_list)} indices × {len(factor_list)} factors × batch {svd.shape[0]} is {count} latents, "
                             f"over {MAX_LATENTS}; sweep fewer")
        raw = svd.to_raw(sweep(svd.svd, index_list, factor_list, channel))
        show_text(cls.hidden.unique_id, f"rows: σ_{', σ_'.join(map(str, index_list))}; columns: × {', × '.join(f'{f:g}' for f in factor_list)}\n"
                                        + decode_estimate(count, *svd.shape[-2:], free_cpu_memory()))
        labels = ", ".join(f"σ × {f:g}" for f in factor_list)
        return io.NodeOutput(with_capture({"samples": raw}, raw, svd.info, keep_x0=False), labels)
