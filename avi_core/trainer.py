"""Training Φ (sections 3.2.2 and 5): Adam on L_AVI over resampled pairs, ρ = 1, SVDs computed once."""
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Optional

import torch

from .attribute_vectors import Z_VECTOR_MODES, blend, reverse_order
from .checks import check_choice, check_k, check_positive_float, check_positive_int, check_unit_interval
from .losses import LossWeights, weighted_terms
from .phi import PHI_PRESETS, SingularValuePredictor, build_phi
from .svd import compose, decompose_float32
from .training_data import CapturedPairs, ReplayableNoise, record_resampling, resample_pairs, resampled_rows, samples_per_pair

ProgressFn = Callable[[int, int, dict], None]
LOSS_NAMES = ("l1", "l2", "l3", "l4", "total")
SVD_CHUNK = 256  # samples decomposed at a time: bounds the one-off SVD pass's transient memory, splits it across threads
# Largest training set (x, z, Û, V̂ of every resampled pair) held in memory; a larger one is drawn and decomposed again for
# each batch (StreamedTrainingSet): the same Φ, with memory set by the batch instead of the sample count. At the paper's
# 5001 samples: 16×16 latents (0.08 GB) are held, 4×64×64 (1.3 GB), 4×128×128 (5.2 GB) and 16×128×128 (21 GB) streamed.
HOLD_BYTES = 1 << 30


class TrainingCancelled(Exception):
    """Raised when the cancel check asks training to stop; no partial Φ is returned."""


