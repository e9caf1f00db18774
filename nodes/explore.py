"""Exploration nodes for the paper's findings: scale one singular value (Figures 2-4), subspace distance (Figure 5)."""
import torch
from comfy_api.v0_0_2 import io

from ..avi_core import grassmann_distance, scale_singular_value
from ..avi_core.checks import check_channel
from ..avi_core.svd import FACTOR_LIMIT
from .latent_meta import with_capture
from .schema import schema
from .types import AVISVD, require_svd
from .ui import CATEGORY, figure_to_image, new_figure
from .widgets import AVINode


class ScaleSingularValue(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVIScaleSingularValue",
            display_name="Scale Singular Value",
            category=CATEGORY,
            description="Multiplies one singular value σ_i of a captured latent (one channel or all) and recomposes it; "
                        "finish it with Inject Latent to see which attribute that singular vector carries (paper, Figures 2-4).",
            inputs=[
                AVISVD.Input("svd", tooltip="SVD of a captured latent."),
                io.Int.Input("index", default=0, min=0, max=4095, tooltip="Which singular value, 0 = the largest."),
                io.Float.Input("factor", default=0.8, min=-FACTOR_LIMIT, max=FACTOR_LIMIT, step=0.01,
                               tooltip="Multiplier for σ_index (1 changes nothing)."),
                io.Int.Input("channel", default=-1, min=-1, max=63, tooltip="Latent channel to change; -1 changes every channel."),
            ],
            outputs=[io.Latent.Output("latent", display_name="latent", tooltip="The modified latent at the captured step, for Inject Latent.")],
        )

    @classmethod
    def execute(cls, svd, index, factor, channel) -> io.NodeOutput:
        svd = require_svd(svd, "svd")
        channels = svd.shape[1]
        vp = scale_singular_value(svd.svd, index, factor, check_channel(channel, channels))
        raw = svd.to_raw(vp)
        return io.NodeOutput(with_capture({"samples": raw}, raw, svd.info, keep_x0=False))


def distance_plot(d: torch.Tensor, p: int, side: str):
    """Bars of the geodesic distance per channel (mean over the batch, with its range)."""
    fig = new_figure(5.0, 3.2)
    ax = fig.add_subplot()
    mean, low, high = d.mean(0), d.min(0).values, d.max(0).values
    channels = range(d.shape[1])
    ax.bar(channels, mean.numpy(), yerr=[(mean - low).numpy(), (high - mean).numpy()], color="tab:blue", alpha=0.8, capsize=3)
    ax.set_xticks(list(channels))
    ax.set_xlabel("latent channel")
    ax.set_ylabel("geodesic distance")
    ax.set_title(f"top-{p} {side} singular subspaces; mean {d.mean().item():.4g}", fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    return figure_to_image(fig)


class SubspaceDistance(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVISubspaceDistance",
            display_name="Subspace Distance",
            category=CATEGORY,
            description="Grassmann geodesic distance sqrt(Σθ²) between the top-p singular subspaces of two latents, per channel "
                        "(paper section 4.3, p = 4). Compare captures at different steps to retrace Figure 5.",
            inputs=[
                AVISVD.Input("a", tooltip="SVD of the first latent."),
                AVISVD.Input("b", tooltip="SVD of the second latent (same shape)."),
                io.Int.Input("p", default=4, min=1, max=4096, tooltip="Dimension of the subspaces (paper: 4)."),
                io.Combo.Input("side", options=["left", "right"], default="left", tooltip="Left (U columns) or right (V rows) singular vectors."),
            ],
            outputs=[
                io.Float.Output("distance", display_name="distance", tooltip="Mean distance over batch and channels (0 = same subspaces, "
                                                                              "sqrt(p)·π/2 = orthogonal)."),
                io.Image.Output("plot", display_name="plot", tooltip="Distance per channel."),
            ],
        )

    @classmethod
    def execute(cls, a, b, p, side) -> io.NodeOutput:
        a, b = require_svd(a, "a"), require_svd(b, "b")
        if a.shape != b.shape:
            raise ValueError(f"a and b must have the same latent shape; got {a.shape} and {b.shape}")
        n = a.svd.n
        if p > n:
            raise ValueError(f"p must satisfy 1 <= p <= N = {n}; got p = {p}")
        if side == "left":
            d = grassmann_distance(a.svd.U[..., :p], b.svd.U[..., :p])
        else:
            d = grassmann_distance(a.svd.V[..., :p, :].transpose(-1, -2), b.svd.V[..., :p, :].transpose(-1, -2))
        d = d.float()
        return io.NodeOutput(d.mean().item(), distance_plot(d, p, side))
