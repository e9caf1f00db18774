"""The benchmark's judge of people images: a small CNN fit on real emoji renders, never on generated images.

Two branches over a shared stem, at 64 px (the people model's drawing resolution):
- identity: role, drawing style and skin tone, what an attribute edit must keep; its 128 features give the identity
  distance (1 − cosine), as a face-identity embedding does for photos;
- attributes: gender, age and hair, what an edit asks for.
Both feature sets together feed the Fréchet distance to real renders.
Usage: python devkit/people_scorer.py [--steps 2500] [--seed 0]   (writes bench/people_scorer.safetensors)
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(REPO_ROOT, "bench", "people_scorer.safetensors")
sys.path.insert(0, REPO_ROOT)

from devkit import people  # noqa: E402

ROLES = ("",) + tuple(sorted({
    "farmer", "cook", "feeding baby", "student", "singer", "artist", "teacher", "factory worker", "technologist",
    "office worker", "mechanic", "scientist", "astronaut", "firefighter", "health worker", "judge", "pilot", "police officer",
    "with veil", "wearing turban", "construction worker", "tipping hand", "guard", "gesturing no", "gesturing ok", "bowing",
    "raising hand", "frowning", "pouting", "facepalming", "pregnant", "in tuxedo", "shrugging", "deaf", "with beard",
    "detective", "with crown", "with skullcap", "with headscarf"}))
HEADS = {"role": ROLES, "style": people.STYLES, "skin": people.SKINS,
         "gender": people.GENDERS, "age": people.AGES, "hair": people.HAIRS}
IDENTITY_HEADS = ("role", "style", "skin")
ATTRIBUTE_HEADS = ("gender", "age", "hair")


def conv(c_in: int, c_out: int, stride: int = 1) -> list:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


def branch() -> nn.Sequential:
    """16 px features [B, 64, 16, 16] -> [B, 128]."""
    return nn.Sequential(*conv(64, 128), nn.MaxPool2d(2), *conv(128, 128), *conv(128, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 128), nn.ReLU())


class PeopleScorer(nn.Module):
    """Convolutions at 64 and 32 px with batch norm, then the identity and attribute branches, one linear head each."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*conv(3, 32), *conv(32, 64, stride=2), *conv(64, 64), nn.MaxPool2d(2))
        self.identity = branch()
        self.attributes = branch()
        self.heads = nn.ModuleDict({name: nn.Linear(128, len(values)) for name, values in HEADS.items()})

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(identity [B, 128], attribute [B, 128]) features of images [B, 3, 128, 128] in [0, 1]."""
        h = self.stem(F.avg_pool2d(images.float(), 2) - 0.5)
        return self.identity(h), self.attributes(h)

    def forward(self, images: torch.Tensor) -> dict:
        """Logits per head."""
        ident, attrs = self.features(images)
        return {name: head(ident if name in IDENTITY_HEADS else attrs) for name, head in self.heads.items()}


def targets(data: people.PeopleData, idx: torch.Tensor) -> dict:
    """Class indices per head of drawings idx."""
    chosen = [data.drawings[i] for i in idx.tolist()]
    return {name: people.labels(chosen, name, values) for name, values in HEADS.items()}


def degrade(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """What a VAE round trip may do to a render: a softer image (half the images) and a little noise."""
    soft = F.interpolate(F.avg_pool2d(images, 4), scale_factor=4.0, mode="bilinear", align_corners=False)
    pick = (torch.rand(images.shape[0], 1, 1, 1, generator=gen) < 0.5).float()
    mixed = pick * (0.5 * images + 0.5 * soft) + (1 - pick) * images
    return (mixed + 0.02 * torch.randn(images.shape, generator=gen)).clamp(0, 1)


def accuracy(net: PeopleScorer, data: people.PeopleData, seed: int, count: int = 1024) -> dict:
    """Per head, on held-out drawings in random layouts: accuracy, and balanced accuracy (the mean of each class's recall,
    so that rare classes such as old age or red hair count as much as common ones)."""
    gen = torch.Generator().manual_seed(seed)
    images, idx, _ = data.batch(count, gen, held=True)
    with torch.no_grad():
        logits = net(images)
    want = targets(data, idx)
    out = {}
    for name in HEADS:
        right = logits[name].argmax(1) == want[name]
        recalls = [float(right[want[name] == c].float().mean()) for c in want[name].unique().tolist()]
        out[name] = {"accuracy": round(float(right.float().mean()), 4), "balanced": round(sum(recalls) / len(recalls), 4)}
    return out


def train(data: people.PeopleData, steps: int, seed: int, batch: int = 64) -> PeopleScorer:
    torch.manual_seed(seed)
    net = PeopleScorer()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    t0 = time.time()
    for step in range(1, steps + 1):
        images, idx, _ = data.batch(batch, gen)
        logits = net(degrade(images, gen))
        want = targets(data, idx)
        loss = sum(F.cross_entropy(logits[name], want[name]) for name in HEADS)
        for g in opt.param_groups:
            g["lr"] = 3e-3 * min(1.0, step / 100) * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * step / steps)).item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == 1:
            print(f"scorer step {step}/{steps}: loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    return net.eval()


def load(path: str = WEIGHTS) -> PeopleScorer:
    """The shipped scorer in eval mode."""
    from safetensors.torch import load_file
    net = PeopleScorer()
    net.load_state_dict(load_file(path))
    return net.eval()


def main(argv=None) -> int:
    from safetensors.torch import save_file
    from devkit import people_sources
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=WEIGHTS)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = people_sources.load()
    net = train(data, args.steps, args.seed)
    acc = accuracy(net, data, seed=1234)
    print("held-out accuracy:", acc)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, args.out,
              metadata={"script": "devkit/people_scorer.py", "seed": str(args.seed), "steps": str(args.steps),
                        "held_out_accuracy": json.dumps(acc), "data": json.dumps(people_sources.LICENCES)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
