"""Inference (docs/method.md, Inference): y_pred = Û diag(S_inf) V̂ with Φ run on x, for one ρ or several at once."""
from typing import Optional

import torch

from .attribute_vectors import Z_VECTOR_MODES, blend, check_pair
from .checks import check_choice, check_k, check_latent, check_rhos, check_same_shape
from .phi import SingularValuePredictor, predict
from .svd import LatentSVD, compose, decompose_float32

S_INF_MODES = ("S", "S+Δs", "Sx", "Sx→S", "Sx→Sz")
WITHOUT_PHI = ("Sx", "Sx→Sz")  # the modes that read no Φ: nothing needs training


def singular_values_for(mode: str, S: torch.Tensor, delta_s: torch.Tensor, Sx: torch.Tensor, rho: float = 1.0,
                        Sz: torch.Tensor = None) -> torch.Tensor:
    """S_inf: Φ's S (Algorithm 1 line 10), S + Δs, the original Sx, Sx + ρ(S − Sx) (the spectrum moved with ρ towards
    Φ's), or Sx + ρ(Sz − Sx) (towards z's own spectrum, no Φ)."""
    return {"S": lambda: S, "S+Δs": lambda: S + delta_s, "Sx": lambda: Sx, "Sx→S": lambda: Sx + rho * (S - Sx),
            "Sx→Sz": lambda: Sx + rho * (Sz - Sx)}[mode]()


def require_phi_for(mode: str, phi) -> None:
    """A Φ for the S_inf modes that read one."""
    if phi is None and mode not in WITHOUT_PHI:
        raise ValueError(f"S_inf {mode!r} uses Φ's predicted spectrum: give a Φ, or choose one of "
                         f"{', '.join(repr(m) for m in WITHOUT_PHI)}, which need none")


def integrate_svd(
    phi: Optional[SingularValuePredictor],
    x: torch.Tensor,
    svd_x: LatentSVD,
    svd_z: LatentSVD,
    rhos: list[float],
    k: int,
    s_inf: str = "S",
    z_vectors: str = "tail",
) -> torch.Tensor:
    """y_pred [R, B, C, H, W] in float32 from precomputed decompositions (svd_x of the VP latent x); phi may be None for
    the S_inf modes in WITHOUT_PHI."""
    check_pair(svd_x, svd_z)
    check_k(k, svd_x.n)
    check_choice("S_inf", s_inf, S_INF_MODES)
    check_choice("z_vectors", z_vectors, Z_VECTOR_MODES)
    require_phi_for(s_inf, phi)
    rhos = check_rhos(rhos)
    device = svd_x.U.device
    S = delta_s = None
    if phi is not None:
        with torch.no_grad():
            S, delta_s = predict(phi, x)
            S, delta_s = S.to(device).float(), delta_s.to(device).float()
    outs = []
    for rho in rhos:
        U_hat, V_hat = blend(svd_x, svd_z, k, rho, z_vectors)
        outs.append(compose(U_hat, singular_values_for(s_inf, S, delta_s, svd_x.S.float(), rho, svd_z.S.float()), V_hat))
    return torch.stack(outs)


def integrate(
    phi: Optional[SingularValuePredictor],
    x: torch.Tensor,
    z: torch.Tensor,
    rho=1.0,
    k: Optional[int] = None,
    s_inf: str = "S",
    z_vectors: str = "tail",
) -> torch.Tensor:
    """AVI edit of VP latents x, z [B, C, H, W]: y_pred [B, C, H, W] for one ρ, [R, B, C, H, W] for a list of R values.

    Computed in float32, returned in x's dtype and device. k = None means N/2. phi may be None for S_inf "Sx" or
    "Sx→Sz" (z's own spectrum: nothing trained).
    """
    check_latent("x", x)
    check_latent("z", z)
    check_same_shape("x", x, "z", z)
    rhos = check_rhos(rho)
    n = min(x.shape[-2:])
    k = check_k(n // 2 if k is None else k, n)
    y = integrate_svd(phi, x, decompose_float32(x), decompose_float32(z), rhos, k, s_inf, z_vectors)
    y = y.to(dtype=x.dtype, device=x.device)
    return y if isinstance(rho, (list, tuple, torch.Tensor)) else y[0]
