"""AVI Image Grid: lay out a ρ sweep (or any batch) as one captioned image."""
import numpy as np
import torch
from comfy_api.v0_0_2 import io

from .schema import schema
from .ui import CATEGORY
from .widgets import AVINode


def cell_positions(count: int, labels: list, columns: int) -> tuple[list, int, int]:
    """(row, column) per image, rows, columns.

    With one label per column (columns 0 and a batch that divides evenly) the batch is read
    ρ-major, as AVI Integrate returns it: column = ρ, row = seed. Otherwise row by row.
    """
    if columns == 0 and labels and count % len(labels) == 0:
        rows = count // len(labels)
        return [(i % rows, i // rows) for i in range(count)], rows, len(labels)
    cols = min(columns, count) if columns > 0 else count
    return [divmod(i, cols) for i in range(count)], -(-count // cols), cols


def caption_font(size: int):
    """DejaVu Sans from matplotlib (which the pack's plots need anyway): PIL's own default font has no Greek, so no ρ."""
    from PIL import ImageFont

    try:
        from matplotlib import font_manager
        return ImageFont.truetype(font_manager.findfont("DejaVu Sans", fallback_to_default=True), size)
    except (ImportError, OSError, ValueError):
        return ImageFont.load_default(size=size)


def caption_strip(text: str, width: int, height: int) -> np.ndarray:
    """A white strip [height, width, 3] with dark centred text."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    font = caption_font(max(10, height * 3 // 5))
    box = draw.textbbox((0, 0), text, font=font)
    draw.text(((width - (box[2] - box[0])) / 2, (height - (box[3] - box[1])) / 2 - box[1]), text, fill=(20, 20, 20), font=font)
    return np.asarray(strip, dtype=np.float32) / 255.0


def make_grid(images: torch.Tensor, labels: list, columns: int, padding: int) -> torch.Tensor:
    """[1, H', W', 3] grid of a [N, H, W, 3] batch with a caption strip over the columns when labels fit them."""
    n, h, w, _ = images.shape
    positions, rows, cols = cell_positions(n, labels, columns)
    column_labels = labels if len(labels) == cols else []
    caption = max(16, h // 12) if column_labels else 0
    out = np.ones((caption + rows * h + (rows - 1) * padding, cols * w + (cols - 1) * padding, 3), dtype=np.float32)
    for i, (r, c) in enumerate(positions):
        top, left = caption + r * (h + padding), c * (w + padding)
        out[top:top + h, left:left + w] = images[i].cpu().float().numpy()
    for c, text in enumerate(column_labels):
        out[:caption, c * (w + padding):c * (w + padding) + w] = caption_strip(text, w, caption)
    return torch.from_numpy(out).unsqueeze(0)


class AVIImageGrid(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVIImageGrid",
            display_name="AVI Image Grid",
            category=CATEGORY,
            description="Arranges a batch of images as one grid image with captions, e.g. a ρ sweep from AVI Integrate "
                        "(one column per ρ, one row per seed).",
            inputs=[
                io.Image.Input("images", tooltip="The batch to lay out (for a sweep: the decoded y_pred batch, ρ-major)."),
                io.String.Input("labels", force_input=True, optional=True,
                                tooltip="Comma-separated column captions; connect AVI Integrate's rho_labels."),
                io.Int.Input("columns", default=0, min=0, max=64,
                             tooltip="Images per row; 0 makes one column per label (or one row when there are no labels)."),
                io.Int.Input("padding", default=8, min=0, max=256, tooltip="White space between images, in pixels."),
            ],
            outputs=[io.Image.Output("grid", display_name="grid", tooltip="One image holding the whole batch.")],
        )

    @classmethod
    def execute(cls, images, columns, padding, labels=None) -> io.NodeOutput:
        if images.ndim != 4 or images.shape[-1] not in (3, 4):
            raise ValueError(f"images must be an IMAGE batch [N, H, W, 3]; got shape {tuple(images.shape)}")
        names = [t.strip() for t in (labels or "").split(",") if t.strip()]
        return io.NodeOutput(make_grid(images[..., :3], names, columns, padding))
