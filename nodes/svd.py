"""SVD Decompose: LATENT → AVI_SVD (VP latent, U/S/V per channel) and a plot of the spectra."""
import torch
from comfy_api.v0_0_2 import io

from ..avi_core.checks import check_latent
from ..avi_core.conventions import SPACES
from ..avi_core.defaults import PACK
from ..avi_core.svd import decompose_float32
from .latent_meta import CAPTURE_KEY, USE_CAPTURE, CaptureInfo, checksum, raw_to_model, raw_to_vp, read_capture
from .model_info import latent_affine, model_family, model_kind, timestep_of
from .schema import schema
from .types import AVISVD, CapturedSVD
from .ui import CATEGORY, figure_to_image, new_figure
from .widgets import AVINode


def explicit_capture(latent: dict, model, sigma: float) -> CaptureInfo:
    """A capture record for a LATENT taken elsewhere (e.g. KSamplerAdvanced), from its σ and the model."""
    if model is None:
        raise ValueError(f"this LATENT has no AVI capture metadata. {USE_CAPTURE}, or connect the model and give its σ explicitly.")
    samples = latent["samples"]
    scale, shift, fmt = latent_affine(model, samples.shape[1])
    timestep = float(timestep_of(model)(torch.tensor([sigma]))[0])
    return CaptureInfo(sigma, -1, 0, timestep, None, "", "", 0, 0.0, model_kind(model), fmt, scale, shift, (), None,
                       checksum(samples), model_family=model_family(model))


def resolve_capture(latent, model, sigma: float) -> CaptureInfo:
    """The LATENT's own capture record, or one made from an explicit σ; never both."""
    if sigma < 0:
        if isinstance(latent, dict) and CAPTURE_KEY not in latent:
            raise ValueError(f"this LATENT has no AVI capture metadata (σ, step, schedule). {USE_CAPTURE}, "
                             "or connect the model and give its σ explicitly.")
        return read_capture(latent, "latent")
    if isinstance(latent, dict) and CAPTURE_KEY in latent:
        raise ValueError("this LATENT carries the σ of its capture; leave sigma at -1")
    return explicit_capture(latent, model, sigma)


def decomposed_matrix(raw: torch.Tensor, info: CaptureInfo, space: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(matrix to decompose, model-space latent or None): the VP latent, or the capture's x0 prediction and the latent."""
    if space == "latent":
        return raw_to_vp(raw, info), None
    if info.x0 is None:
        raise ValueError("space 'x0' needs the model's x0 prediction, which Capture Latent at Step records (and AVI Integrate, "
                         "for edits in space x0); capture the latent with it, or set space to 'latent'")
    return info.x0.float().cpu(), raw_to_model(raw, info)


def spectrum_plot(S: torch.Tensor, title: str):
    """Per-channel singular values (log scale) of every sample in the batch."""
    fig = new_figure()
    ax = fig.add_subplot()
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for c in range(S.shape[1]):
        for b in range(S.shape[0]):
            ax.plot(range(1, S.shape[2] + 1), S[b, c].numpy(), color=colors[c % len(colors)],
                        alpha=1.0 if b == 0 else 0.35, lw=1.5 if b == 0 else 0.8, label=f"channel {c}" if b == 0 and c < 8 else None)
    if S.max() > 0:  # an all-zero latent (e.g. an empty one) has no log scale
        ax.set_yscale("log")
    ax.set_xlabel("index i (descending)")
    ax.set_ylabel("singular value σ_i")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return figure_to_image(fig)


class SVDDecompose(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVISVDDecompose",
            display_name="SVD Decompose",
            category=CATEGORY,
            description=(
                "Channel-wise SVD, x_c = U_c diag(S_c) V_c, of a captured latent's x0 prediction (the default: the model's clean "
                "estimate at that step, where an edit survives the remaining steps) or of the noisy latent itself normalised to "
                "unit variance (VP), as the paper does. Feeds Train AVI Φ and AVI Integrate; the plot shows the spectra."
            ),
            inputs=[
                io.Latent.Input("latent", tooltip="A LATENT from Capture Latent at Step (or any LATENT with an explicit σ and model)."),
                io.Model.Input("model", optional=True, tooltip="Only for a LATENT without capture metadata: the model that made it."),
                io.Float.Input("sigma", default=-1.0, min=-1.0, max=10000.0, step=0.001, optional=True,
                               tooltip="Only for a LATENT without capture metadata: its σ. -1 reads σ from the capture."),
                io.Combo.Input("space", options=list(SPACES), default=PACK["space"], optional=True,
                               tooltip="What is decomposed: 'x0' = the model's clean prediction at the captured step (the edit is "
                                       "carried back with the step's own noise; measured to edit), 'latent' = the noisy latent, VP-"
                                       "normalised (the paper's literal reading). x, z and Φ must share it."),
            ],
            outputs=[
                AVISVD.Output("svd", display_name="svd", tooltip="VP latent, U, S, V per channel and the capture metadata."),
                io.Image.Output("spectrum", display_name="spectrum", tooltip="Plot of the per-channel singular values (log scale)."),
            ],
        )

    @classmethod
    def execute(cls, latent, model=None, sigma=-1.0, space=PACK["space"]) -> io.NodeOutput:
        info = resolve_capture(latent, model, sigma)
        matrix, x_model = decomposed_matrix(latent["samples"].float().cpu(), info, space)
        check_latent("latent", matrix)
        result = CapturedSVD(matrix, decompose_float32(matrix), info, space, x_model)
        where = info.describe() if info.step >= 0 else f"σ = {info.sigma:.4g}"
        what = "x0 prediction" if space == "x0" else "VP latent"
        return io.NodeOutput(result, spectrum_plot(result.svd.S, f"{tuple(matrix.shape)} {what} at {where}"))
