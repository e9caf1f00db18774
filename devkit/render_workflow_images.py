"""Render each shipped workflow as the ComfyUI frontend shows it: template thumbnails and a README shot.

Usage: python devkit/render_workflow_images.py [--only NAME]
Writes example_workflows/<name>.jpg (the frontend's template browser shows /api/workflow_templates/
<pack>/<name>.jpg beside each template) and docs/sd21_young.jpg, from headless Chromium on the
embedded server. Needs `make env`.
"""
import argparse
import json
import os
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from devkit import browser  # noqa: E402
from devkit.demo import example_input_bytes  # noqa: E402
from devkit.server import ComfyServer  # noqa: E402

WORKFLOW_DIR = os.path.join(REPO_ROOT, "example_workflows")
README_SHOT = ("sd21_young", os.path.join(REPO_ROOT, "docs", "sd21_young.jpg"))
THUMBNAIL_WIDTH = 768
# Empty stand-ins so the loaders show the workflows' own file names instead of a missing model (the pack
# offers its demo model itself).
MODELS = {"checkpoints/v2-1_512-ema-pruned.safetensors": b"", "checkpoints/sd_xl_base_1.0.safetensors": b"",
          "checkpoints/flux1-dev-fp8.safetensors": b"", "avi/young.safetensors": b""}



# Bounds of every node and group, then litegraph's own fit (DragAndScale.fitToBounds).
FIT_JS = """() => {
  const g = app.graph; let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  const grow = (x, y, w, h) => { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + w); y1 = Math.max(y1, y + h); };
  for (const n of g._nodes) grow(n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT, n.size[0], n.size[1] + LiteGraph.NODE_TITLE_HEIGHT);
  for (const grp of g._groups) grow(...grp._bounding);
  app.canvas.ds.fitToBounds([x0 - 20, y0 - 20, x1 - x0 + 40, y1 - y0 + 40], { zoom: 1 });
  app.canvas.setDirty(true, true);
}"""
# Only the graph: every element that is neither the canvas, a node's DOM widget (prompt text,
# notes) nor one of their ancestors is hidden, and litegraph's render statistics are switched off.
HIDE_CHROME_JS = """() => {
  const canvas = app.canvas.canvas;
  for (const el of document.querySelectorAll('body *')) {
    const keep = el.contains(canvas) || el.closest('.dom-widget') || el.querySelector('.dom-widget');
    if (!keep) el.style.visibility = 'hidden';
  }
  app.canvas.show_info = false;
  app.canvas.setDirty(true, true);
}"""

def to_jpeg(png_path: str, jpg_path: str, width=None) -> None:
    """Write png_path as a JPEG (optionally scaled to width), atomically."""
    from PIL import Image
    with Image.open(png_path) as image:
        image = image.convert("RGB")
        if width is not None and image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        tmp = f"{jpg_path}.{os.getpid()}.tmp"
        image.save(tmp, "JPEG", quality=85, optimize=True)
        os.replace(tmp, jpg_path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="one workflow name")
    args = parser.parse_args(argv)
    names = sorted(f[:-5] for f in os.listdir(WORKFLOW_DIR) if f.endswith(".json"))
    if args.only:
        names = [n for n in names if n == args.only]
    os.makedirs(os.path.dirname(README_SHOT[1]), exist_ok=True)
    with tempfile.TemporaryDirectory() as base, \
            ComfyServer(base, custom_nodes={"avi-latent-svd": REPO_ROOT}, models=MODELS, inputs=example_input_bytes()) as server, \
            browser.chromium() as chromium:
        page = browser.open_frontend(chromium, server)
        for name in names:
            with open(os.path.join(WORKFLOW_DIR, f"{name}.json"), encoding="utf-8") as f:
                browser.load_workflow(page, json.load(f), f"{name}.json")
            page.evaluate(HIDE_CHROME_JS)
            page.evaluate(FIT_JS)
            png = browser.screenshot(page, os.path.join(base, f"{name}.png"))
            to_jpeg(png, os.path.join(WORKFLOW_DIR, f"{name}.jpg"), THUMBNAIL_WIDTH)
            if name == README_SHOT[0]:
                to_jpeg(png, README_SHOT[1])
            print(f"rendered {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
