"""devkit.workflow_api.ui_to_api equals what its reference frontend (1.32.9, ComfyUI v0.3.75's) queues, case by case.

Each workflow is loaded in the frontend as a file drop does and `app.graphToPrompt().output` is
compared with the converter's prompt as JSON text, so value types count (7 vs 7.0) and `_meta`
is compared too. Specimen node types registered in the page only (app.registerNodeDef, the
frontend's own registration path) probe widget kinds that no installed node has.

These cases pin the converter to the frontend it models; they run where that frontend is installed
(the v0.3.75 lane). On every host, test_converter_vs_frontend.py checks the graphs the devkit converts.
"""
import json

import pytest

from devkit import browser
from devkit.workflow_api import FRONTEND_VERSION, WorkflowError, ui_to_api, widget_layout, widget_type
from tests.host.test_workflow_api import UI, pack_edit_ui, stock_txt2img_ui, without_meta

from .conftest import STOCK_CHECKPOINT
from .test_frontend import txt2img

# A node definition as /object_info gives it, with what the installed nodes lack: a COMBO with
# control_after_generate, seed-named INTs with and without the flag, an INT step, a FLOAT with
# round, a multiline dynamic-prompt STRING, a media combo (upload button), forceInput and
# defaultInput inputs, a list default, and input_order different from the definition order.
SPECIMEN = {
    "input": {
        "required": {
            "latent": ["LATENT", {}],
            "mode": ["COMBO", {"options": ["a", "b", "c"], "default": "b", "control_after_generate": True}],
            "noise_seed": ["INT", {"default": 3, "min": 0, "max": 100}],
            "seed": ["INT", {"default": 4, "min": 0, "max": 100, "control_after_generate": False}],
            "width": ["INT", {"default": 64, "min": 4, "max": 1024, "step": 8}],
            "ratio": ["FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.1, "round": 0.01}],
            "text": ["STRING", {"multiline": True, "dynamicPrompts": True}],
            "line": ["STRING", {"default": "x"}],
            "flag": ["BOOLEAN", {"default": True}],
            "image": [["a.png", "b.png"], {"image_upload": True}],
            "forced": ["INT", {"forceInput": True}],
        },
        "optional": {"extra": ["INT", {"default": 2, "defaultInput": True}], "opt_float": ["FLOAT", {}],
                     "list_default": ["INT", {"default": [1, 2]}]},
    },
    "input_order": {"required": ["latent", "text", "mode", "noise_seed", "seed", "width", "ratio", "line", "flag",
                                 "image", "forced"], "optional": ["opt_float", "extra", "list_default"]},
    "output": ["LATENT", "INT"], "output_is_list": [False, False], "output_name": ["LATENT", "INT"],
    "name": "DevkitSpecimen", "display_name": "Specimen", "description": "", "python_module": "devkit",
    "category": "devkit", "output_node": True,
}
UPLOAD_SPECIMEN = {
    "input": {"required": {"pic": [["p.png", "q.png"], {"image_upload": True, "image_folder": "output"}],
                           "n": ["INT", {"default": 1}]}},
    "input_order": {"required": ["pic", "n"]}, "output": ["IMAGE"], "output_is_list": [False], "output_name": ["IMAGE"],
    "name": "DevkitUploadSpecimen", "display_name": "Upload specimen", "description": "", "python_module": "devkit",
    "category": "devkit", "output_node": True,
}
SPECIMENS = {"DevkitSpecimen": SPECIMEN, "DevkitUploadSpecimen": UPLOAD_SPECIMEN}
REGISTER_JS = """async (defs) => {
  for (const [id, def] of Object.entries(defs))
    if (!LiteGraph.registered_node_types[id]) await app.registerNodeDef(id, def)
}"""


def specimen(values) -> dict:
    """One DevkitSpecimen node with these widgets_values (None: the key left out)."""
    ui = UI()
    ui.add("DevkitSpecimen", values)
    return ui.workflow()


def upload_specimens() -> dict:
    """Media combos with a non-input folder: plain, already annotated, and empty (initial file)."""
    ui = UI()
    for value in ("q.png", "p.png [output]", ""):
        ui.add("DevkitUploadSpecimen", [value, "image"])
    return ui.workflow()


def primitives() -> dict:
    """PrimitiveNodes: range merge over two targets, clamping, INT/FLOAT rounding, a combo on two
    samplers, text with widget replacement, one without stored value, one unconnected."""
    ui = UI()
    loader = ui.add("CheckpointLoaderSimple", [STOCK_CHECKPOINT])
    empty = ui.add("EmptyLatentImage", [64, 64, 1])
    image = ui.add("LoadImage", ["missing.png", "image"])
    scale = ui.add("ImageScale", ["nearest-exact", 32, 32, "disabled"])
    ui.link(image, 0, scale, "image", "IMAGE")
    width = ui.add("PrimitiveNode", [3, "fixed"])
    ui.link(width, 0, empty, "width", "INT", widget=True)
    ui.link(width, 0, scale, "width", "INT", widget=True)
    height = ui.add("PrimitiveNode", [100001, "fixed"])
    ui.link(height, 0, scale, "height", "INT", widget=True)
    pos, neg = ui.add("CLIPTextEncode", ["replaced"]), ui.add("CLIPTextEncode", ["neg"])
    ui.link(loader, 1, pos, "clip", "CLIP")
    ui.link(loader, 1, neg, "clip", "CLIP")
    ks = ui.add("KSampler", [11, "fixed", 7, 8.0, "sample_euler", "normal", 1.0])
    adv = ui.add("KSamplerAdvanced", ["enable", 12, "fixed", 7, 8.0, "euler", "karras", 0, 10000, "disable"], title="")
    for node in (ks, adv):
        for name, origin, kind in (("model", loader, "MODEL"), ("positive", pos, "CONDITIONING"),
                                   ("negative", neg, "CONDITIONING"), ("latent_image", empty, "LATENT")):
            ui.link(origin, 0, node, name, kind)
    combo = ui.add("PrimitiveNode", ["heun", "fixed", ""])
    ui.link(combo, 0, ks, "sampler_name", "COMBO", widget=True)
    ui.link(combo, 0, adv, "sampler_name", "COMBO", widget=True)
    text = ui.add("PrimitiveNode", ["seed %KSampler.seed% / %KSamplerAdvanced.noise_seed%\r\n//x"],
                  properties={"Run widget replace on values": True})
    ui.link(text, 0, pos, "text", "STRING", widget=True)
    ui.add("PrimitiveNode", [5, "fixed"])
    ui.link(ui.add("PrimitiveNode", None), 0, adv, "steps", "INT", widget=True)
    for value, name, kind in ((0.123456, "denoise", "FLOAT"), (0.125, "cfg", "FLOAT"), (2.5, "steps", "INT")):
        ui.link(ui.add("PrimitiveNode", [value, "fixed"]), 0, ks, name, kind, widget=True)
    return ui.workflow()


def bypass_and_reroutes() -> dict:
    """Bypassed nodes matched by type (and one without a match), a bypassed Reroute in a chain, a
    Reroute with no input, a node in mode 1, and saved inputs the definition lacks."""
    ui = UI()
    loader = ui.add("CheckpointLoaderSimple", [STOCK_CHECKPOINT])
    pos = ui.add("CLIPTextEncode", ["p"])
    ui.link(loader, 1, pos, "clip", "CLIP")
    empty = ui.add("EmptyLatentImage", [64, 64, 1])
    inject = ui.add("AVIInjectLatent", [7.5, "from capture", "from capture", -1], mode=4)
    ui.link(loader, 0, inject, "model", "MODEL")
    ui.link(pos, 0, inject, "positive", "CONDITIONING")
    ui.link(empty, 0, inject, "latent", "LATENT")
    first, second = ui.add("Reroute", mode=4), ui.add("Reroute")
    ui.link(inject, 0, first, "", "LATENT")
    ui.link(first, 0, second, "", "*")
    upscale = ui.add("LatentUpscaleBy", ["nearest-exact", 1.5], mode=4)
    ui.link(second, 0, upscale, "samples", "LATENT")
    decode = ui.add("VAEDecode", [])
    ui.link(upscale, 0, decode, "samples", "LATENT")
    ui.link(loader, 2, decode, "vae", "VAE")
    unlinked = ui.add("AVIInjectLatent", [7.5, "from capture", "from capture", -1], mode=4)
    ui.link(loader, 0, unlinked, "model", "MODEL")
    decode2 = ui.add("VAEDecode", [])
    ui.link(unlinked, 0, decode2, "samples", "LATENT")
    ui.link(loader, 2, decode2, "vae", "VAE")
    svd = ui.add("AVISVDDecompose", [0.5, "latent"], mode=4)
    ui.link(empty, 0, svd, "latent", "LATENT")
    ui.link(svd, 0, ui.add("AVIScaleSingularValue", [1, 0.5, -1]), "svd", "AVI_SVD")
    empty_reroute = ui.add("Reroute")
    decode3 = ui.add("VAEDecode", [], mode=1)
    ui.link(empty_reroute, 0, decode3, "samples", "LATENT")
    ui.link(loader, 2, decode3, "vae", "VAE")
    extra = ui.add("PreviewImage", [])
    ui.link(decode, 0, extra, "images", "IMAGE")
    ui.link(decode2, 0, extra, "images2", "IMAGE")
    ui.link(decode3, 0, extra, "ghost", "IMAGE", widget=True)
    return ui.workflow()


def text_and_numbers() -> dict:
    """Dynamic prompts without a random choice, file-name replacements, a seed beyond 2**53, integral floats."""
    workflow = txt2img()
    for node in workflow["nodes"]:
        if node["type"] == "KSampler":
            node["widgets_values"] = [2 ** 64 - 1, "fixed", 20.0, 8.0, "euler", "normal", 1]
        elif node["type"] == "CLIPTextEncode":
            node["widgets_values"] = ["a {cat} {dog|dog} /* x */ \\| pipe \\\\ back \\"]
        elif node["type"] == "SaveImage":
            node["widgets_values"] = ["out/%date:yyyy%/%KSampler.seed%_%CLIPTextEncode.text%_%width%"]
    return workflow


def schema_v1() -> dict:
    """The stock graph in workflow schema version 1 (links as objects)."""
    workflow = txt2img()
    keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    workflow.update(version=1, links=[dict(zip(keys, link)) for link in workflow["links"]],
                    state={"lastNodeId": 7, "lastLinkId": 9, "lastGroupId": 0, "lastRerouteId": 0})
    return workflow


def specimen_legacy() -> list:
    """18 values: the count migrateWidgetsValues takes for a list that still holds forceInput values."""
    return ["t", "b", "fixed", "", 5, "fixed", 6, 80, 0.3, "l", True, "a.png", 99, "image", 0.5, 88, [3], "tail"]


WORKFLOWS = {
    "stock_txt2img": txt2img,
    "stock_builder": lambda: stock_txt2img_ui(STOCK_CHECKPOINT),
    "pack_edit": lambda: pack_edit_ui(STOCK_CHECKPOINT),
    "primitives": primitives,
    "bypass_and_reroutes": bypass_and_reroutes,
    "text_and_numbers": text_and_numbers,
    "schema_v1": schema_v1,
    "specimen_all_values": lambda: specimen(["hello // c\r\nworld", "c", "increment", "", 7, "fixed", 9, 96, 0.3,
                                             "y", False, "b.png", 0.25, [5, 6], "image"]),
    "specimen_few_values": lambda: specimen(["t"]),
    "specimen_no_values": lambda: specimen(None),
    "specimen_legacy_values": lambda: specimen(specimen_legacy()),
    "specimen_legacy_count_off_by_one": lambda: specimen(specimen_legacy()[:-1]),
    "upload_folders": upload_specimens,
}


def sample_value(widget, index: int):
    """A stored value for one widget, varied with index so that a shifted value shows."""
    if widget.role != "value":
        return {"control": "fixed", "filter": "", "upload": "image"}[widget.role]
    spec, kind = widget.spec, widget_type(widget.spec)
    low = spec.get("min") if spec.get("min") is not None else 0
    options = spec.get("options") or []
    if kind == "INT":
        return int(low) + index % 3
    if kind == "FLOAT":
        return low
    if kind == "BOOLEAN":
        return index % 2 == 0
    if kind == "COMBO" and options:
        return options[index % len(options)]
    return f"s{index}"


def every_node_type(object_info: dict) -> dict:
    """One node of every type the converter models; even ones with sample values, odd ones with none."""
    ui = UI()
    for name, info in object_info.items():
        try:
            layout = widget_layout(name, info)
        except WorkflowError:
            continue
        n = len(ui.nodes)
        ui.add(name, [sample_value(w, n + i) for i, w in enumerate(layout)] if n % 2 == 0 else None)
    return ui.workflow()


@pytest.fixture(scope="module")
def page(comfy_server, chromium_browser):
    """A page of its own (the specimen types stay out of the shared one)."""
    page = browser.open_frontend(chromium_browser, comfy_server, settle=0.2)
    page.evaluate(REGISTER_JS, SPECIMENS)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def object_info(comfy_server):
    """The server's /object_info plus the specimen definitions the page registered."""
    return {**comfy_server.get("/object_info"), **SPECIMENS}


def frontend_prompt(page, workflow: dict, name: str) -> dict:
    """What the frontend queues after loading the workflow."""
    browser.load_workflow(page, workflow, name=name, settle=0.05)
    return browser.api_prompt(page)


def as_lines(prompt: dict) -> list:
    """The prompt as sorted, indented JSON lines (type-exact; readable diffs)."""
    return json.dumps(prompt, indent=1, sort_keys=True, ensure_ascii=False).splitlines()


def test_the_installed_frontend_is_the_one_the_converter_follows():
    assert browser.FRONTEND_VERSION == FRONTEND_VERSION, "re-read the frontend's sources and update devkit/workflow_api.py"


@pytest.mark.parametrize("name", list(WORKFLOWS))
def test_converter_equals_frontend(page, object_info, name):
    workflow = WORKFLOWS[name]()
    expected = frontend_prompt(page, workflow, name)
    assert expected, "the frontend queued nothing: the case tests nothing"
    assert as_lines(ui_to_api(workflow, object_info)) == as_lines(expected)


def test_every_node_type_gets_the_frontends_widgets_and_defaults(page, object_info):
    """Widget layout, value mapping and defaults of every installed node type (_meta left out: the
    frontend titles untitled nodes from its own English locale, e.g. EmptyHunyuanLatentVideo)."""
    workflow = every_node_type(object_info)
    assert len(workflow["nodes"]) > 300
    expected = frontend_prompt(page, workflow, "every_node_type")
    ours = ui_to_api(workflow, object_info, choose=lambda options: options[0])
    assert as_lines(without_meta(ours)) == as_lines(without_meta(expected))


def test_the_cases_reach_the_frontend_behaviours_they_name(page):
    """The frontend's own answers for a few cases, so the equality above is not about trivial prompts."""
    queued = frontend_prompt(page, primitives(), "primitives")
    assert queued["2"]["inputs"]["width"] == 16 and queued["4"]["inputs"]["width"] == 16, "merged range 16.., clamped"
    assert queued["4"]["inputs"]["height"] == 16384, "clamped to max"
    ks = queued["9"]["inputs"]
    assert (ks["sampler_name"], ks["cfg"], ks["denoise"], ks["steps"]) == ("heun", 0.1, 0.12, 3), \
        "combo primitive; cfg rounded at the step's precision; INT rounded"
    assert queued["7"]["inputs"]["text"] == "seed 11 / 12\n", "widget replacement, comment stripped, CRLF normalised"
    queued = frontend_prompt(page, bypass_and_reroutes(), "bypass")
    assert queued["8"]["inputs"]["samples"] == ["3", 0], "through two bypassed nodes and two Reroutes"
    assert "samples" not in queued["10"]["inputs"] and "svd" not in queued["12"]["inputs"], "bypass without a match"
    assert queued["15"]["inputs"] == {"images": ["8", 0], "images2": ["10", 0]}, "saved extra inputs stay unless they name a widget"
    queued = frontend_prompt(page, specimen(["t"]), "specimen")
    assert queued["1"]["inputs"]["list_default"] == {"__value__": [1, 2]} and "upload" not in queued["1"]["inputs"]
