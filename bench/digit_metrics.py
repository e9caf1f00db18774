"""Scores of edited digit images: attribute success, identity kept, image quality (bench_quality.py).

Every score reads pixels only: the attributes by devkit/digits.py's statistics, the class by a
classifier fit on real digits (devkit/digit_classifier.py), never on generated images.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from devkit import digits

# What a target prompt asks for: (statistic, direction, threshold) or ("colour", name).
ATTRIBUTE_TARGETS = {
    "bold": ("thickness", +1, digits.BOLD_ABOVE),
    "thin": ("thickness", -1, digits.THIN_BELOW),
    "slanted right": ("slant", +1, digits.RIGHT_ABOVE),
    "slanted left": ("slant", -1, digits.LEFT_BELOW),
}


def attribute_group(attribute: str) -> str:
    """'thickness', 'slant' or 'colour'."""
    return "colour" if attribute in digits.COLOURS else ATTRIBUTE_TARGETS[attribute][0]


def attribute_value(measured: digits.Measured, attribute: str) -> torch.Tensor:
    """The statistic an attribute is judged by, signed so that larger means more of it (colour: 1 if that colour)."""
    if attribute in digits.COLOURS:
        return torch.tensor([1.0 if c == attribute else 0.0 for c in measured.colour])
    stat, direction, _ = ATTRIBUTE_TARGETS[attribute]
    return direction * getattr(measured, stat)


def attribute_reached(measured: digits.Measured, attribute: str) -> torch.Tensor:
    """Bool [B]: past the threshold that the captions (and so the model) use for this attribute."""
    if attribute in digits.COLOURS:
        return torch.tensor([c == attribute for c in measured.colour])
    stat, direction, threshold = ATTRIBUTE_TARGETS[attribute]
    return direction * getattr(measured, stat) > direction * threshold


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Mean structural similarity [B] of images [B, 3, H, W] in [0, 1] (grey levels, uniform window)."""
    a, b = a.float().mean(1, keepdim=True), b.float().mean(1, keepdim=True)
    pool = lambda x: F.avg_pool2d(x, window, stride=1)  # noqa: E731
    mu_a, mu_b = pool(a), pool(b)
    var_a, var_b = pool(a * a) - mu_a ** 2, pool(b * b) - mu_b ** 2
    cov = pool(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def rms_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Root-mean-square pixel difference [B] of images in [0, 1]."""
    return (a.float() - b.float()).square().flatten(1).mean(1).sqrt()


def identity_distance(feat_a: torch.Tensor, feat_b: torch.Tensor) -> torch.Tensor:
    """1 − cosine [B] between classifier features: the digit's shape, as a face-identity embedding is for faces.

    The classifier was trained on real digits drawn in random strokes, slants and colours, so its
    features change little with those attributes: unlike pixel RMS, an edit that changes only the
    attribute and keeps the digit scores near 0.
    """
    return 1.0 - torch.nn.functional.cosine_similarity(feat_a.float(), feat_b.float(), dim=-1)


def frechet_distance(feat_a: torch.Tensor, feat_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fit to two feature sets [N, D] (as FID, on the classifier's features)."""
    a, b = feat_a.double(), feat_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    # tr sqrt(ca cb) from the eigenvalues of sqrt(ca) cb sqrt(ca)
    evals, evecs = torch.linalg.eigh(ca)
    root = evecs @ torch.diag(evals.clamp(min=0).sqrt()) @ evecs.T
    inner = torch.linalg.eigvalsh(root @ cb @ root).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + ca.trace() + cb.trace() - 2 * inner)


@dataclass
class Judge:
    """The classifier and the real-digit statistics every score is relative to."""

    classifier: torch.nn.Module
    median_mass: torch.Tensor
    real_features: torch.Tensor

    @classmethod
    def load(cls) -> "Judge":
        """Shipped classifier, class ink masses of the real train digits, features of real held-out digits in random styles."""
        from devkit.digit_classifier import load_classifier
        images, labels = digits.load_mnist()
        train, held = digits.split(labels)
        net = load_classifier()
        natural = digits.natural_slant(images)
        gen = torch.Generator().manual_seed(1234)
        styles = [digits.random_style(float(natural[i]), gen) for i in held]
        with torch.no_grad():
            feats = net.features(digits.to_frame(digits.render(images[held], styles)))
        return cls(net, digits.class_median_mass(images[train], labels[train]), feats)

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(class [B], confidence [B], features [B, 128]) of images [B, 3, 128, 128]."""
        frames = digits.to_frame(images)
        feats = self.classifier.features(frames)
        probs = self.classifier.head(feats).softmax(1)
        conf, cls = probs.max(1)
        return cls, conf, feats

    def measure(self, images: torch.Tensor, classes: torch.Tensor) -> digits.Measured:
        """Pixel attributes of images of the given classes."""
        return digits.measure(images, classes, self.median_mass)
