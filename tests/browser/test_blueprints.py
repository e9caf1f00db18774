"""Both subgraph blueprints, taken from the node library of the real frontend, run to images.

A fresh ComfyUI with only the pack (nothing in models/: the demo model reaches Load Checkpoint by itself). In
the frontend, a blank workflow; the node library's blueprint folder; a click on "AVI attribute edit" and one on
"AVI edit an image", each then placed on the canvas (frontend 1.49 places a clicked item where the canvas is
clicked next, 1.32 at the canvas centre). A Load Checkpoint on the demo model feeds both nodes' model, clip and
vae; the attribute edit's original image is the image the second blueprint edits; Save Image nodes take the
outputs; the prompts, and the size the demo model draws, are typed into the blueprints' widgets. Run; the images
show on the Save Image nodes, and the saved files hold a drawn digit and a visible edit from each blueprint.

The server gives the pack's subgraphs/*.json at /global_subgraphs (app/subgraph_manager.py, in ComfyUI v0.3.75 and
0.33.0); frontend 1.32.9 lists them under "Subgraph Blueprints", 1.49.6 under "Subgraph Blueprints/<category>",
shown in its library's Subgraph Blueprints section as Comfy Blueprints > AVI.
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

ATTRIBUTE_EDIT, IMAGE_EDIT = "AVI attribute edit", "AVI edit an image"
# The folders a user opens in the node library to reach the pack's blueprints, per frontend.
LIBRARY_FOLDERS = {"1.32.9": ("Subgraph Blueprints",), "1.49.6": ("Comfy Blueprints", "AVI")}
PROMPTS = {"original_prompt": "a handwritten 3", "target_prompt": "a bold handwritten 3"}  # digits_bold's edit
SIZE = {"width": 128, "height": 128}  # what the demo model draws (the blueprint starts at SD2's 512)
# Where the canvas is clicked to put each blueprint down (page pixels, right of the library panel).
DROP_AT = {ATTRIBUTE_EDIT: (900, 300), IMAGE_EDIT: (900, 600)}
# Save Image prefixes: which blueprint output each saves.
SAVED = {"attribute_original": (ATTRIBUTE_EDIT, "original"), "attribute_edited": (ATTRIBUTE_EDIT, "edited"),
         "image_original": (IMAGE_EDIT, "original"), "image_edited": (IMAGE_EDIT, "edited")}

# The subgraph nodes on the root graph: {title: {id, inputs, outputs, widgets}}.
PLACED_JS = """() => Object.fromEntries(app.graph.nodes.filter(n => n.isSubgraphNode?.()).map(n => [n.title, {
  id: String(n.id), inputs: n.inputs.map(i => i.name), outputs: n.outputs.map(o => o.name),
  widgets: Object.fromEntries((n.widgets || []).map(w => [w.name, w.value]))}]))"""
# A Load Checkpoint on the demo model into both blueprints, the first's original image into the second, widget
# values typed in (value and callback, as the widget's editor sets them), a Save Image on each output in SAVED.
WIRE_JS = """([titles, ckpt, values, saved]) => {
  const byTitle = t => app.graph.nodes.find(n => n.isSubgraphNode?.() && n.title === t)
  const add = (type, pos) => { const n = LiteGraph.createNode(type); n.pos = pos; app.graph.add(n); return n }
  const set = (node, name, value) => { const w = node.widgets.find(w => w.name === name); w.value = value; w.callback?.(value) }
  const input = (node, name) => node.inputs.findIndex(i => i.name === name)
  const output = (node, name) => node.outputs.findIndex(o => o.name === name)
  const loader = add('CheckpointLoaderSimple', [-500, 0])
  set(loader, 'ckpt_name', ckpt)
  for (const title of titles) {
    const node = byTitle(title)
    ;['MODEL', 'CLIP', 'VAE'].forEach((type, slot) => loader.connect(slot, node, input(node, type.toLowerCase())))
    for (const [name, value] of Object.entries(values[title])) set(node, name, value)
  }
  const [first, second] = titles.map(byTitle)
  first.connect(output(first, 'original'), second, input(second, 'image'))
  Object.entries(saved).forEach(([prefix, [title, name]], k) => {
    const save = add('SaveImage', [1400, 300 * k])
    set(save, 'filename_prefix', 'avi/blueprints/' + prefix)
    byTitle(title).connect(output(byTitle(title), name), save, 0)
  })
  app.graph.setDirtyCanvas(true, true)
  return app.graph.links instanceof Map ? app.graph.links.size : Object.keys(app.graph.links).length
}"""


def library_folders(frontend_version: str) -> tuple:
    """The node library folders that hold the blueprints in this frontend; a frontend not checked here fails."""
    if frontend_version not in LIBRARY_FOLDERS:
        pytest.fail(f"frontend {frontend_version}: the node library path to the blueprints is checked only for "
                    f"{sorted(LIBRARY_FOLDERS)}; open its library and add its folders to LIBRARY_FOLDERS")
    return LIBRARY_FOLDERS[frontend_version]


def widget_values() -> dict:
    """What the test types into each blueprint's widgets."""
    return {ATTRIBUTE_EDIT: {**PROMPTS, **SIZE}, IMAGE_EDIT: dict(PROMPTS)}


def inner_inputs(prompt: dict, blueprint_id: str, class_type: str) -> list:
    """The inputs of the nodes of class_type inside one placed blueprint, in the API prompt ("<id>:<inner id>")."""
    return [node["inputs"] for key, node in sorted(prompt.items())
            if key.startswith(blueprint_id + ":") and node["class_type"] == class_type]