@dataclass(frozen=True)
class TrainSettings:
    """Training settings with the paper's defaults (section 5); k = None means N/2, samples_per_pair = None the paper's rule."""

    k: Optional[int] = None
    hidden: int = PHI_PRESETS["paper"]
    epochs: int = 5
    samples_per_pair: Optional[int] = None
    batch_size: int = 256
    lr: float = 1e-3
    weights: LossWeights = field(default_factory=LossWeights)
    rho: float = 1.0
    z_vectors: str = "tail"
    seed: int = 0

    def resolved(self, n: int, pairs: int) -> "TrainSettings":
        """These settings checked against N and P, with k and samples_per_pair filled in."""
        k = check_k(n // 2 if self.k is None else self.k, n)
        per_pair = samples_per_pair(pairs) if self.samples_per_pair is None else self.samples_per_pair
        check_positive_int("samples_per_pair", per_pair, minimum=0)
        check_positive_int("hidden", self.hidden)
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_float("lr", self.lr)
        check_unit_interval("rho", self.rho)
        check_choice("z_vectors", self.z_vectors, Z_VECTOR_MODES)
        check_positive_int("seed", self.seed, minimum=0)
        if not isinstance(self.weights, LossWeights):
            raise ValueError(f"weights must be a LossWeights; got {type(self.weights).__name__}")
        return replace(self, k=k, samples_per_pair=per_pair)

    def as_dict(self) -> dict:
        """Plain values, for file metadata."""
        return asdict(self)


@dataclass
class TrainingSet:
    """Everything the loop needs, computed once: VP latents, Û/V̂ at the training ρ, and the spectra Sx, Sz."""

    x: torch.Tensor
    z: torch.Tensor
    U_hat: torch.Tensor
    V_hat: torch.Tensor
    Sx: torch.Tensor
    Sz: torch.Tensor
    source: Optional[torch.Tensor] = None  # [samples]: the stored row of each sample, when identical samples share one

    def __len__(self) -> int:
        return self.x.shape[0] if self.source is None else self.source.numel()

    @property
    def device(self) -> torch.device:
        return self.x.device

    def rows(self, rows: torch.Tensor) -> "TrainingSet":
        return TrainingSet(*(t[rows] for t in (self.x, self.z, self.U_hat, self.V_hat, self.Sx, self.Sz)))

    def batch(self, idx: torch.Tensor) -> tuple["TrainingSet", Optional[torch.Tensor]]:
        """The samples at idx, and None; or, with shared rows, each distinct row once and its share of the batch."""
        if self.source is None:
            return self.rows(idx), None
        rows, counts = torch.unique(self.source[idx], return_counts=True)
        return self.rows(rows), counts.to(self.x.dtype) / idx.numel()


@dataclass
class StreamedTrainingSet:
    """The resampled pairs of a TrainingSet without holding them: a batch's rows are drawn again and decomposed."""

    pairs: CapturedPairs
    noise: ReplayableNoise
    settings: "TrainSettings"
    device: torch.device

    def __len__(self) -> int:
        return self.pairs.pairs + self.noise.rows

    def batch(self, idx: torch.Tensor) -> tuple[TrainingSet, None]:
        """The samples at idx, decomposed now: the same rows TrainingSet.rows gives, in the same order."""
        x, z = resampled_rows(self.pairs, self.noise, idx)
        return build_training_set(x.to(self.device), z.to(self.device), self.settings), None


def held_bytes(pairs: CapturedPairs, samples_per_pair: int) -> int:
    """Bytes of a held TrainingSet: x, z [B, C, H, W], Û [B, C, H, N] and V̂ [B, C, N, W] in float32 (spectra aside)."""
    p, c, h, w = pairs.x.shape
    return 4 * p * (samples_per_pair + 1) * c * (2 * h * w + min(h, w) * (h + w))


@dataclass
class TrainResult:
    """Trained Φ, the settings used (k resolved), per-step loss history and the final losses over the training set."""

    phi: SingularValuePredictor
    settings: TrainSettings
    history: list[dict]
    final_losses: dict[str, float]
    samples: int


def build_training_set(x: torch.Tensor, z: torch.Tensor, settings: TrainSettings) -> TrainingSet:
    """Decompose every sample once and assemble Û, V̂ (Algorithm 1 lines 4-9) before any training step."""

    def chunk(start: int):
        sx = decompose_float32(x[start:start + SVD_CHUNK])
        sz = decompose_float32(z[start:start + SVD_CHUNK])
        U_hat, V_hat = blend(sx, sz, settings.k, settings.rho, settings.z_vectors)
        return U_hat, V_hat, sx.S, sz.S

    starts = range(0, x.shape[0], SVD_CHUNK)
    threads = torch.get_num_threads()
    if x.device.type != "cpu" or threads == 1 or len(starts) == 1:
        parts = [chunk(start) for start in starts]
    else:
        # A batched CPU SVD of small matrices is slower with intra-op threads than without
        # (5.4 s vs 3.9 s for 8000 64x64 on 2 cores): single-threaded chunks on parallel Python
        # threads use the cores instead (2.2 s). LAPACK releases the GIL; results do not depend
        # on the split. The thread count is process-wide, so it is restored right after.
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(threads) as pool:
                parts = list(pool.map(chunk, starts))
        finally:
            torch.set_num_threads(threads)
    return TrainingSet(x, z, *(torch.cat(part) for part in zip(*parts)))


def step_losses(phi: SingularValuePredictor, batch: tuple, weights: LossWeights) -> dict[str, torch.Tensor]:
    """L_AVI of a batch (TrainingSet.batch): Φ(x) → S, Δs; ŷ = Û S V̂; ỹ = Ũ (S+Δs) Ṽ (Algorithm 1 lines 3, 10-13)."""
    data, sample_weights = batch
    S, delta_s = phi(data.x.flatten(-2))
    y_hat = compose(data.U_hat, S, data.V_hat)
    U_tilde, V_tilde = reverse_order(data.U_hat, data.V_hat)
    y_tilde = compose(U_tilde, S + delta_s, V_tilde)
    return weighted_terms(y_hat, y_tilde, data.x, data.z, S, delta_s, data.Sx, data.Sz, weights, sample_weights)


@torch.no_grad()
def evaluate(phi: SingularValuePredictor, data: TrainingSet, weights: LossWeights, batch_size: int) -> dict[str, float]:
    """Loss terms averaged over a whole training set."""
    sums = dict.fromkeys(LOSS_NAMES, 0.0)
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)), device=data.device)
        terms = step_losses(phi, data.batch(idx), weights)
        for name in LOSS_NAMES:
            sums[name] += terms[name].item() * idx.numel()
    return {name: value / len(data) for name, value in sums.items()}


