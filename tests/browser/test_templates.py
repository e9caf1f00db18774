"""A fresh ComfyUI with only the pack installed: a digits template opened from the template browser runs to images.

Nothing is placed in models/: the pack's demo model reaches Load Checkpoint by itself (nodes/demo_models.py).
The user's steps are taken in the real frontend: Browse Templates, the pack's category, the template's card
(its thumbnail shown), Run; the images then show on the SaveImage nodes, and the saved files hold a visible edit.
"""
import os
import re
import time

import numpy as np
import pytest
from PIL import Image

from devkit import browser
from devkit.demo import DIGITS_NAME
from devkit.server import REPO_ROOT

from .conftest import ARTIFACTS, PACK_NAME, RECORD_JS, SingleThreadServer, wait_for_previews

TEMPLATE = "digits_bold"
# The card around a template's title shows a loaded picture as wide as the pack's thumbnails.
THUMBNAIL_JS = """(title) => {
  for (let e = title; e; e = e.parentElement) {
    const img = e.querySelector('img')
    if (img) return img.complete && img.naturalWidth === 768
  }
  return false
}"""


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    """ComfyUI with the pack in custom_nodes and nothing else: no models, no inputs."""
    with SingleThreadServer(tmp_path_factory.mktemp("fresh_comfy"), custom_nodes={PACK_NAME: REPO_ROOT}) as server:
        yield server


def test_the_demo_model_is_offered_with_nothing_in_models(fresh_server):
    listed = fresh_server.get("/object_info/CheckpointLoaderSimple")["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert DIGITS_NAME in listed
    models = os.path.join(fresh_server.base_dir, "models")
    assert [f for _, _, files in os.walk(models) for f in files] == [], "nothing was placed in models/"


def test_a_template_from_the_template_browser_runs_to_images(fresh_server, chromium_browser):
    page = browser.open_frontend(chromium_browser, fresh_server)
    try:
        page.evaluate(RECORD_JS)
        # Workflow > Browse Templates runs this command; the pack's templates are under its folder name.
        page.evaluate("async () => await app.extensionManager.command.execute('Comfy.BrowseTemplates')")
        page.get_by_text(PACK_NAME, exact=True).first.click()
        card = page.get_by_text(TEMPLATE, exact=True).first
        card.wait_for(timeout=30_000)
        card.scroll_into_view_if_needed()  # the cards load their thumbnails once on screen
        # The card's picture is the template's .jpg (768 px wide; frontend 1.49 shows it through a blob: URL).
        page.wait_for_function(THUMBNAIL_JS, arg=card.element_handle(), timeout=30_000)
        card.click()
        page.wait_for_function("() => app.graph.nodes.some(n => n.type === 'AVITrainPhi')", timeout=60_000)
        page.wait_for_timeout(500)
        loaded = page.evaluate("""() => {
          const loader = app.graph.nodes.find(n => n.type === 'CheckpointLoaderSimple'), w = loader.widgets[0]
          let options = w.options.values
          if (typeof options === 'function') options = options(w, loader)
          return {ckpt: w.value, options, errors: app.graph.nodes.filter(n => n.has_errors).map(n => n.type),
                  dialogs: app.extensionManager._p._s.get('dialog').dialogStack.map(d => d.key)}
        }""")
        assert loaded["ckpt"] == DIGITS_NAME and DIGITS_NAME in loaded["options"], loaded
        assert loaded["errors"] == [] and loaded["dialogs"] == [], "no missing node or model, the browser closed"

        start = time.monotonic()
        page.locator("button").filter(has_text=re.compile(r"^\s*Run\s*$")).first.click()
        page.wait_for_function("() => window.__devkitRun.done !== null", timeout=600_000, polling=500)
        run = page.evaluate("() => window.__devkitRun")
        print(f"\n{TEMPLATE} from the template browser: {time.monotonic() - start:.1f} s")
        assert run["done"] == "success", run["done"]
        # As a user looks at the whole graph: the canvas draws (and frontend 1.32 loads) a node's images once on screen.
        shown = wait_for_previews(page)
        assert len(shown) >= 4 and all(n["shown"] > 0 for n in shown), shown
        browser.screenshot(page, os.path.join(ARTIFACTS, f"template_{TEMPLATE}_ran.png"), full_detail=False)
    finally:
        page.context.close()

    saved = {}
    for out in run["executed"]:
        for image in (out.get("output") or {}).get("images", []):
            if image["type"] == "output":
                path = os.path.join(fresh_server.base_dir, "output", image["subfolder"], image["filename"])
                with Image.open(path) as png:
                    saved[image["filename"].rsplit("_", 2)[0]] = np.asarray(png.convert("RGB"), dtype=np.float32) / 255
    assert {"original", "edited", "side_by_side", "rho_sweep"} <= set(saved), sorted(saved)
    assert saved["original"].shape == saved["edited"].shape == (128, 128, 3)
    assert saved["original"].std() > 0.1, "a drawn digit"
    assert np.abs(saved["edited"] - saved["original"]).mean() > 0.005, "the edit is visible"
    assert os.path.isfile(os.path.join(fresh_server.base_dir, "models", "avi", "digits_bold.safetensors")), "Φ saved"
