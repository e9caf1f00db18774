"""The kinds of edit the benchmark judges, per model: how cases are drawn and how an edited image is scored.

A kind gives prompt pairs (original, target) with the goal the target asks for, and a judge that reads images: did the
goal land (success), how much of the original is gone (identity distance), did anything else change (leakage), how far
along the goal is the image (value, for monotonicity in ρ), and features for the Fréchet distance to real images.
Scores read pixels only, through classifiers fit on real images (bench/digit_metrics.py, bench/people_metrics.py).
"""
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from bench import digit_metrics as DM
from bench import people_metrics as PM
from devkit import digits, people


@dataclass(frozen=True)
class Pair:
    """One edit request: the prompts and what the target asks for."""

    original: str
    target: str
    goal: tuple          # ("attribute", name) | ("class", digit) | (head, class name) for people
    subject: int = -1    # the digit drawn, for digit statistics relative to the class


@dataclass
class Kind:
    model: str
    name: str
    pairs: Callable[[int], list]        # count -> [Pair]
    judge: str                          # "digits" or "people"
    may_change: tuple = ()              # people heads an edit of this kind may change besides its goal


# ---- digits ----------------------------------------------------------------------------------

STROKE = [("bold", {}, {"thickness": "bold"}), ("thin", {}, {"thickness": "thin"}),
          ("bold", {"thickness": "thin"}, {"thickness": "bold"}), ("thin", {"thickness": "bold"}, {"thickness": "thin"})]
SLANT = [("slanted right", {}, {"slant_word": "slanted right"}), ("slanted left", {}, {"slant_word": "slanted left"})]


