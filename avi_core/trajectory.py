"""The paper's findings along a sampler trajectory (section 4): subspace distances between steps and the mobility of singular vectors."""
import torch

from .checks import check_choice, check_positive_int, check_tensor
from .geodesic import grassmann_distance


def check_trajectory(latents) -> None:
    """Latents along a trajectory [K, B, C, H, W]: K >= 2 steps, finite, H, W >= 2."""
    check_tensor("trajectory", latents, 5, "[K steps, B, C, H, W]")
    if latents.shape[0] < 2 or min(latents.shape[-2:]) < 2:
        raise ValueError(f"a trajectory needs at least 2 steps of at least 2x2 latents [K, B, C, H, W]; got {tuple(latents.shape)}")


def top_vectors(latents: torch.Tensor, p: int, side: str) -> torch.Tensor:
    """The first p left singular vectors [..., H, p] (or right ones [..., W, p]) of each channel, in float64."""
    U, _, V = torch.linalg.svd(latents.double(), full_matrices=False)
    return U[..., :p] if side == "left" else V[..., :p, :].transpose(-1, -2)


def consecutive_distances(latents: torch.Tensor, p: int = 4, side: str = "left") -> torch.Tensor:
    """d(k, k+1) [K−1, B, C]: geodesic distance between the top-p singular subspaces of consecutive steps (section 4.3, Figure 5)."""
    check_trajectory(latents)
    check_choice("side", side, ("left", "right"))
    n = min(latents.shape[-2:])
    check_positive_int("p", p)
    if p > n:
        raise ValueError(f"p must satisfy 1 <= p <= N = {n}; got p = {p}")
    vectors = top_vectors(latents, p, side)
    return grassmann_distance(vectors[:-1], vectors[1:])


def vector_overlap(a: torch.Tensor, b: torch.Tensor, side: str = "left") -> torch.Tensor:
    """|⟨u_i(a), u_j(b)⟩| [B, C, N, N] between every singular vector of latents a and b [B, C, H, W] (1 = the same vector)."""
    check_tensor("a", a, 4, "[B, C, H, W]")
    check_tensor("b", b, 4, "[B, C, H, W]")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    check_choice("side", side, ("left", "right"))
    n = min(a.shape[-2:])
    va, vb = top_vectors(a, n, side), top_vectors(b, n, side)
    return (va.transpose(-1, -2) @ vb).abs()


def mobility(a: torch.Tensor, b: torch.Tensor, side: str = "left") -> tuple[torch.Tensor, torch.Tensor]:
    """(overlap [B, C, N, N], rank [B, C, N]): for each singular vector i of a, the rank j of its best match in b (mobility property)."""
    overlap = vector_overlap(a, b, side)
    return overlap, overlap.argmax(-1)
