"""Learned attributes on disk (DESIGN 5): Φ's weights plus metadata in one .safetensors file, written atomically."""
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields

import torch

from .attribute_vectors import Z_VECTOR_MODES
from .checks import describe
from .conventions import MODEL_KINDS
from .phi import SingularValuePredictor

FORMAT_VERSION = 1
META_PREFIX = "avi."


@dataclass(frozen=True)
class PhiInfo:
    """What a Φ was trained for and how: latent shape, k, width, capture timesteps, settings, final losses."""

    channels: int
    height: int
    width: int
    k: int
    hidden: int
    z_vectors: str = "tail"
    model_kind: str = "eps"
    latent_format: str = ""
    timestep_x: float = 0.0
    timestep_z: float = 0.0
    training: dict = field(default_factory=dict)
    losses: dict = field(default_factory=dict)
    note: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def n(self) -> int:
        """Singular values per channel, N = min(H, W)."""
        return min(self.height, self.width)

    def shape_text(self) -> str:
        """C×H×W as people read it."""
        return f"{self.channels}×{self.height}×{self.width} (C×H×W)"

    def check(self, source: str = "Φ metadata") -> "PhiInfo":
        """Every field has a sensible type and range; raises ValueError naming the field."""
        for name in ("channels", "height", "width", "k", "hidden", "format_version"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{source}: {name} must be a positive integer; got {describe(value)}")
        if min(self.height, self.width) < 2 or not 1 <= self.k < self.n:
            raise ValueError(f"{source}: k = {self.k} does not fit N = {self.n} of a {self.shape_text()} latent")
        if self.format_version > FORMAT_VERSION:
            raise ValueError(f"{source}: format version {self.format_version} is newer than this pack reads ({FORMAT_VERSION})")
        if self.z_vectors not in Z_VECTOR_MODES:
            raise ValueError(f"{source}: z_vectors must be one of {Z_VECTOR_MODES}; got {self.z_vectors!r}")
        if self.model_kind not in MODEL_KINDS:
            raise ValueError(f"{source}: model_kind must be one of {MODEL_KINDS}; got {self.model_kind!r}")
        for name in ("latent_format", "note"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{source}: {name} must be text; got {describe(getattr(self, name))}")
        for name in ("timestep_x", "timestep_z"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), (int, float)):
                raise ValueError(f"{source}: {name} must be a number; got {describe(getattr(self, name))}")
        for name in ("training", "losses"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{source}: {name} must be a mapping; got {describe(getattr(self, name))}")
        return self


@dataclass
class AttributePhi:
    """A learned attribute: Φ and what it was trained for."""

    phi: SingularValuePredictor
    info: PhiInfo

    def check_fits(self, latent_shape, model_kind: str = None, latent_format: str = None) -> None:
        """Refuse a latent of another shape, model kind or latent format, naming what fits and what was given."""
        c, h, w = tuple(latent_shape)[-3:]
        info = self.info
        if (c, h, w) != (info.channels, info.height, info.width):
            raise ValueError(
                f"this AVI Φ was trained for {info.shape_text()} latents "
                f"({info.width * 8}×{info.height * 8} px at 8 px per latent cell); "
                f"got a {c}×{h}×{w} latent ({w * 8}×{h * 8} px). Train a Φ at this size or capture at {info.width * 8}×{info.height * 8}."
            )
        if model_kind is not None and model_kind != info.model_kind:
            raise ValueError(f"this AVI Φ was trained on a {info.model_kind!r} model; got latents of a {model_kind!r} model")
        if latent_format and info.latent_format and latent_format != info.latent_format:
            raise ValueError(f"this AVI Φ was trained on {info.latent_format} latents; got {latent_format} latents")


def info_to_metadata(info: PhiInfo) -> dict[str, str]:
    """Safetensors metadata: one JSON-encoded string per field, keys prefixed `avi.`."""
    return {META_PREFIX + name: json.dumps(value, ensure_ascii=False) for name, value in asdict(info).items()}


def info_from_metadata(meta: dict, source: str) -> PhiInfo:
    """PhiInfo from safetensors metadata, every field checked."""
    meta = meta or {}
    if META_PREFIX + "format_version" not in meta:
        raise ValueError(f"{source} is not an AVI Φ file (no {META_PREFIX}format_version in its metadata)")
    values = {}
    for f in fields(PhiInfo):
        key = META_PREFIX + f.name
        if key not in meta:
            raise ValueError(f"{source}: metadata field {key} is missing")
        try:
            values[f.name] = json.loads(meta[key])
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}: metadata field {key} is not valid JSON ({e})") from None
    return PhiInfo(**values).check(source)


def save_phi(path: str, attribute: AttributePhi, overwrite: bool = False) -> str:
    """Write Φ to path atomically (temp file, then link/replace); refuses an existing file unless overwrite."""
    from safetensors.torch import save_file

    if not isinstance(attribute, AttributePhi):
        raise ValueError(f"attribute must be an AttributePhi; got {type(attribute).__name__}")
    attribute.info.check()
    path = os.path.abspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting")
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in attribute.phi.state_dict().items()}
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".partial")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=info_to_metadata(attribute.info))
        publish(tmp, path, overwrite)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def publish(tmp: str, path: str, overwrite: bool) -> None:
    """Move a finished temp file into place in one step; without overwrite, never replace an existing file."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic create-if-absent
    except FileExistsError:
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting") from None
    except OSError:  # file systems without hard links
        if os.path.exists(path):
            raise FileExistsError(f"{path} already exists; choose another name or allow overwriting") from None
        os.replace(tmp, path)


def load_phi(path: str, device=None) -> AttributePhi:
    """Read an AVI Φ file, checking every metadata field and every tensor's name and shape."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise ValueError(f"AVI Φ file not found: {path}") from None
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise ValueError(f"cannot read AVI Φ file {path}: {e}") from None
    info = info_from_metadata(meta, path)
    phi = SingularValuePredictor(info.height * info.width, info.n, info.hidden)
    expected = {k: tuple(v.shape) for k, v in phi.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        raise ValueError(
            f"{path}: weights do not match a Φ for {info.shape_text()} with hidden = {info.hidden} "
            f"(missing {missing}, unexpected {extra}, wrong shape {[(k, found[k], expected[k]) for k in wrong]})"
        )
    bad = [k for k, v in tensors.items() if not v.is_floating_point() or not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{path}: weights {bad} are not finite floating-point values")
    phi.load_state_dict({k: v.float() for k, v in tensors.items()})
    phi.eval()
    return AttributePhi(phi.to(device) if device is not None else phi, info)
