"""Attribute vectors of Algorithm 1: Û, V̂ (lines 6-9) and their reversals Ũ, Ṽ (lines 11-12)."""
import torch

from .checks import check_choice, check_k, check_rho
from .svd import LatentSVD

Z_VECTOR_MODES = ("tail", "head", "aligned")


def z_block(z: LatentSVD, k: int, z_vectors: str = "tail") -> tuple[torch.Tensor, torch.Tensor]:
    """The N-k reversed columns of Uz and rows of Vz that enter Û, V̂ (Algorithm 1 lines 6-7).

    "tail": U'z = Uz[:, ::-1] and its first N-k columns, as Algorithm 1 writes it (the weakest
    N-k vectors of z, weakest first). "head": the strongest N-k vectors of z, reversed, as the
    prose of section 3.2.1 can be read. "aligned": z's own vectors k..N-1 in their places, so
    that ρ moves each of x's pairs from k on toward z's (the pack's default on x0 predictions).
    """
    n = z.n
    if z_vectors == "aligned":
        return z.U[..., k:], z.V[..., k:, :]
    if z_vectors == "tail":
        return z.U.flip(-1)[..., : n - k], z.V.flip(-2)[..., : n - k, :]
    return z.U[..., : n - k].flip(-1), z.V[..., : n - k, :].flip(-2)


def blend(x: LatentSVD, z: LatentSVD, k: int, rho: float, z_vectors: str = "tail") -> tuple[torch.Tensor, torch.Tensor]:
    """Û = [Ux[:, :k], (1-ρ)Ux[:, k:] + ρU'z[:, :N-k]] and V̂ row-wise (Algorithm 1 lines 8-9), unchecked."""
    uz, vz = z_block(z, k, z_vectors)
    U_hat = torch.cat([x.U[..., :k], (1.0 - rho) * x.U[..., k:] + rho * uz], dim=-1)
    V_hat = torch.cat([x.V[..., :k, :], (1.0 - rho) * x.V[..., k:, :] + rho * vz], dim=-2)
    return U_hat, V_hat


def check_pair(x: LatentSVD, z: LatentSVD) -> None:
    """Decompositions of latents of the same shape."""
    for name, s in (("x", x), ("z", z)):
        if not isinstance(s, LatentSVD):
            raise ValueError(f"{name} must be a LatentSVD (from decompose); got {type(s).__name__}")
    if x.U.shape != z.U.shape or x.V.shape != z.V.shape:
        raise ValueError(
            f"x and z must come from latents of the same shape; got U {tuple(x.U.shape)} / V {tuple(x.V.shape)} "
            f"for x and U {tuple(z.U.shape)} / V {tuple(z.V.shape)} for z"
        )


def attribute_vectors(
    x: LatentSVD, z: LatentSVD, k: int, rho: float = 1.0, z_vectors: str = "tail"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Û [..., H, N] and V̂ [..., N, W] of Algorithm 1 lines 6-9, for any 1 <= k < N and 0 <= ρ <= RHO_MAX (ρ > 1 extrapolates)."""
    check_pair(x, z)
    check_k(k, x.n)
    rho = check_rho(rho)
    check_choice("z_vectors", z_vectors, Z_VECTOR_MODES)
    return blend(x, z, k, rho, z_vectors)


def reverse_order(U_hat: torch.Tensor, V_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ũ = Û[:, ::-1], Ṽ = V̂[::-1, :] (Algorithm 1 lines 11-12)."""
    return U_hat.flip(-1), V_hat.flip(-2)


def fidelity_distances(x: LatentSVD, z: LatentSVD, k: int, rho: float = 1.0, z_vectors: str = "tail", ord: str = "fro"):
    """(‖Û - Ux‖, ‖Û - Uz‖) per matrix, the two sides of Theorem 3.1; ord is "fro" or 2 (spectral)."""
    U_hat, _ = attribute_vectors(x, z, k, rho, z_vectors)
    if ord not in ("fro", 2):
        raise ValueError(f"ord must be 'fro' or 2; got {ord!r}")
    dist = lambda a, b: torch.linalg.matrix_norm((a - b).float(), ord=ord)  # noqa: E731
    return dist(U_hat, x.U), dist(U_hat, z.U)
