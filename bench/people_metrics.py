"""Scores of edited people images: the attribute asked for, what must stay, image quality (bench/bench_edits.py).

Every score comes from the people scorer (devkit/people_scorer.py), a CNN fit on real emoji renders only: the
attribute heads (gender, age, hair) judge success, the identity heads (role, style, skin tone) and the identity
features judge what an edit must keep, and both feature sets give the Fréchet distance to real renders.
"""
from dataclasses import dataclass

import torch

from devkit import people, people_scorer

HEADS = people_scorer.HEADS


@dataclass
class Reading:
    """What the scorer reads in a batch: the class name per head, identity and all features."""

    classes: dict          # head -> list of class names
    probs: dict            # head -> [B, classes] probabilities
    identity: torch.Tensor  # [B, 128]
    features: torch.Tensor  # [B, 256]

    def at(self, i: int) -> dict:
        return {head: names[i] for head, names in self.classes.items()}


def identity_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 − cosine [B] of identity features: role, drawing style and skin tone, blind to gender, age and hair."""
    return 1.0 - torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)


@dataclass
class PeopleJudge:
    scorer: people_scorer.PeopleScorer
    real_features: torch.Tensor

    @classmethod
    def load(cls, data: people.PeopleData = None, count: int = 512) -> "PeopleJudge":
        """The shipped scorer, and its features of `count` held-out real renders in random layouts (for the FD)."""
        from devkit import people_sources
        net = people_scorer.load()
        data = data or people_sources.held_out()
        images, _, _ = data.batch(count, torch.Generator().manual_seed(1234), held=True, balanced=False)
        return cls(net, cls.read_with(net, images).features)

    @staticmethod
    @torch.no_grad()
    def read_with(net, images: torch.Tensor) -> Reading:
        ident, attrs = net.features(images)
        classes, probs = {}, {}
        for name, head in net.heads.items():
            probs[name] = head(ident if name in people_scorer.IDENTITY_HEADS else attrs).softmax(1)
            classes[name] = [HEADS[name][p] for p in probs[name].argmax(1).tolist()]
        return Reading(classes, probs, ident, torch.cat([ident, attrs], 1))

    def read(self, images: torch.Tensor) -> Reading:
        """The scorer's reading of images [B, 3, 128, 128] in [0, 1]."""
        return self.read_with(self.scorer, images)
