"""The real frontend boots with the pack installed and loads UI-format workflows as a file drop does."""
import copy
import json
import os
import struct

import pytest

from devkit import browser
from devkit.server import ServerError

from .conftest import ARTIFACTS, PACK_NAME, STOCK_CHECKPOINT, pack_workflows


def _node(id, type, widgets, inputs=(), outputs=(), pos=(0, 0)):
    return {"id": id, "type": type, "pos": list(pos), "size": [300, 100], "flags": {}, "order": id - 1,
            "mode": 0, "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
            "outputs": [{"name": n, "type": t, "links": links} for n, t, links in outputs],
            "properties": {"Node name for S&R": type}, "widgets_values": list(widgets)}


def txt2img() -> dict:
    """Stock text-to-image graph; KSampler's values hold control_after_generate after the seed."""
    nodes = [
        _node(1, "CheckpointLoaderSimple", [STOCK_CHECKPOINT],
              outputs=[("MODEL", "MODEL", [1]), ("CLIP", "CLIP", [2, 3]), ("VAE", "VAE", [8])]),
        _node(2, "CLIPTextEncode", ["a photo of a male person"], inputs=[("clip", "CLIP", 2)],
              outputs=[("CONDITIONING", "CONDITIONING", [4])], pos=(350, 0)),
        _node(3, "CLIPTextEncode", ["blurry"], inputs=[("clip", "CLIP", 3)],
              outputs=[("CONDITIONING", "CONDITIONING", [5])], pos=(350, 200)),
        _node(4, "EmptyLatentImage", [512, 512, 1], outputs=[("LATENT", "LATENT", [6])], pos=(350, 400)),
        _node(5, "KSampler", [42, "fixed", 20, 8, "euler", "normal", 1.0],
              inputs=[("model", "MODEL", 1), ("positive", "CONDITIONING", 4), ("negative", "CONDITIONING", 5),
                      ("latent_image", "LATENT", 6)], outputs=[("LATENT", "LATENT", [7])], pos=(700, 0)),
        _node(6, "VAEDecode", [], inputs=[("samples", "LATENT", 7), ("vae", "VAE", 8)],
              outputs=[("IMAGE", "IMAGE", [9])], pos=(1050, 0)),
        _node(7, "SaveImage", ["ComfyUI"], inputs=[("images", "IMAGE", 9)], pos=(1350, 0)),
    ]
    links = [[1, 1, 0, 5, 0, "MODEL"], [2, 1, 1, 2, 0, "CLIP"], [3, 1, 1, 3, 0, "CLIP"],
             [4, 2, 0, 5, 1, "CONDITIONING"], [5, 3, 0, 5, 2, "CONDITIONING"], [6, 4, 0, 5, 3, "LATENT"],
             [7, 5, 0, 6, 0, "LATENT"], [8, 1, 2, 6, 1, "VAE"], [9, 6, 0, 7, 0, "IMAGE"]]
    return {"last_node_id": 7, "last_link_id": 9, "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {}, "version": 0.4}


def _node_of(workflow, type):
    return next(n for n in workflow["nodes"] if n["type"] == type)


def assert_clean(report, server_url):
    """No missing node, no widget value rejected or changed, nothing unexplained logged."""
    assert report.missing_nodes == [] and report.error_nodes == []
    assert report.widget_problems == []
    assert browser.unexpected_console(report.console, server_url) == []
    assert report.page_errors == []
    assert report.dialogs == [] and report.overlays == []


def test_pack_imports_into_the_server(comfy_server):
    lines = [line for line in comfy_server.log_text().splitlines() if f"custom_nodes/{PACK_NAME}" in line]
    assert lines, comfy_server.log_text()
    assert not any("IMPORT FAILED" in line for line in lines), lines


def test_boot_logs_no_unexplained_error(frontend, comfy_server):
    log = browser.page_log(frontend)
    assert browser.unexpected_console(log.boot_console, comfy_server.url) == []
    assert log.boot_page_errors == []
    # Fresh-user prompts (template browser) must not stand between a test and the canvas.
    assert frontend.evaluate("() => app.extensionManager._p._s.get('dialog').dialogStack.length") == 0


def test_stock_workflow_loads_clean(frontend, comfy_server):
    workflow = txt2img()
    report = browser.load_workflow(frontend, workflow, name="stock_txt2img")
    assert_clean(report, comfy_server.url)
    assert sorted(report.node_types) == sorted(n["type"] for n in workflow["nodes"])


def test_loaded_workflow_queues_with_the_values_it_was_saved_with(frontend, comfy_server):
    browser.load_workflow(frontend, txt2img(), name="stock_txt2img")
    prompt = browser.api_prompt(frontend)
    sampler = next(n["inputs"] for n in prompt.values() if n["class_type"] == "KSampler")
    assert {k: v for k, v in sampler.items() if not isinstance(v, list)} == {
        "seed": 42, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}
    # The server accepts the prompt; it then fails where it must: the checkpoint is an empty file.
    prompt_id = comfy_server.queue_prompt(prompt)
    with pytest.raises(ServerError, match=r"\(CheckpointLoaderSimple\).*header"):
        comfy_server.wait_for(prompt_id, timeout=60)


def test_server_runs_a_prompt_into_its_base_directory(comfy_server):
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "server_check"}}}
    entry = comfy_server.wait_for(comfy_server.queue_prompt(prompt), timeout=60)
    (image,) = entry["outputs"]["2"]["images"]
    assert os.path.isfile(os.path.join(comfy_server.base_dir, "output", image["subfolder"], image["filename"]))
    del prompt["1"]["inputs"]["color"]
    with pytest.raises(ServerError, match="Required input is missing: color"):
        comfy_server.queue_prompt(prompt)


