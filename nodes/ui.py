"""Feedback on the canvas: text under a node, and matplotlib figures as IMAGE tensors."""
import logging

import numpy as np
import torch

CATEGORY = "AVI"
log = logging.getLogger("avi")


def show_text(node_id, text: str) -> None:
    """Write text under the node in the UI (when a server runs) and to the log."""
    log.info("%s", text)
    try:
        from server import PromptServer
    except ImportError:
        return
    server = getattr(PromptServer, "instance", None)
    if server is not None and node_id is not None:
        server.send_progress_text(text, node_id)


def new_figure(width_in: float = 6.4, height_in: float = 3.6):
    """A matplotlib figure on the Agg backend (no display needed)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")


def figure_to_image(fig) -> torch.Tensor:
    """IMAGE [1, H, W, 3] in [0, 1] from a figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba(), dtype=np.float32)[..., :3] / 255.0
    return torch.from_numpy(rgba.copy()).unsqueeze(0)
