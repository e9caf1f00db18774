"""One ComfyUI server with the pack installed and one chromium page on its frontend, shared by the
tests of this folder and stopped after them."""
import glob
import json
import os

import pytest

from devkit import browser
from devkit.demo import example_input_bytes
from devkit.server import REPO_ROOT, ComfyServer

PACK_NAME = "avi-latent-svd"
WORKFLOW_DIR = os.path.join(REPO_ROOT, "example_workflows")
ARTIFACTS = os.path.join(REPO_ROOT, "test-artifacts", "browser")
STOCK_CHECKPOINT = "tiny.safetensors"
# Loader nodes whose first widget names a file in a model folder. The frontend only lists file
# names, so an empty file per referenced name makes those combos valid.
MODEL_LOADERS = {
    "CheckpointLoaderSimple": "checkpoints",
    "VAELoader": "vae",
    "LoraLoader": "loras",
    "LoraLoaderModelOnly": "loras",
    "AVILoadPhi": "avi",
}

API_JS = "(app.api || window.comfyAPI.api.api)"  # the frontend's api object (a module export, kept on app by 1.49)
RECORD_JS = f"""() => {{
  window.__devkitRun = {{executed: [], done: null}}
  const api = {API_JS}
  api.addEventListener('executed', e => window.__devkitRun.executed.push(e.detail))
  api.addEventListener('execution_success', () => window.__devkitRun.done = 'success')
  api.addEventListener('execution_error', e => window.__devkitRun.done = 'error: ' + JSON.stringify(e.detail).slice(0, 2000))
}}"""
# The preview each SaveImage node shows: its images, loaded.
SHOWN_JS = """() => app.graph.nodes.filter(n => n.type === 'SaveImage')
  .map(n => ({id: String(n.id), shown: (n.imgs || []).filter(i => i.complete && i.naturalWidth > 0).length}))"""
# Fits the whole graph in view and asks for a frame each poll: the canvas loads a node's images as it draws it on
# screen, and a Save Image node that grows to its preview after a fit may need the view fitted again.
SHOWING_JS = f"""() => {{
  app.canvas.deselectAll()
  app.extensionManager.command.execute('Comfy.Canvas.FitView')
  app.canvas.setDirty(true, true)
  return ({SHOWN_JS})().every(n => n.shown > 0)
}}"""


def wait_for_previews(page, timeout_ms: int = 60_000) -> list:
    """Waits until every Save Image node shows its images; the nodes' state when it is not so in time."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(SHOWING_JS, timeout=timeout_ms, polling=1000)
    except PlaywrightTimeout as error:
        raise AssertionError(f"Save Image previews not shown in {timeout_ms} ms: {page.evaluate(SHOWN_JS)}") from error
    return page.evaluate(SHOWN_JS)


class SingleThreadServer(ComfyServer):
    """Small tensors run faster on one thread than on two contended ones."""

    def environment(self) -> dict:
        return dict(super().environment(), OMP_NUM_THREADS="1")


def pack_workflows() -> list:
    """The pack's UI-format workflows (example_workflows/*.json), sorted."""
    return sorted(glob.glob(os.path.join(WORKFLOW_DIR, "*.json")))


def placeholder_models(paths) -> dict:
    """{folder/name: b""} for every model file the workflows at paths name in a loader node."""
    models = {}
    for path in paths:
        with open(path) as f:
            workflow = json.load(f)
        for node in workflow.get("nodes", []):
            folder, values = MODEL_LOADERS.get(node.get("type")), node.get("widgets_values")
            if folder and isinstance(values, list) and values and isinstance(values[0], str):
                models[f"{folder}/{values[0]}"] = b""
    return models


@pytest.fixture(scope="package")
def comfy_server(tmp_path_factory):
    """ComfyUI with the pack under custom_nodes/avi-latent-svd and the models the workflows name."""
    models = {f"checkpoints/{STOCK_CHECKPOINT}": b"", **placeholder_models(pack_workflows())}
    base = tmp_path_factory.mktemp("comfy_frontend")
    with ComfyServer(base, custom_nodes={PACK_NAME: REPO_ROOT}, models=models, inputs=example_input_bytes()) as server:
        yield server


@pytest.fixture(scope="package")
def chromium_browser():
    if not os.path.exists(browser.CHROMIUM):
        raise RuntimeError(f"{browser.CHROMIUM} is missing: `make env` installs it (target browser-deps)")
    with browser.chromium() as b:
        yield b


@pytest.fixture(scope="package")
def frontend(comfy_server, chromium_browser):
    """A page on the frontend, booted and ready; load_workflow resets it between workflows."""
    page = browser.open_frontend(chromium_browser, comfy_server)
    yield page
    page.context.close()
