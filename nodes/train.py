"""Train AVI Φ: learn an attribute from an (original, target) pair of captured latents."""
import comfy.model_management
import comfy.utils
from comfy_api.v0_0_2 import io

from ..avi_core import PHI_PRESETS, Z_VECTOR_MODES, AttributePhi, CapturedPairs, LossWeights, PhiInfo, TrainSettings, train_phi
from ..avi_core.defaults import PACK
from ..avi_core.phi_file import check_phi_size
from .pairs import check_one_trajectory, check_same_source
from .schema import schema
from .types import AVIPhi, AVISVD, CapturedSVD, require_svd
from .ui import CATEGORY, figure_to_image, new_figure, show_text
from .widgets import AVINode

LOSS_LABELS = {"l1": "L1 ‖ŷ−z‖²", "l2": "L2 ‖ỹ−x‖²", "l3": "L3 ‖S−Sz‖²", "l4": "L4 ‖S+Δs−Sx‖²", "total": "total (weighted)"}


def check_training_pair(x: CapturedSVD, z: CapturedSVD, samples_per_pair: int) -> None:
    """x and z come from one model, size, seed and sampler run, z later than x, with x0 predictions unless no resampling."""
    check_same_source(x, z)
    check_one_trajectory(x, z)
    if samples_per_pair != 0 and (x.info.x0 is None or z.info.x0 is None):
        raise ValueError("resampling training pairs needs the x0 predictions that Capture Latent at Step records; "
                         "capture both latents with it, or set samples_per_pair to 0 to train on the captured pair only")


def training_pairs(x: CapturedSVD, z: CapturedSVD) -> CapturedPairs:
    """Φ's training pairs: VP latents resampled around their x0 predictions, or in space x0 the x0 predictions (σ = 0)."""
    if x.space == "x0":  # clean predictions: the forward process at σ = 0 draws the pair itself
        return CapturedPairs(x.latent, z.latent, x.latent, z.latent, 0.0, 0.0, x.info.model_kind)
    return CapturedPairs(x.latent, z.latent, x.info.x0 if x.info.x0 is not None else x.latent,
                         z.info.x0 if z.info.x0 is not None else z.latent, x.info.sigma, z.info.sigma, x.info.model_kind)


def loss_plot(history: list[dict], title: str):
    """The four loss terms and the weighted total per training step (log scale)."""
    fig = new_figure()
    ax = fig.add_subplot()
    steps = [h["step"] for h in history]
    for name, label in LOSS_LABELS.items():
        ax.semilogy(steps, [max(h[name], 1e-12) for h in history], label=label, lw=2.0 if name == "total" else 1.2)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return figure_to_image(fig)


def make_settings(k, hidden, epochs, samples_per_pair, batch_size, learning_rate, lambda_1, lambda_2, lambda_3, lambda_4, rho, z_vectors, seed):
    """Core TrainSettings from the widgets: k 0 means N/2, samples_per_pair -1 the paper's rule."""
    return TrainSettings(k=None if k == 0 else k, hidden=hidden, epochs=epochs,
                         samples_per_pair=None if samples_per_pair < 0 else samples_per_pair, batch_size=batch_size,
                         lr=learning_rate, weights=LossWeights(lambda_1, lambda_2, lambda_3, lambda_4), rho=rho,
                         z_vectors=z_vectors, seed=seed)


def stop_if_interrupted() -> bool:
    """ComfyUI's Stop button: raises the host's interrupt exception, which ends training at this step."""
    comfy.model_management.throw_exception_if_processing_interrupted()
    return False