def digit_attribute_pairs(edits: list) -> Callable[[int], list]:
    def pairs(count: int) -> list:
        out = []
        for i in range(count):
            attribute, o_words, t_words = edits[i % len(edits)]
            d = (3 * (i % len(edits)) + 7 * (i // len(edits))) % 10
            out.append(Pair(digits.prompt(d, **o_words), digits.prompt(d, **t_words), ("attribute", attribute), d))
        return out
    return pairs


def digit_content_pairs(count: int) -> list:
    """One digit into another: a → (a + 1 + i mod 9) mod 10, every digit in turn."""
    out = []
    for i in range(count):
        a = i % 10
        b = (a + 1 + (i // 10) % 9) % 10
        out.append(Pair(digits.prompt(a), digits.prompt(b), ("class", b), a))
    return out


# ---- people ----------------------------------------------------------------------------------

# A leak counts as sure when both images' top probability on the changed head is above this: the judge reads roles from
# these soft images at a mean top probability of 0.68 to 0.86 (0.56 to 0.73 on the previous people model), so a role that
# flips at low confidence is mostly its noise
# (bench/people_leak.py; the same original finished at cfg 4.5 instead of 5 changes no head confidently).
CONFIDENT = 0.7


def sure_change(before: tuple, after: tuple) -> bool:
    """A head's reading (class, top probability) changed, and read above CONFIDENT in both images."""
    return before[0] != after[0] and min(before[1], after[1]) > CONFIDENT


ROLES = ("", "health worker", "teacher", "cook", "farmer", "scientist", "pilot", "artist", "office worker", "singer")
PLAIN = ("",)


def people_pairs(make: Callable[[int], tuple]) -> Callable[[int], list]:
    def pairs(count: int) -> list:
        return [make(i) for i in range(count)]
    return pairs


def gender_pair(source: str, target: str) -> Callable[[int], Pair]:
    """A role person of one gender (or none named) into another, skin tones in turn."""
    def make(i: int) -> Pair:
        role, skin = ROLES[i % len(ROLES)], people.SKINS[(i // len(ROLES)) % len(people.SKINS)]
        return Pair(people.describe("adult", source, role, "", skin), people.describe("adult", target, role, "", skin),
                    ("gender", target))
    return make


def swap_gender(i: int) -> Pair:
    source, target = ("male", "female") if i % 2 == 0 else ("female", "male")
    return gender_pair(source, target)(i // 2)


def older(i: int) -> Pair:
    gender, skin = people.GENDERS[i % 3], people.SKINS[(i // 3) % len(people.SKINS)]
    return Pair(people.describe("adult", gender, "", "", skin), people.describe("old", gender, "", "", skin), ("age", "old"))


def hair_colour(i: int) -> Pair:
    hair, gender = ("red", "blond", "white")[i % 3], people.GENDERS[(i // 3) % 3]
    skin = people.SKINS[(i // 9) % len(people.SKINS)]
    return Pair(people.describe("adult", gender, "", "", skin), people.describe("adult", gender, "", hair, skin), ("hair", hair))


KINDS = [
    Kind("digits", "stroke", digit_attribute_pairs(STROKE), "digits"),
    Kind("digits", "slant", digit_attribute_pairs(SLANT), "digits"),
    Kind("digits", "content", digit_content_pairs, "digits"),
    Kind("people", "person → woman", people_pairs(gender_pair("neutral", "female")), "people"),
    Kind("people", "person → man", people_pairs(gender_pair("neutral", "male")), "people"),
    Kind("people", "man ↔ woman", people_pairs(swap_gender), "people"),
    Kind("people", "→ older", people_pairs(older), "people", may_change=("hair",)),
    Kind("people", "hair colour", people_pairs(hair_colour), "people"),
]


# ---- judges ----------------------------------------------------------------------------------

def grid8(images: torch.Tensor) -> torch.Tensor:
    """Grey ink [B, 64] on an 8x8 grid at 0..16 (the scale of scikit-learn's digits): a coarse picture distance."""
    grey = images.float().amax(1, keepdim=True)[..., digits.BORDER:-digits.BORDER, digits.BORDER:-digits.BORDER]
    return (F.adaptive_avg_pool2d(grey, 8) * 16).flatten(1)


@dataclass
class Scores:
    success: bool
    identity: float
    leak: bool
    value: float
    features: torch.Tensor = field(repr=False)
    sure_leak: bool   # a leak the judge reads confidently in both images (people); digits: the same as leak


class DigitsJudge:
    """Stroke and slant by pixel statistics, the class by the classifier fit on real digits."""

    def __init__(self):
        self.judge = DM.Judge.load()
        self.real_features = self.judge.real_features

    @torch.no_grad()
    def reading(self, image: torch.Tensor, pair: Pair) -> dict:
        cls, _, feats = self.judge.classify(image)
        probs = self.judge.classifier.head(feats).softmax(1)[0]
        m = self.judge.measure(image, torch.tensor([pair.subject]))
        return {"class": int(cls[0]), "probs": probs, "features": feats[0], "grid": grid8(image)[0],
                "measured": m, "thickness": m.thickness_word()[0], "slant": m.slant_word()[0]}

    def reached(self, r: dict, pair: Pair) -> bool:
        kind, goal = pair.goal
        if kind == "class":
            return r["class"] == goal
        return bool(DM.attribute_reached(r["measured"], goal)[0])

    def value(self, r: dict, pair: Pair) -> float:
        kind, goal = pair.goal
        return float(r["probs"][goal]) if kind == "class" else float(DM.attribute_value(r["measured"], goal)[0])

    def score(self, r: dict, o: dict, pair: Pair, may_change: tuple = ()) -> Scores:
        kind, goal = pair.goal
        value = self.value(r, pair)
        if kind == "class":
            # identity of a content edit: the picture beyond the digit (placement, stroke, slant) on the 8x8 grid
            identity = float((r["grid"] - o["grid"]).norm())
            leak = r["class"] not in (o["class"], goal)
            success = self.reached(r, pair)
        else:
            identity = float(DM.identity_distance(r["features"][None], o["features"][None])[0])
            other = "slant" if DM.attribute_group(goal) == "thickness" else "thickness"
            leak = r["class"] != o["class"] or r[other] != o[other]
            success = self.reached(r, pair) and value > self.value(o, pair)
        return Scores(success, identity, leak, value, r["features"], leak)

    def originals_ok(self, r: dict, pair: Pair) -> bool:
        """A usable case: the original shows its own digit and not yet the goal."""
        kind, _ = pair.goal
        if kind == "class":
            return r["class"] == pair.subject
        return not self.reached(r, pair)


class PeopleJudge:
    """Every head of the people scorer: the goal's head, the identity heads and features, the others for leakage."""

    def __init__(self, judge: PM.PeopleJudge = None):
        self.judge = judge or PM.PeopleJudge.load()
        self.real_features = self.judge.real_features

    def reading(self, image: torch.Tensor, pair: Pair) -> dict:
        read = self.judge.read(image)
        return {"classes": read.at(0), "probs": {h: p[0] for h, p in read.probs.items()},
                "identity": read.identity[0], "features": read.features[0]}

    def value(self, r: dict, pair: Pair) -> float:
        head, goal = pair.goal
        return float(r["probs"][head][PM.HEADS[head].index(goal)])

    def score(self, r: dict, o: dict, pair: Pair, may_change: tuple = ()) -> Scores:
        head, goal = pair.goal
        success = r["classes"][head] == goal and o["classes"][head] != goal
        kept = [h for h in PM.HEADS if h != head and h not in may_change]
        changed = [h for h in kept if r["classes"][h] != o["classes"][h]]
        sure = [h for h in changed if sure_change((o["classes"][h], float(o["probs"][h].max())),
                                                  (r["classes"][h], float(r["probs"][h].max())))]
        identity = float(PM.identity_distance(r["identity"][None], o["identity"][None])[0])
        return Scores(success, identity, bool(changed), self.value(r, pair), r["features"], bool(sure))

    def originals_ok(self, r: dict, pair: Pair) -> bool:
        head, goal = pair.goal
        return r["classes"][head] != goal
