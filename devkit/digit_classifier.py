"""The benchmark's judge of digit identity: a small CNN fit on real MNIST digits (devkit/train_tiny_digits.py)."""
import os

import torch
from torch import nn

WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "digit_classifier.safetensors")


class DigitClassifier(nn.Module):
    """Two conv layers and two linear ones on 28x28 ink masks; `features` is the 64-d layer a Fréchet distance uses."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, 64] features of ink masks [B, 28, 28]."""
        return self.fc(self.conv(frames.unsqueeze(1)))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Class logits [B, 10]."""
        return self.head(self.features(frames))


def load_classifier(path: str = WEIGHTS) -> DigitClassifier:
    """The shipped classifier in eval mode."""
    from safetensors.torch import load_file
    net = DigitClassifier()
    net.load_state_dict(load_file(path))
    return net.eval()
