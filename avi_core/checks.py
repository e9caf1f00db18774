"""Input checks shared by the public functions: each raises ValueError naming what was given and what fits."""
import math
from typing import Sequence

import torch


def describe(t) -> str:
    """Short description of a value for error messages."""
    if isinstance(t, torch.Tensor):
        return f"tensor of shape {tuple(t.shape)} ({str(t.dtype).replace('torch.', '')})"
    return f"{type(t).__name__} {t!r}"


def check_tensor(name: str, t, ndim: int, layout: str) -> None:
    """A floating tensor of the given rank, finite everywhere."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a tensor {layout}; got {describe(t)}")
    if t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions {layout}; got {describe(t)}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor {layout}; got {describe(t)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty {layout}; got {describe(t)}")
    bad = (~torch.isfinite(t)).sum().item()
    if bad:
        raise ValueError(f"{name} contains {bad} NaN/Inf value(s) out of {t.numel()} ({describe(t)}); it must be finite")


def check_channel(channel: int, channels: int, every: bool = True):
    """A channel of a C-channel latent, 0 … C − 1, or −1 for every channel where `every` allows it (returned as None)."""
    low = -1 if every else 0
    if isinstance(channel, bool) or not isinstance(channel, int) or not low <= channel < channels:
        allowed = "-1 (every channel) or 0" if every else "0"
        raise ValueError(f"channel must be {allowed} to {channels - 1} for this {channels}-channel latent; got {channel!r}")
    return None if channel < 0 else channel


def check_latent(name: str, t) -> None:
    """A latent [B, C, H, W] with H, W >= 2 and finite values."""
    check_tensor(name, t, 4, "[B, C, H, W]")
    if min(t.shape[-2:]) < 2:
        raise ValueError(f"{name} must be at least 2x2 per channel [B, C, H, W]; got {describe(t)}")


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Two tensors of identical shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")


def check_k(k, n: int) -> int:
    """1 <= k < N (Algorithm 1 keeps k columns of x and takes N-k from z)."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"k must be an integer with 1 <= k < N = {n}; got {describe(k)}")
    if not 1 <= k < n:
        raise ValueError(f"k must satisfy 1 <= k < N = {n} (N = min(H, W)); got k = {k}")
    return k


def check_unit_interval(name: str, value) -> float:
    """A finite number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number in [0, 1]; got {describe(value)}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; got {value}")
    return float(value)


RHO_MAX = 2.0  # ρ > 1 extrapolates the blend past z's vectors (and S_inf "Sx→S" past Φ's S)


def check_rho(value) -> float:
    """One edit strength ρ, a finite number in [0, RHO_MAX]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"rho must be a number in [0, {RHO_MAX:g}]; got {describe(value)}")
    if not 0.0 <= value <= RHO_MAX:
        raise ValueError(f"rho must be in [0, {RHO_MAX:g}] (above 1 extrapolates); got {value}")
    return float(value)


def check_rhos(rho) -> list[float]:
    """One ρ or a non-empty sequence of ρ, each in [0, RHO_MAX]."""
    if isinstance(rho, torch.Tensor):
        rho = rho.flatten().tolist()
    values = list(rho) if isinstance(rho, Sequence) and not isinstance(rho, str) else [rho]
    if not values:
        raise ValueError(f"rho must be a number in [0, {RHO_MAX:g}] or a non-empty list of them; got an empty list")
    return [check_rho(v) for v in values]


def check_choice(name: str, value, options: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}; got {value!r}")
    return value


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    """An integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {describe(value)}")
    return value


def check_positive_float(name: str, value, allow_zero: bool = False) -> float:
    """A finite number > 0 (or >= 0)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}; got {describe(value)}")
    return float(value)


def check_matrices(name: str, t, layout: str) -> None:
    """A finite floating tensor of rank >= 2 (a stack of matrices)."""
    rank = t.ndim if isinstance(t, torch.Tensor) and t.ndim >= 2 else 2
    check_tensor(name, t, rank, layout)