def test_unknown_node_type_is_reported_missing(frontend, comfy_server):
    workflow = txt2img()
    _node_of(workflow, "SaveImage")["type"] = "AVINoSuchNode"
    report = browser.load_workflow(frontend, workflow, name="unknown_node")
    assert report.missing_nodes == ["AVINoSuchNode"]
    assert report.error_nodes == [{"id": 7, "type": "AVINoSuchNode"}]
    if report.dialogs:  # frontend 1.32: the missing-nodes dialog
        assert [d["key"] for d in report.dialogs] == ["global-missing-nodes"] and report.overlays == []
        assert "AVINoSuchNode" in report.dialogs[0]["text"]
    else:  # frontend 1.49: an error overlay over the canvas
        assert len(report.overlays) == 1 and "Missing node: AVINoSuchNode" in report.overlays[0]
    assert browser.unexpected_console(report.console, comfy_server.url) == []


def test_combo_values_outside_the_options_are_rejected(frontend):
    workflow = txt2img()
    _node_of(workflow, "CheckpointLoaderSimple")["widgets_values"] = ["not_installed.safetensors"]
    _node_of(workflow, "KSampler")["widgets_values"][4] = "no_such_sampler"
    report = browser.load_workflow(frontend, workflow, name="bad_combos")
    assert report.missing_nodes == []
    rejected = {(p["type"], p["widget"]): p["actual"] for p in report.rejected_widgets}
    assert rejected == {("CheckpointLoaderSimple", "ckpt_name"): "not_installed.safetensors",
                        ("KSampler", "sampler_name"): "no_such_sampler"}
    assert STOCK_CHECKPOINT in report.rejected_widgets[0]["options"]


def test_values_without_control_after_generate_shift_and_are_reported(frontend):
    workflow = txt2img()
    _node_of(workflow, "KSampler")["widgets_values"] = [42, 20, 8, "euler", "normal", 1.0]
    report = browser.load_workflow(frontend, workflow, name="shifted")
    by_widget = {p["widget"]: p for p in report.widget_problems}
    assert by_widget["control_after_generate"]["actual"] == 20
    assert by_widget["control_after_generate"]["reason"] == "not among the combo options"
    assert by_widget["sampler_name"]["actual"] == "normal"


def test_api_format_json_is_not_taken_for_a_ui_workflow(frontend):
    api_format = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}
    with pytest.raises(RuntimeError, match="did not load 'api_format' as a UI workflow"):
        browser.load_workflow(frontend, api_format, name="api_format")


def test_load_is_idempotent(frontend, comfy_server):
    dirty = txt2img()
    _node_of(dirty, "SaveImage")["type"] = "AVINoSuchNode"
    browser.load_workflow(frontend, dirty, name="dirty")
    first = browser.load_workflow(frontend, txt2img(), name="again")
    second = browser.load_workflow(frontend, copy.deepcopy(txt2img()), name="again")
    for report in (first, second):
        assert_clean(report, comfy_server.url)
        assert len(report.node_types) == 7


def test_screenshot_is_a_png_of_the_viewport(frontend):
    browser.load_workflow(frontend, txt2img(), name="stock_txt2img")
    path = browser.screenshot(frontend, os.path.join(ARTIFACTS, "stock_txt2img.png"))
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (browser.VIEWPORT["width"], browser.VIEWPORT["height"])
    assert os.path.getsize(path) > 10_000  # a drawn canvas, not a blank page


PACK_WORKFLOWS = pack_workflows()
if PACK_WORKFLOWS:  # defined only when the pack ships workflows, so nothing is reported skipped
    @pytest.mark.parametrize("path", PACK_WORKFLOWS, ids=os.path.basename)
    def test_pack_workflow_loads_clean(frontend, comfy_server, path):
        with open(path) as f:
            workflow = json.load(f)
        name = os.path.splitext(os.path.basename(path))[0]
        report = browser.load_workflow(frontend, workflow, name=name)
        browser.screenshot(frontend, os.path.join(ARTIFACTS, f"{name}.png"))
        assert_clean(report, comfy_server.url)
