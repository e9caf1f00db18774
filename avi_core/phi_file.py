"""Learned attributes on disk (docs/nodes.md, Save AVI Φ / Load AVI Φ): Φ's weights plus metadata in one .safetensors file, written atomically."""
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields

import torch

from .attribute_vectors import Z_VECTOR_MODES
from .checks import describe
from .conventions import LAST_TIMESTEP, MODEL_KINDS, NUM_TIMESTEPS, SPACES, families_differ
from .phi import SingularValuePredictor

FORMAT_VERSION = 1
META_PREFIX = "avi."
# Largest Φ a file may describe. A file's metadata fixes the network's size before any weight is read,
# so these bound what loading can be made to allocate: 512 latent cells are 4096 px at 8 px per cell,
# 16384 is Train AVI Φ's widest setting, and 2**30 parameters are 4 GiB as float32.
LIMITS = {"channels": 64, "height": 512, "width": 512, "hidden": 16384}
MAX_PARAMETERS = 2**30
# How far (in timesteps) a capture may land from the one Φ was trained at: other step counts or schedules move
# the step nearest a fraction by up to half a step's spacing (25 at 20 ddim_uniform steps).
TIMESTEP_TOLERANCE = 25.0
# Bytes per file name on Linux, macOS and Windows file systems (ext4, APFS, NTFS): what an OS error 36 means.
NAME_MAX = 255
PATH_MAX = 4096  # Linux's limit for a whole path, its final NUL included
# The temporary file of an atomic save: short, so any name that fits as the final file fits as the temporary one.
TEMP_PREFIX, TEMP_SUFFIX = ".avi-", ".partial"
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


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
    space: str = "latent"  # what Φ was trained on (conventions.SPACES); files written before it was recorded are "latent"
    # The host's model class ("SD15", "SD20", "SDXL", "SD3", "Flux"): SD1.5 and SD2 share a latent format and kind,
    # so only this tells their Φ apart. "" when not recorded (files written before it): then only format and kind count.
    model_family: str = ""

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
        check_phi_size(self.channels, self.height, self.width, self.hidden, source)
        if self.format_version > FORMAT_VERSION:
            raise ValueError(f"{source}: format version {self.format_version} is newer than this pack reads ({FORMAT_VERSION})")
        if self.z_vectors not in Z_VECTOR_MODES:
            raise ValueError(f"{source}: z_vectors must be one of {Z_VECTOR_MODES}; got {self.z_vectors!r}")
        if self.space not in SPACES:
            raise ValueError(f"{source}: space must be one of {SPACES}; got {self.space!r}")
        if self.model_kind not in MODEL_KINDS:
            raise ValueError(f"{source}: model_kind must be one of {MODEL_KINDS}; got {self.model_kind!r}")
        for name in ("latent_format", "model_family", "note"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{source}: {name} must be text; got {describe(getattr(self, name))}")
        for name in ("timestep_x", "timestep_z"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= NUM_TIMESTEPS:
                raise ValueError(f"{source}: {name} must be a timestep from 0 to {NUM_TIMESTEPS}; got {describe(value)}")
        for name in ("training", "losses"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{source}: {name} must be a mapping; got {describe(getattr(self, name))}")
        return self


def check_phi_size(channels: int, height: int, width: int, hidden: int, source: str = "Φ") -> None:
    """C, H, W and hidden within LIMITS and Φ's parameter count within MAX_PARAMETERS; ValueError names the field and the limit."""
    for name, value in (("channels", channels), ("height", height), ("width", width), ("hidden", hidden)):
        if value > LIMITS[name]:
            raise ValueError(f"{source}: {name} = {value} is above the limit of {LIMITS[name]} that this pack accepts")
    count = parameter_count(height, width, hidden)
    if count > MAX_PARAMETERS:
        raise ValueError(f"{source}: a Φ for {height}×{width} latents with hidden = {hidden} has {count:,} parameters, "
                         f"above the limit of {MAX_PARAMETERS:,} (4 GiB as float32); use a smaller hidden")


def parameter_count(height: int, width: int, hidden: int) -> int:
    """Weights and biases of Φ for H×W latents, by arithmetic (nothing is allocated)."""
    return sum(math.prod(shape) for shape in expected_shapes(height, width, hidden).values())


def expected_shapes(height: int, width: int, hidden: int) -> dict[str, tuple]:
    """Tensor name -> shape of Φ's state dict for H×W latents, computed without building Φ."""
    n, flat = min(height, width), height * width
    shapes = {}
    for i, fan_in in zip((0, 2, 4), (flat, hidden, hidden)):
        shapes[f"trunk.{i}.weight"], shapes[f"trunk.{i}.bias"] = (hidden, fan_in), (hidden,)
    for head in ("head_s", "head_delta"):
        shapes[f"{head}.weight"], shapes[f"{head}.bias"] = (n, hidden), (n,)
    return shapes


@dataclass
class AttributePhi:
    """A learned attribute: Φ and what it was trained for."""

    phi: SingularValuePredictor
    info: PhiInfo

    def check_fits(self, latent_shape, model_kind: str = None, latent_format: str = None, model_family: str = None) -> None:
        """Refuse a latent of another shape, model kind, latent format or model family, naming what fits and what was given."""
        c, h, w = tuple(latent_shape)[-3:]
        info = self.info
        other_format = bool(latent_format and info.latent_format and latent_format != info.latent_format)
        other_family = families_differ(model_family, info.model_family)
        other_kind = model_kind is not None and model_kind != info.model_kind
        if other_format or other_family or other_kind or c != info.channels:
            # Another model family: say so first, whatever the size (a 16-channel SD3 Φ on a 4-channel SD1.5 latent).
            trained = family_text(info.latent_format, info.model_family, info.model_kind, info.channels)
            given = family_text(latent_format, model_family, model_kind or "unknown", c)
            raise ValueError(f"this AVI Φ was trained on {trained}; got {given}. A Φ belongs to the model family it was "
                             f"trained with: train one with this model")
        if (h, w) != (info.height, info.width):
            raise ValueError(
                f"this AVI Φ was trained for {info.shape_text()} latents "
                f"({info.width * 8}×{info.height * 8} px at 8 px per latent cell); "
                f"got a {c}×{h}×{w} latent ({w * 8}×{h * 8} px). Train a Φ at this size or capture at {info.width * 8}×{info.height * 8}."
            )

    def check_space(self, space: str) -> None:
        """x and z were decomposed in the space Φ was trained in."""
        if space != self.info.space:
            raise ValueError(f"this AVI Φ was trained on SVDs of the {self.info.space!r} space; got SVDs of the {space!r} space. "
                             f"Set SVD Decompose's space to {self.info.space!r}, or train a Φ for {space!r}")

    def check_timesteps(self, timestep_x: float, timestep_z: float) -> None:
        """x and z were captured within TIMESTEP_TOLERANCE of the timesteps Φ was trained for (both 0: not recorded)."""
        info = self.info
        if info.timestep_x == 0 and info.timestep_z == 0:
            return
        if abs(timestep_x - info.timestep_x) <= TIMESTEP_TOLERANCE and abs(timestep_z - info.timestep_z) <= TIMESTEP_TOLERANCE:
            return
        raise ValueError(
            f"this AVI Φ was trained on x at {timestep_text(info.timestep_x)} and z at {timestep_text(info.timestep_z)}; "
            f"got x at {timestep_text(timestep_x)} and z at {timestep_text(timestep_z)}. Capture x and z at the timesteps Φ was "
            f"trained for (within {TIMESTEP_TOLERANCE:g} of {NUM_TIMESTEPS} timesteps), or train a Φ for these captures."
        )


def family_text(latent_format, model_family, model_kind: str, channels: int) -> str:
    """'SD15 latents (SD20 eps model, 4 channels)' for messages; the family is left out when not known."""
    family = f"{model_family} " if model_family else ""
    return f"{latent_format or 'unnamed'} latents ({family}{model_kind} model, {channels} channels)"


def timestep_text(t: float) -> str:
    """A timestep with the fraction of T it stands for, e.g. 't = 801 (0.80·T)'."""
    return f"t = {t:g} ({t / LAST_TIMESTEP:.2f}·T)"


def info_to_metadata(info: PhiInfo) -> dict[str, str]:
    """Safetensors metadata: one JSON-encoded string per field, keys prefixed `avi.`."""
    return {META_PREFIX + name: json.dumps(value, ensure_ascii=False) for name, value in asdict(info).items()}


OPTIONAL_FIELDS = ("space", "model_family")  # added after format version 1's first files: a file without one takes its default


def info_from_metadata(meta: dict, source: str) -> PhiInfo:
    """PhiInfo from safetensors metadata, every field checked."""
    meta = meta or {}
    if META_PREFIX + "format_version" not in meta:
        raise ValueError(f"{source} is not an AVI Φ file (no {META_PREFIX}format_version in its metadata)")
    values = {}
    for f in fields(PhiInfo):
        key = META_PREFIX + f.name
        if key not in meta and f.name in OPTIONAL_FIELDS:
            continue
        if key not in meta:
            raise ValueError(f"{source}: metadata field {key} is missing")
        try:
            values[f.name] = json.loads(meta[key])
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}: metadata field {key} is not valid JSON ({e})") from None
        except (TypeError, ValueError):  # Python refuses to convert integers of more than 4300 digits
            raise ValueError(f"{source}: metadata field {key} holds a number too long to read "
                             f"({len(str(meta[key]))} characters)") from None
    return PhiInfo(**values).check(source)


def save_phi(path: str, attribute: AttributePhi, overwrite: bool = False) -> str:
    """Write Φ to path atomically (temp file, then link/replace); refuses an existing file unless overwrite."""
    from safetensors.torch import save_file

    if not isinstance(attribute, AttributePhi):
        raise ValueError(f"attribute must be an AttributePhi; got {type(attribute).__name__}")
    attribute.info.check()
    path = os.path.abspath(path)
    check_name_lengths(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting")
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in attribute.phi.state_dict().items()}
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=info_to_metadata(attribute.info))
        publish(tmp, path, overwrite)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def check_name_lengths(path: str) -> None:
    """Path within PATH_MAX bytes and every part of it within NAME_MAX, with a message naming the part and the limit."""
    size = len(os.fsencode(path))
    if size >= PATH_MAX:
        raise ValueError(f"the path {path[:40]!r}… is {size} bytes long; paths hold at most {PATH_MAX - 1} bytes, so choose a shorter filename")
    for part in path.split(os.sep):
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            shown = part if len(part) <= 60 else part[:40] + "…" + part[-16:]
            raise ValueError(f"the file name {shown!r} is {size} bytes long; file names hold at most {NAME_MAX} bytes "
                             f"(UTF-8), so choose a name at least {size - NAME_MAX} bytes shorter")


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
    """Read an AVI Φ file: metadata and tensor shapes are checked from the header before any weight is read."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            info = info_from_metadata(f.metadata(), path)
            header = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
            check_header(header, info, path)
            tensors = {k: f.get_tensor(k) for k in header}
    except FileNotFoundError:
        raise ValueError(f"AVI Φ file not found: {path}") from None
    except ValueError:
        raise
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise ValueError(f"cannot read AVI Φ file {path}: {e}") from None
    bad = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{path}: weights {bad} are not finite floating-point values")
    return AttributePhi(assemble_phi(info, tensors, device), info)


def check_header(header: dict, info: PhiInfo, path: str) -> None:
    """The header's tensor names, shapes and dtypes are exactly those of a Φ for the metadata's H, W and hidden."""
    expected = expected_shapes(info.height, info.width, info.hidden)
    found = {k: shape for k, (shape, _) in header.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        raise ValueError(
            f"{path}: weights do not match a Φ for {info.shape_text()} with hidden = {info.hidden} "
            f"(missing {missing}, unexpected {extra[:10]}, wrong shape {[(k, found[k], expected[k]) for k in wrong]})"
        )
    bad = sorted(k for k, (_, dtype) in header.items() if dtype not in FLOAT_DTYPES)
    if bad:
        raise ValueError(f"{path}: weights {bad} are not finite floating-point values (dtype must be one of {FLOAT_DTYPES})")


def assemble_phi(info: PhiInfo, tensors: dict, device=None) -> SingularValuePredictor:
    """Φ holding the file's tensors: built on the meta device so that no second, random copy is allocated."""
    with torch.device("meta"):
        phi = SingularValuePredictor(info.height * info.width, info.n, info.hidden)
    phi.load_state_dict({k: v.float() for k, v in tensors.items()}, assign=True)
    phi.eval()
    return phi.to(device) if device is not None else phi
