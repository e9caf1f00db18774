"""Singular Value Sweep: one captured latent with each of several singular values scaled by each of several factors (Figures 2-4)."""
import torch
from comfy_api.v0_0_2 import io

from ..avi_core import scale_singular_value
from ..avi_core.svd import FACTOR_LIMIT
from .latent_meta import with_capture
from .schema import schema
from .types import AVISVD, require_svd
from .ui import CATEGORY, show_text
from .widgets import AVINode, parse_numbers


MAX_LATENTS = 1024


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
        if not -1 <= channel < channels:
            raise ValueError(f"channel must be -1 (every channel) or 0 to {channels - 1} for this {channels}-channel latent; got {channel}")
        count = len(index_list) * len(factor_list) * svd.shape[0]
        if count > MAX_LATENTS:
            raise ValueError(f"{len(index_list)} indices × {len(factor_list)} factors × batch {svd.shape[0]} is {count} latents, "
                             f"over {MAX_LATENTS}; sweep fewer")
        raw = svd.to_raw(sweep(svd.svd, index_list, factor_list, None if channel < 0 else channel))
        show_text(cls.hidden.unique_id, f"rows: σ_{', σ_'.join(map(str, index_list))}; columns: × {', × '.join(f'{f:g}' for f in factor_list)}")
        labels = ", ".join(f"σ × {f:g}" for f in factor_list)
        return io.NodeOutput(with_capture({"samples": raw}, raw, svd.info, keep_x0=False), labels)