def saved_images(run: dict, output_dir: str) -> dict:
    """{Save Image prefix: float RGB array} of the images the run wrote."""
    saved = {}
    for out in run["executed"]:
        for image in (out.get("output") or {}).get("images", []):
            if image["type"] == "output":
                with Image.open(os.path.join(output_dir, image["subfolder"], image["filename"])) as png:
                    saved[image["filename"].rsplit("_", 2)[0]] = np.asarray(png.convert("RGB"), dtype=np.float32) / 255
    return saved


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    """ComfyUI with the pack in custom_nodes and nothing else: no models, no inputs."""
    with SingleThreadServer(tmp_path_factory.mktemp("blueprint_comfy"), custom_nodes={PACK_NAME: REPO_ROOT}) as server:
        yield server


def test_the_server_offers_both_blueprints(fresh_server):
    ours = [entry["name"] for entry in fresh_server.get("/global_subgraphs").values()
            if entry["info"].get("node_pack") == f"custom_nodes.{PACK_NAME}"]
    assert sorted(ours) == sorted([ATTRIBUTE_EDIT, IMAGE_EDIT])


def test_both_blueprints_from_the_node_library_run_to_images(fresh_server, chromium_browser):
    folders = library_folders(browser.FRONTEND_VERSION)
    page = browser.open_frontend(chromium_browser, fresh_server)
    try:
        page.evaluate("async () => await app.extensionManager.command.execute('Comfy.NewBlankWorkflow')")
        page.wait_for_function("() => app.graph.nodes.length === 0", timeout=30_000)
        page.evaluate("async () => await app.extensionManager.command.execute('Workspace.ToggleSidebarTab.node-library')")
        for folder in folders:
            page.get_by_text(folder, exact=True).first.click()
        for title in (ATTRIBUTE_EDIT, IMAGE_EDIT):
            page.get_by_text(title, exact=True).first.click()
            page.mouse.click(*DROP_AT[title])
            page.wait_for_function(f"() => ({PLACED_JS})()[{title!r}] !== undefined", timeout=30_000)
        placed = page.evaluate(PLACED_JS)
        assert sorted(placed) == [ATTRIBUTE_EDIT, IMAGE_EDIT], placed
        assert placed[ATTRIBUTE_EDIT]["outputs"] == placed[IMAGE_EDIT]["outputs"] == ["original", "edited", "phi"]
        assert placed[IMAGE_EDIT]["inputs"][:4] == ["model", "clip", "vae", "image"], placed

        links = page.evaluate(WIRE_JS, [[ATTRIBUTE_EDIT, IMAGE_EDIT], DIGITS_NAME, widget_values(), SAVED])
        assert links == 3 + 3 + 1 + len(SAVED)
        # As a user looks at the whole graph: the library closed, nothing selected (FitView fits a selection), fitted.
        page.evaluate("async () => await app.extensionManager.command.execute('Workspace.ToggleSidebarTab.node-library')")
        page.evaluate("async () => { app.canvas.deselectAll(); await app.extensionManager.command.execute('Comfy.Canvas.FitView') }")
        browser.screenshot(page, os.path.join(ARTIFACTS, "blueprints_wired.png"))
        # What Run sends: the blueprints' inner nodes, with the typed values where the blueprints route them.
        prompt = browser.api_prompt(page)
        attribute, image = placed[ATTRIBUTE_EDIT]["id"], placed[IMAGE_EDIT]["id"]
        assert [(i["width"], i["height"]) for i in inner_inputs(prompt, attribute, "EmptyLatentImage")] == [(128, 128)]
        for blueprint_id in (attribute, image):
            texts = sorted(i["text"] for i in inner_inputs(prompt, blueprint_id, "CLIPTextEncode"))
            assert texts == sorted(["", *PROMPTS.values()]), texts  # the empty negative, both prompts
            assert len(inner_inputs(prompt, blueprint_id, "AVITrainPhi")) == 1
        assert not any(node["class_type"].startswith("SubgraphBlueprint") for node in prompt.values())

        page.evaluate(RECORD_JS)
        start = time.monotonic()
        page.locator("button").filter(has_text=re.compile(r"^\s*Run\s*$")).first.click()
        page.wait_for_function("() => window.__devkitRun.done !== null", timeout=600_000, polling=500)
        run = page.evaluate("() => window.__devkitRun")
        print(f"\nboth blueprints from the node library: {time.monotonic() - start:.1f} s")
        assert run["done"] == "success", run["done"]
        # The canvas draws (and frontend 1.32 loads) a node's images once on screen: all are, the graph fitted.
        shown = wait_for_previews(page)
        assert len(shown) == len(SAVED) and all(n["shown"] > 0 for n in shown), shown
        browser.screenshot(page, os.path.join(ARTIFACTS, "blueprints_ran.png"), full_detail=False)
    finally:
        page.context.close()

    saved = saved_images(run, os.path.join(fresh_server.base_dir, "output"))
    assert set(saved) == set(SAVED), sorted(saved)
    assert all(image.shape == (128, 128, 3) for image in saved.values())
    assert saved["attribute_original"].std() > 0.1, "a drawn digit"
    for kind in ("attribute", "image"):
        assert np.abs(saved[f"{kind}_edited"] - saved[f"{kind}_original"]).mean() > 0.005, f"{kind}: the edit is visible"