def train_phi(
    pairs: CapturedPairs,
    settings: TrainSettings = TrainSettings(),
    progress: Optional[ProgressFn] = None,
    should_stop: Optional[Callable[[], bool]] = None,
    device: Optional[torch.device] = None,
) -> TrainResult:
    """Train Φ with Adam on L_AVI; progress(step, total, losses) and should_stop() are called every step."""
    # Hosts may call this under torch.inference_mode() or no_grad() (ComfyUI runs nodes so): training needs autograd.
    with torch.inference_mode(False), torch.enable_grad():
        return train_with_autograd(pairs, settings, progress, should_stop, device)


def noiseless(pairs: CapturedPairs) -> bool:
    """σx = σz = 0 (pairs of x0 predictions): every resampled pair equals its capture."""
    return pairs.sigma_x == 0 and pairs.sigma_z == 0


def training_set(pairs: CapturedPairs, settings: TrainSettings, generator: torch.Generator, device, share_rows: bool,
                 hold_bytes: int = HOLD_BYTES):
    """The resampled pairs decomposed once, or streamed when larger than hold_bytes; noiseless pairs (share_rows) keep
    one row per capture and each sample's row."""
    if not (share_rows and noiseless(pairs)):
        if held_bytes(pairs, settings.samples_per_pair) > hold_bytes:
            noise = record_resampling(pairs, settings.samples_per_pair, generator)
            return StreamedTrainingSet(pairs, noise, settings, device)
        x, z = resample_pairs(pairs, settings.samples_per_pair, generator)
        return build_training_set(x.to(device), z.to(device), settings)
    # x_i = x0 + 0·ε_i: the same pairs resample_pairs would return, without holding n copies. The noise
    # is still drawn, so that the generator (and so every batch order after it) is as without sharing.
    p, c, h, w = pairs.x.shape
    torch.randn((settings.samples_per_pair, p, c, h, w), generator=generator, dtype=torch.float32)
    data = build_training_set(pairs.x.float().to(device), pairs.z.float().to(device), settings)
    data.source = torch.arange(p, device=device).repeat(settings.samples_per_pair + 1)
    return data


def train_with_autograd(pairs, settings, progress, should_stop, device, share_rows: bool = True,
                        hold_bytes: int = HOLD_BYTES) -> TrainResult:
    """train_phi's body, run with autograd enabled (share_rows=False holds every noiseless sample, hold_bytes=0 streams
    every set: the same Φ either way)."""
    if not isinstance(pairs, CapturedPairs):
        raise ValueError(f"pairs must be CapturedPairs; got {type(pairs).__name__}")
    if not isinstance(settings, TrainSettings):
        raise ValueError(f"settings must be TrainSettings; got {type(settings).__name__}")
    _, _, h, w = pairs.x.shape
    settings = settings.resolved(min(h, w), pairs.pairs)
    device = torch.device(device) if device is not None else pairs.x.device
    generator = torch.Generator().manual_seed(settings.seed)

    data = training_set(pairs, settings, generator, device, share_rows, hold_bytes)
    phi = build_phi(h, w, settings.hidden, settings.seed).to(device)
    optimizer = torch.optim.Adam(phi.parameters(), lr=settings.lr)

    steps_per_epoch = math.ceil(len(data) / settings.batch_size)
    total = settings.epochs * steps_per_epoch
    history, step = [], 0
    phi.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(data), generator=generator).to(device)
        for start in range(0, len(data), settings.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"training stopped at step {step} of {total}")
            terms = step_losses(phi, data.batch(order[start:start + settings.batch_size]), settings.weights)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
            step += 1
            record = {"step": step, "epoch": epoch + 1, **{name: terms[name].item() for name in LOSS_NAMES}}
            history.append(record)
            if progress is not None:
                progress(step, total, record)
    phi.eval()
    final = evaluate(phi, data, settings.weights, settings.batch_size)
    return TrainResult(phi, settings, history, final, len(data))
