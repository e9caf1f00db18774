"""Training data for Φ by forward-process resampling of captured pairs (docs/method.md, Training data).

From each captured pair (x at σx, z at σz, same seed) and the model's x0 predictions at those
steps, draw x_i = x0_x + σx·ε_i and z_i = x0_z + σz·ε_i with a shared ε_i (both trajectories share
their seed), VP-normalise them, and add the captured pair itself.
"""
import bisect
import math
from dataclasses import dataclass

import torch

from .checks import check_choice, check_latent, check_positive_int, check_same_shape
from .conventions import MODEL_KINDS, check_sigma, vp_forward_noise

# torch's CPU randn turns uniforms into normals 16 at a time (Box-Muller on 8 + 8), and redraws the last 16
# values of a tensor whose size is not a multiple of 16: so rows drawn in pieces that start on a multiple of
# 16 values, and end at one or at the tensor's end with at least 16 values, equal the rows drawn in one call.
RANDN_BLOCK = 16
PAPER_SAMPLES_ONE_PAIR = 5000
PAPER_SAMPLES_MANY_PAIRS = 500


def samples_per_pair(pairs: int) -> int:
    """Section 5: N = 5000 for one pair and 500 per pair above 5 pairs; 5000/P (rounded up) for 2-5 pairs."""
    check_positive_int("pairs", pairs)
    if pairs > 5:
        return PAPER_SAMPLES_MANY_PAIRS
    return math.ceil(PAPER_SAMPLES_ONE_PAIR / pairs)


@dataclass(frozen=True)
class CapturedPairs:
    """P captured pairs: VP latents x, z [P, C, H, W], model-space x0 predictions, their σ and the model kind."""

    x: torch.Tensor
    z: torch.Tensor
    x0_x: torch.Tensor
    x0_z: torch.Tensor
    sigma_x: float
    sigma_z: float
    kind: str = "eps"

    def __post_init__(self):
        check_latent("x", self.x)
        for name in ("z", "x0_x", "x0_z"):
            check_latent(name, getattr(self, name))
            check_same_shape(name, getattr(self, name), "x", self.x)
        check_choice("model kind", self.kind, MODEL_KINDS)
        object.__setattr__(self, "sigma_x", check_sigma(self.sigma_x))
        object.__setattr__(self, "sigma_z", check_sigma(self.sigma_z))

    @property
    def pairs(self) -> int:
        """Number of captured pairs P."""
        return self.x.shape[0]


def resample_pairs(pairs: CapturedPairs, n_per_pair: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, z) VP training latents [P·(n+1), C, H, W] in float32: n resampled pairs per capture plus the capture."""
    check_positive_int("samples per pair", n_per_pair, minimum=0)
    p, c, h, w = pairs.x.shape
    eps = torch.randn((n_per_pair, p, c, h, w), generator=generator, dtype=torch.float32)
    eps = eps.to(pairs.x.device)

    def draw(x0, sigma):
        return vp_forward_noise(x0.float().unsqueeze(0), sigma, eps, pairs.kind).flatten(0, 1)

    if n_per_pair == 0:
        return pairs.x.float(), pairs.z.float()
    x = torch.cat([pairs.x.float(), draw(pairs.x0_x, pairs.sigma_x)])
    z = torch.cat([pairs.z.float(), draw(pairs.x0_z, pairs.sigma_z)])
    return x, z


@dataclass(frozen=True)
class ReplayableNoise:
    """ε [rows, *shape] as one torch.randn call draws it, held as the generator's state at each piece: any row again."""

    rows: int
    shape: tuple
    starts: tuple  # first row of each piece
    states: tuple  # the generator state before each piece

    def replay(self, rows: torch.Tensor) -> torch.Tensor:
        """ε at the given row indices (CPU, float32), bit for bit as the single draw made them."""
        rows = rows.cpu().long()
        out = torch.empty((rows.numel(), *self.shape), dtype=torch.float32)
        pieces = torch.tensor([bisect.bisect_right(self.starts, int(r)) - 1 for r in rows], dtype=torch.long)
        generator = torch.Generator()
        for piece in torch.unique(pieces).tolist():
            start = self.starts[piece]
            stop = self.starts[piece + 1] if piece + 1 < len(self.starts) else self.rows
            generator.set_state(self.states[piece])
            drawn = torch.randn((stop - start, *self.shape), generator=generator, dtype=torch.float32)
            mine = pieces == piece
            out[mine] = drawn[rows[mine] - start]
        return out


def noise_pieces(rows: int, numel: int) -> list:
    """First rows of the smallest pieces of a [rows, numel] draw that randn draws alike alone (see RANDN_BLOCK)."""
    group = RANDN_BLOCK // math.gcd(numel, RANDN_BLOCK)  # rows per piece: a multiple of 16 values
    starts = list(range(0, rows, group))
    if len(starts) > 1 and (rows - starts[-1]) * numel < RANDN_BLOCK:
        starts.pop()  # a tail under 16 values is drawn differently: it goes with the piece before it
    return starts


def record_noise(rows: int, shape: tuple, generator: torch.Generator) -> ReplayableNoise:
    """Draw ε [rows, *shape] piece by piece, keeping only the generator states; the generator ends as after one call."""
    starts = noise_pieces(rows, math.prod(shape))
    states, buffer = [], torch.empty(0)
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else rows
        states.append(generator.get_state())
        # Into one reused buffer: a fresh tensor per piece, freed between the small states, fragments the heap
        # (measured: 1.25 GB of resident memory for 5000 pieces of 4×128×128 without it, 28 MB with it).
        torch.randn((stop - start, *shape), generator=generator, dtype=torch.float32, out=buffer)
    return ReplayableNoise(rows, tuple(shape), tuple(starts), tuple(states))


def record_resampling(pairs: CapturedPairs, n_per_pair: int, generator: torch.Generator) -> ReplayableNoise:
    """The noise resample_pairs would draw for these pairs, as replayable states (row j·P + q is sample j of pair q)."""
    check_positive_int("samples per pair", n_per_pair, minimum=0)
    return record_noise(n_per_pair * pairs.pairs, tuple(pairs.x.shape[1:]), generator)


def resampled_rows(pairs: CapturedPairs, noise: ReplayableNoise, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of resample_pairs' (x, z), from the captures and the replayed noise, without the others."""
    p, device = pairs.pairs, pairs.x.device
    rows = rows.to(device)
    captured = rows < p
    drawn = rows[~captured] - p
    eps = noise.replay(drawn).to(device)
    source = drawn % p

    def assemble(latent, x0, sigma):
        out = torch.empty((rows.numel(), *latent.shape[1:]), dtype=torch.float32, device=device)
        out[captured] = latent.float()[rows[captured]]
        out[~captured] = vp_forward_noise(x0.float()[source], sigma, eps, pairs.kind)
        return out

    return assemble(pairs.x, pairs.x0_x, pairs.sigma_x), assemble(pairs.z, pairs.x0_z, pairs.sigma_z)
