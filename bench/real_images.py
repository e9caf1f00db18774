"""Real digits the tiny model never saw (devkit/digits.split's held-out set), as images and as files Load Image reads."""
import os
import sys

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from devkit import digits  # noqa: E402

PLAIN = digits.Style(0.0, 0.0, "white")  # the digit's own stroke and slant, white ink: what "a handwritten N" draws


def held_out_digits(count: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [count, 3, 128, 128] in [0, 1], labels): held-out real digits in turn over the classes, plain style."""
    images, labels = digits.load_mnist()
    _, held = digits.split(labels)
    by_class = [held[labels[held] == c] for c in range(10)]
    picked = [by_class[(offset + i) % 10][(offset + i) // 10] for i in range(count)]
    index = torch.stack(picked)
    return digits.render(images[index], [PLAIN] * count), labels[index]


def save_png(image: torch.Tensor, path: str) -> str:
    """One image [3, H, W] in [0, 1] as an 8-bit RGB PNG; returns path."""
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray((image.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype("uint8")).save(path)
    return path


def to_input_folder(images: torch.Tensor, prefix: str) -> list[str]:
    """Each image saved as <prefix>_<i>.png in the booted host's input folder; the names Load Image lists them by."""
    import folder_paths
    folder = folder_paths.get_input_directory()
    return [os.path.basename(save_png(img, os.path.join(folder, f"{prefix}_{i}.png"))) for i, img in enumerate(images)]