class TrainAVIPhi(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVITrainPhi",
            display_name="Train AVI Φ",
            category=CATEGORY,
            description=(
                "Learns an attribute from a captured pair: Φ (an MLP) predicts the singular values S and Δs that blend x's and z's "
                "singular vectors (Algorithm 1), trained with Adam on the four AVI losses. Training settings are the paper's; k and "
                "z_vectors default to the pack's measured choice (1, aligned; the paper: 0 = N/2, tail). "
                "Deterministic for a given seed; Stop interrupts it at the next step."
            ),
            inputs=[
                AVISVD.Input("x", tooltip="SVD of the original-prompt latent at Tx (default 0.8·T)."),
                AVISVD.Input("z", tooltip="SVD of the target-prompt latent at Tz = Tx + Δτ (default 0.5·T), same seed."),
                io.Int.Input("k", default=PACK["k"], min=0, max=4096,
                             tooltip="Singular vectors kept from x (1 <= k < N); 0 means N/2, the paper's (32 at 512 px). Default 1: "
                                     "with z_vectors 'aligned' ρ then moves every pair but the strongest toward z's."),
                io.Int.Input("hidden", default=PHI_PRESETS["paper"], min=8, max=16384, step=8,
                             tooltip="Width of Φ's three hidden layers: 4096 as in the paper; 512 (compact) trains several times "
                                     "faster and ends within a few percent of the paper's loss."),
                io.Int.Input("epochs", default=5, min=1, max=1000, tooltip="Passes over the training samples (paper: 5)."),
                io.Int.Input("samples_per_pair", default=-1, min=-1, max=100000,
                             tooltip="Resampled training pairs per captured pair; -1 follows the paper (5000 for one pair, 500 each above "
                                     "five pairs); 0 trains on the captured pairs only."),
                io.Int.Input("batch_size", default=256, min=1, max=65536, tooltip="Samples per Adam step (paper: 256)."),
                io.Float.Input("learning_rate", default=0.001, min=0.000001, max=1.0, step=0.0001, round=0.000001, tooltip="Adam learning rate (paper: 1e-3)."),
                io.Float.Input("lambda_1", default=3.0, min=0.0, max=1000.0, step=0.1, tooltip="Weight of L1 = ‖ŷ − z‖² (target attributes; paper: 3)."),
                io.Float.Input("lambda_2", default=10.0, min=0.0, max=1000.0, step=0.1, tooltip="Weight of L2 = ‖ỹ − x‖² (original identity; paper: 10)."),
                io.Float.Input("lambda_3", default=10.0, min=0.0, max=1000.0, step=0.1, tooltip="Weight of L3 = ‖S − Sz‖² (paper: 10)."),
                io.Float.Input("lambda_4", default=10.0, min=0.0, max=1000.0, step=0.1, tooltip="Weight of L4 = ‖S + Δs − Sx‖² (paper: 10)."),
                io.Float.Input("rho", default=1.0, min=0.0, max=1.0, step=0.01, tooltip="ρ used while training (paper: 1)."),
                io.Combo.Input("z_vectors", options=list(Z_VECTOR_MODES), default=PACK["z_vectors"],
                               tooltip="Which of z's singular vectors enter Û, V̂: 'tail' reverses all of z's vectors and takes the first N−k "
                                       "(Algorithm 1 as printed, the paper); 'head' takes z's top N−k in reverse order (a reading of "
                                       "section 3.2.1); 'aligned' takes z's vectors k..N in their own places (default)."),
                # No "control after generate": a seed that changes on every queue would retrain Φ every time.
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip="Seed of Φ's initialisation, the resampling noise and the batch order."),
                io.String.Input("note", default="", optional=True, tooltip="Free text stored with Φ, e.g. the two prompts."),
            ],
            outputs=[
                AVIPhi.Output("phi", display_name="phi", tooltip="The learned attribute: Φ and what it was trained for."),
                io.Image.Output("loss_curves", display_name="loss_curves", tooltip="The four losses and their weighted sum per step."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, x, z, k, hidden, epochs, samples_per_pair, batch_size, learning_rate, lambda_1, lambda_2, lambda_3,
                lambda_4, rho, z_vectors, seed, note="") -> io.NodeOutput:
        x, z = require_svd(x, "x"), require_svd(z, "z")
        check_training_pair(x, z, samples_per_pair)
        check_phi_size(*x.shape[1:], hidden, source="Train AVI Φ")  # before training, not at Save
        settings = make_settings(k, hidden, epochs, samples_per_pair, batch_size, learning_rate, lambda_1, lambda_2,
                                 lambda_3, lambda_4, rho, z_vectors, seed)
        pairs = training_pairs(x, z)
        device = comfy.model_management.get_torch_device()
        pbar = comfy.utils.ProgressBar(1, node_id=cls.hidden.unique_id)
        result = train_phi(pairs, settings, progress=lambda step, total, _: pbar.update_absolute(step, total),
                           should_stop=stop_if_interrupted, device=device)
        _, c, h, w = x.shape
        training = result.settings.as_dict() | {
            "pairs": pairs.pairs, "samples": result.samples, "steps": len(result.history), "sigma_x": x.info.sigma,
            "sigma_z": z.info.sigma, "capture_x": x.info.describe(), "capture_z": z.info.describe(),
        }
        info = PhiInfo(c, h, w, result.settings.k, hidden, z_vectors, x.info.model_kind, x.info.latent_format,
                       x.info.timestep, z.info.timestep, training, result.final_losses, note or "", space=x.space,
                       model_family=x.info.model_family)
        total = result.final_losses["total"]
        show_text(cls.hidden.unique_id, f"trained {len(result.history)} steps on {result.samples} samples; final loss {total:.4g}")
        plot = loss_plot(result.history, f"Φ hidden {hidden}, k {result.settings.k}, {result.samples} samples; final total {total:.4g}")
        return io.NodeOutput(AttributePhi(result.phi.cpu().eval(), info), plot)
