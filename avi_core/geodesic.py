"""Grassmann geodesic distance between singular subspaces of latents (section 4.3)."""
import torch

from .checks import check_choice, check_latent, check_positive_int, check_matrices, check_same_shape


def principal_angles(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Principal angles θ [..., p], ascending, between the spans of A, B [..., n, p] (Björck-Golub).

    The bases are re-orthonormalised in float64 (QR keeps their span): float32 singular vectors are
    orthonormal only to ~1e-7, which would otherwise show as angles of that size between a subspace
    and itself. Cosines from svdvals(AᵀB) and sines from svdvals(B - A AᵀB), combined with atan2:
    accurate for small angles too, where arccos alone loses about half the digits.
    """
    check_matrices("A", A, "[..., n, p]")
    check_matrices("B", B, "[..., n, p]")
    check_same_shape("A", A, "B", B)
    if A.shape[-1] > A.shape[-2]:
        raise ValueError(f"subspace bases must be [..., n, p] with p <= n; got {tuple(A.shape)}")
    A, B = torch.linalg.qr(A.double()).Q, torch.linalg.qr(B.double()).Q
    cross = A.transpose(-1, -2) @ B
    cos = torch.linalg.svdvals(cross).clamp(max=1.0)
    sin = torch.linalg.svdvals(B - A @ cross).clamp(max=1.0).flip(-1)
    return torch.atan2(sin, cos)


def grassmann_distance(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """d(A, B) = sqrt(Σ θ_k²) over the principal angles (section 4.3)."""
    return principal_angles(A, B).square().sum(-1).sqrt()


def subspace_distance(a: torch.Tensor, b: torch.Tensor, p: int = 4, side: str = "left") -> torch.Tensor:
    """Geodesic distance [B, C] between the top-p singular subspaces of two latents [B, C, H, W], channel by channel.

    side "left" compares spans of the first p columns of U, "right" of the first p rows of V.
    """
    check_latent("a", a)
    check_latent("b", b)
    check_same_shape("a", a, "b", b)
    check_choice("side", side, ("left", "right"))
    n = min(a.shape[-2:])
    check_positive_int("p", p)
    if p > n:
        raise ValueError(f"p must satisfy 1 <= p <= N = {n}; got p = {p}")
    Ua, _, Va = torch.linalg.svd(a.double(), full_matrices=False)
    Ub, _, Vb = torch.linalg.svd(b.double(), full_matrices=False)
    if side == "left":
        return grassmann_distance(Ua[..., :p], Ub[..., :p])
    return grassmann_distance(Va[..., :p, :].transpose(-1, -2), Vb[..., :p, :].transpose(-1, -2))
