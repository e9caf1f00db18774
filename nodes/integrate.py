"""AVI Integrate (ρ): apply a learned attribute to a captured pair, for one ρ or a sweep of them."""
from dataclasses import replace

from comfy_api.v0_0_2 import io

from ..avi_core import S_INF_MODES, Z_VECTOR_MODES
from ..avi_core.checks import RHO_MAX
from ..avi_core.defaults import PACK
from ..avi_core.inference import integrate_svd
from .latent_meta import RHO_KEY, with_capture
from .pairs import check_same_source
from .schema import schema
from .types import AVIPhi, AVISVD, require_svd
from .ui import CATEGORY, show_text
from .widgets import AVINode, parse_numbers

AS_TRAINED = "as trained"


def parse_rho_list(text: str) -> list[float]:
    """ρ values from text such as "0, 0.25, 0.5" (commas, semicolons or spaces); empty text gives []."""
    return parse_numbers("rho_list", text, example=f"0, 0.5, 1 (each in [0, {RHO_MAX:g}])", allow_empty=True)


def require_phi(phi):
    """An AVI_PHI input."""
    from ..avi_core import AttributePhi

    if not isinstance(phi, AttributePhi):
        raise ValueError(f"phi must be an AVI_PHI from Train AVI Φ or Load AVI Φ; got {type(phi).__name__}")
    return phi


class AVIIntegrate(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVIIntegrate",
            display_name="AVI Integrate (ρ)",
            category=CATEGORY,
            description=(
                "Attribute Vector Integration (Algorithm 1): builds Û, V̂ from x's and z's singular vectors with strength ρ and "
                "recomposes y_pred = Û·diag(S_inf)·V̂ (by default Sx + ρ(S − Sx): x's spectrum moved toward Φ's). SVDs of x0 predictions "
                "are carried back to x's step with its own noise. Feed y_pred to Inject Latent to finish the image."
            ),
            inputs=[
                AVIPhi.Input("phi", optional=True,
                             tooltip="The learned attribute (Train AVI Φ or Load AVI Φ), trained for this latent size. Optional with "
                                     "S_inf 'Sx→Sz' or 'Sx', which read no Φ (then k = 1 and z's vectors 'aligned', the pack's)."),
                AVISVD.Input("x", tooltip="SVD of the original-prompt latent at Tx: the image to edit."),
                AVISVD.Input("z", tooltip="SVD of the target-prompt latent at Tz, same seed as x."),
                io.Float.Input("rho", default=PACK["rho"], min=0.0, max=RHO_MAX, step=0.01, display_mode=io.NumberDisplay.slider,
                               tooltip="Edit strength ρ: 0 keeps x, 1 swaps x's last N−k vectors for z's (and with S_inf 'Sx→S' "
                                       "moves the spectrum to Φ's); above 1 extrapolates past z. Paper: 0 to 1."),
                io.String.Input("rho_list", default="", optional=True,
                                tooltip="Optional list of ρ values, e.g. '0, 0.25, 0.5, 0.75, 1': returns one latent per value "
                                        "(a strength sweep in one run). Empty uses the rho slider."),
                io.Combo.Input("s_inf", options=list(S_INF_MODES), default=PACK["s_inf"],
                               tooltip="Singular values for y_pred: S (Algorithm 1 line 10, the paper), S+Δs, Sx (x's own; with ρ = 0 "
                                       "this returns x), Sx→S = Sx + ρ(S − Sx), the spectrum moved with ρ towards Φ's (default; ρ = 0 "
                                       "returns x), or Sx→Sz = Sx + ρ(Sz − Sx), towards z's own spectrum: no Φ needed."),
                io.Combo.Input("z_vectors", options=[AS_TRAINED, *Z_VECTOR_MODES], default=AS_TRAINED,
                               tooltip="Which of z's singular vectors enter Û, V̂; 'as trained' uses Φ's own setting (without Φ, the "
                                       "pack's 'aligned')."),
            ],
            outputs=[
                io.Latent.Output("y_pred", display_name="y_pred",
                                 tooltip="The edited latent at x's captured step (a batch of len(ρ list) × batch size for a sweep, ρ-major), "
                                         "with x's capture metadata and, for x0 edits, the edited x0: SVD Decompose it and Integrate "
                                         "again to add a second attribute."),
                io.String.Output("rho_labels", display_name="rho_labels",
                                 tooltip="One label per ρ ('ρ = 0.5, ...'), for AVI Image Grid's column captions."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, x, z, rho, phi=None, rho_list="", s_inf="S", z_vectors=AS_TRAINED) -> io.NodeOutput:
        x, z = require_svd(x, "x"), require_svd(z, "z")
        check_same_source(x, z)
        if phi is not None:
            phi = require_phi(phi)
            phi.check_fits(x.shape, x.info.model_kind, x.info.latent_format, x.info.model_family)
            phi.check_timesteps(x.info.timestep, z.info.timestep)
            phi.check_space(x.space)
        rhos = parse_rho_list(rho_list) or [rho]
        trained_k, trained_z = (phi.info.k, phi.info.z_vectors) if phi is not None else (PACK["k"], PACK["z_vectors"])
        mode = trained_z if z_vectors == AS_TRAINED else z_vectors
        y = integrate_svd(None if phi is None else phi.phi, x.latent, x.svd, z.svd, rhos, trained_k, s_inf, mode)
        raw = x.to_raw(y.flatten(0, 1))
        show_text(cls.hidden.unique_id, f"ρ = {', '.join(f'{r:g}' for r in rhos)}; {raw.shape[0]} latent(s) at {x.info.describe()}")
        labels = ", ".join(f"ρ = {r:g}" for r in rhos)
        # An edit of x0 predictions records the edited x0, so a second AVI Integrate can stack another attribute on it.
        info = replace(x.info, x0=y.flatten(0, 1).float().cpu() if x.space == "x0" else None)
        out = with_capture({"samples": raw}, raw, info)
        out[RHO_KEY] = [float(r) for r in rhos]  # Inject Latent's auto strength picks among them
        return io.NodeOutput(out, labels)
