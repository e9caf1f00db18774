"""UI-format workflows -> API prompts that ComfyUI accepts and runs; the workflow checker; the CLI.

The workflow builders here are shared with tests/browser/test_converter_vs_frontend.py, which
proves the conversion equal to the real frontend's.
"""
import copy
import datetime
import json

import pytest

from devkit import convert_workflow
from devkit.workflow_api import WorkflowError, dynamic_prompt, substitute, ui_to_api
from devkit.workflow_check import check_workflow

SEED = 11
STEPS = 6
ORIGINAL, NEGATIVE = "a photo of a male person", "blurry"


class UI:
    """A UI-format workflow (version 0.4) under construction: nodes get ids 1, 2, ... in order."""

    def __init__(self):
        self.nodes, self.links = [], []

    def add(self, type, widgets=None, *, mode=0, title=None, properties=None) -> dict:
        """Append a node; widgets is its widgets_values list (None leaves the key out)."""
        node = {"id": len(self.nodes) + 1, "type": type, "pos": [len(self.nodes) * 50, 0], "size": [300, 100],
                "flags": {}, "order": len(self.nodes), "mode": mode, "inputs": [], "outputs": [],
                "properties": dict(properties or {})}
        if widgets is not None:
            node["widgets_values"] = list(widgets)
        if title is not None:
            node["title"] = title
        self.nodes.append(node)
        return node

    def link(self, origin: dict, slot: int, target: dict, name: str, type: str, widget=False) -> int:
        """Connect origin's output slot to target's input name (widget=True: a widget input); the link id."""
        link_id = len(self.links) + 1
        while len(origin["outputs"]) <= slot:
            origin["outputs"].append({"name": type, "type": type, "links": []})
        origin["outputs"][slot]["links"].append(link_id)
        target["inputs"].append({"name": name, "type": type, "link": link_id, **({"widget": {"name": name}} if widget else {})})
        self.links.append([link_id, origin["id"], slot, target["id"], len(target["inputs"]) - 1, type])
        return link_id

    def workflow(self) -> dict:
        """The workflow as the frontend saves it."""
        return {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {}, "extra": {}, "version": 0.4}


def sampler_inputs(ui: UI, node: dict, model: dict, positive: dict, negative: dict) -> None:
    """Link model, positive and negative into a sampler-like node."""
    ui.link(model, 0, node, "model", "MODEL")
    ui.link(positive, 0, node, "positive", "CONDITIONING")
    ui.link(negative, 0, node, "negative", "CONDITIONING")


def stock_txt2img_ui(ckpt: str, seed=SEED, steps=STEPS) -> dict:
    """Stock text-to-image: loader, two prompts, empty latent, KSampler (seed + control value), decode, preview."""
    ui = UI()
    loader = ui.add("CheckpointLoaderSimple", [ckpt])
    pos = ui.add("CLIPTextEncode", [ORIGINAL])
    neg = ui.add("CLIPTextEncode", [NEGATIVE])
    empty = ui.add("EmptyLatentImage", [128, 128, 1])
    ks = ui.add("KSampler", [seed, "fixed", steps, 7.5, "euler", "normal", 1.0])
    dec = ui.add("VAEDecode", [])
    preview = ui.add("PreviewImage", [])
    ui.link(loader, 1, pos, "clip", "CLIP")
    ui.link(loader, 1, neg, "clip", "CLIP")
    sampler_inputs(ui, ks, loader, pos, neg)
    ui.link(empty, 0, ks, "latent_image", "LATENT")
    ui.link(ks, 0, dec, "samples", "LATENT")
    ui.link(loader, 2, dec, "vae", "VAE")
    ui.link(dec, 0, preview, "images", "IMAGE")
    return ui.workflow()


def pack_edit_ui(ckpt: str, seed=SEED) -> dict:
    """Capture then Inject (the pack's edit path without training), with a Note, a Reroute for the model,
    a PrimitiveNode feeding Capture's converted seed widget, a bypassed LatentUpscaleBy between
    Capture and Inject, and a muted SaveImage. Node ids: see the comments."""
    ui = UI()
    ui.add("Note", ["Capture at 0.5·T, then finish: equals a plain KSampler run."])      # 1
    loader = ui.add("CheckpointLoaderSimple", [ckpt])                                       # 2
    reroute = ui.add("Reroute")                                                             # 3
    pos = ui.add("CLIPTextEncode", [ORIGINAL], title="Original prompt")                     # 4
    neg = ui.add("CLIPTextEncode", [NEGATIVE])                                              # 5
    empty = ui.add("EmptyLatentImage", [128, 128, 1])                                       # 6
    prim = ui.add("PrimitiveNode", [seed, "fixed"], title="seed")                           # 7
    cap = ui.add("AVICaptureLatent", [0, "fixed", STEPS, 7.5, "euler", "normal", 0.5, -1], title="Capture x")  # 8
    upscale = ui.add("LatentUpscaleBy", ["nearest-exact", 2.0], mode=4)                     # 9 bypassed
    inj = ui.add("AVIInjectLatent", [7.5, "from capture", "from capture", -1, "every ρ"])       # 10
    dec = ui.add("VAEDecode", [])                                                           # 11
    ui.add("PreviewImage", [], title="Edited")                                              # 12
    ui.add("SaveImage", ["muted"], mode=2)                                                  # 13 muted
    preview, save = ui.nodes[11], ui.nodes[12]
    ui.link(loader, 0, reroute, "", "MODEL")
    ui.link(loader, 1, pos, "clip", "CLIP")
    ui.link(loader, 1, neg, "clip", "CLIP")
    sampler_inputs(ui, cap, reroute, pos, neg)
    ui.link(empty, 0, cap, "latent_image", "LATENT")
    ui.link(prim, 0, cap, "seed", "INT", widget=True)
    ui.link(cap, 0, upscale, "samples", "LATENT")
    sampler_inputs(ui, inj, reroute, pos, neg)
    ui.link(upscale, 0, inj, "latent", "LATENT")
    ui.link(inj, 0, dec, "samples", "LATENT")
    ui.link(loader, 2, dec, "vae", "VAE")
    ui.link(dec, 0, preview, "images", "IMAGE")
    ui.link(dec, 0, save, "images", "IMAGE")
    return ui.workflow()


def expected_pack_prompt(ckpt: str) -> dict:
    """pack_edit_ui as an API prompt written by hand (no _meta): what the frontend queues."""
    conditioning = {"model": ["2", 0], "positive": ["4", 0], "negative": ["5", 0]}
    return {
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": ORIGINAL, "clip": ["2", 1]}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["2", 1]}},
        "6": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}},
        "8": {"class_type": "AVICaptureLatent", "inputs": {
            "seed": SEED, "steps": STEPS, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal",
            "timestep_fraction": 0.5, "step": -1, **conditioning, "latent_image": ["6", 0]}},
        "10": {"class_type": "AVIInjectLatent", "inputs": {
            "cfg": 7.5, "sampler_name": "from capture", "scheduler": "from capture", "target_steps": -1, "rho_pick": "every ρ",
            **conditioning, "latent": ["8", 0]}},
        "11": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["2", 2]}},
        "12": {"class_type": "PreviewImage", "inputs": {"images": ["11", 0]}},
    }


def without_meta(prompt: dict) -> dict:
    """The prompt without _meta (ignored by the server)."""
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()}


def node_of(workflow: dict, node_id: int) -> dict:
    """The workflow node with this id."""
    return next(n for n in workflow["nodes"] if n["id"] == node_id)


@pytest.fixture(scope="module")
def object_info(host):
    """GET /object_info of the booted host (tiny checkpoints listed)."""
    return host.object_info()


# --- conversion, validation, execution ------------------------------------------------------------

def test_stock_workflow_converts_validates_and_runs_like_the_hand_written_prompt(host, tiny_ckpt, object_info, make_txt2img):
    prompt = ui_to_api(stock_txt2img_ui(tiny_ckpt["eps"]), object_info)
    hand = make_txt2img(tiny_ckpt["eps"], ORIGINAL, NEGATIVE, size=128, steps=STEPS, seed=SEED, cfg=7.5, save=False)
    assert without_meta(prompt) == hand, "the control_after_generate value is skipped, links become [id, slot]"
    assert prompt["5"]["_meta"] == {"title": "KSampler"}
    assert host.validate(prompt).ok
    ours, theirs = host.run(prompt).output("6"), host.run(hand).output("6")
    assert ours.shape == (1, 128, 128, 3) and (ours - theirs).abs().max().item() == 0


def test_pack_workflow_resolves_frontend_only_nodes_and_runs(host, tiny_ckpt, object_info, make_txt2img):
    workflow = pack_edit_ui(tiny_ckpt["eps"])
    prompt = ui_to_api(workflow, object_info)
    # Note, Reroute and PrimitiveNode are gone; the PrimitiveNode's seed replaced Capture's stored 0; the
    # bypassed upscale passes Capture's latent through; the muted SaveImage is dropped.
    assert without_meta(prompt) == expected_pack_prompt(tiny_ckpt["eps"])
    assert prompt["8"]["_meta"]["title"] == "Capture x" and prompt["10"]["_meta"]["title"] == "Inject Latent"
    assert host.validate(prompt).ok
    result = host.run(prompt)
    assert set(result.executed) == set(prompt), "every queued node ran, nothing else"
    plain = host.run(make_txt2img(tiny_ckpt["eps"], ORIGINAL, NEGATIVE, size=128, steps=STEPS, seed=SEED, cfg=7.5,
                                  save=False)).output("6")
    edited = result.output("11")
    assert edited.shape == plain.shape == (1, 128, 128, 3)
    assert (edited - plain).abs().max().item() < 1e-3, "capture + inject of euler equals the plain run on the primitive's seed"


def test_muted_origin_drops_the_inputs_that_point_at_it_as_the_frontend_does(host, tiny_ckpt, object_info):
    workflow = stock_txt2img_ui(tiny_ckpt["eps"])
    node_of(workflow, 1)["mode"] = 2  # the checkpoint loader
    prompt = ui_to_api(workflow, object_info)
    assert "1" not in prompt and "clip" not in prompt["2"]["inputs"] and "model" not in prompt["5"]["inputs"]
    validation = host.validate(prompt)
    assert not validation.ok
    messages = {e["message"] for info in validation.node_errors.values() for e in info["errors"]}
    assert messages == {"Required input is missing"}


def test_bypassed_nodes_pass_on_their_first_input_of_the_output_type(object_info, tiny_ckpt):
    workflow = pack_edit_ui(tiny_ckpt["eps"])
    node_of(workflow, 8)["mode"] = 4  # Capture's LATENT output: slot 0 is `model`, so its latent_image passes
    prompt = ui_to_api(workflow, object_info)
    assert "8" not in prompt and prompt["10"]["inputs"]["latent"] == ["6", 0]
    node_of(workflow, 10)["mode"] = 4  # Inject bypassed too: decode's LATENT comes through Inject's latent input
    assert ui_to_api(workflow, object_info)["11"]["inputs"]["samples"] == ["6", 0]


def test_substitute_sets_an_input_on_every_node_of_a_type(tiny_ckpt, object_info):
    prompt = ui_to_api(pack_edit_ui("not_here.safetensors"), object_info)
    swapped = substitute(prompt, "CheckpointLoaderSimple", ckpt_name=tiny_ckpt["v"])
    assert swapped["2"]["inputs"]["ckpt_name"] == tiny_ckpt["v"] and prompt["2"]["inputs"]["ckpt_name"] == "not_here.safetensors"
    with pytest.raises(KeyError, match="no KSampler node"):
        substitute(prompt, "KSampler", seed=1)


def test_dynamic_prompts_and_file_name_replacements(object_info, tiny_ckpt):
    workflow = stock_txt2img_ui(tiny_ckpt["eps"])
    node_of(workflow, 2)["widgets_values"] = ["a {red|green|blue} car // a comment\n/* gone */on a road"]
    node_of(workflow, 7)["type"] = "SaveImage"
    node_of(workflow, 7)["widgets_values"] = ["run_%KSampler.seed%_%date:yyyy-MM-dd%"]
    prompt = ui_to_api(workflow, object_info, choose=lambda options: options[-1], now=datetime.datetime(2024, 3, 5))
    assert prompt["2"]["inputs"]["text"] == "a blue car \non a road"
    assert prompt["7"]["inputs"]["filename_prefix"] == f"run_{SEED}_2024-03-05"
    assert dynamic_prompt("{a|{b|c}} \\{x\\}", choose=lambda o: o[1]) == "c {x}"


def test_unsupported_and_broken_workflows_are_refused_naming_the_node(object_info, tiny_ckpt):
    subgraph = stock_txt2img_ui(tiny_ckpt["eps"])
    subgraph["definitions"] = {"subgraphs": [{"id": "5f1e-sub", "nodes": [], "links": []}]}
    node_of(subgraph, 6)["type"] = "5f1e-sub"
    with pytest.raises(WorkflowError, match=r"node 6 \('5f1e-sub'\) is a subgraph instance"):
        ui_to_api(subgraph, object_info)
    group = stock_txt2img_ui(tiny_ckpt["eps"])
    node_of(group, 6)["type"] = "workflow>my group"
    with pytest.raises(WorkflowError, match="node 6 .* is a group node"):
        ui_to_api(group, object_info)
    unknown = stock_txt2img_ui(tiny_ckpt["eps"])
    node_of(unknown, 7)["type"] = "AVINoSuchNode"
    with pytest.raises(WorkflowError, match=r"node 7 \('AVINoSuchNode'\): no such node type"):
        ui_to_api(unknown, object_info)
    dangling = stock_txt2img_ui(tiny_ckpt["eps"])
    dangling["links"] = [link for link in dangling["links"] if link[0] != 9]
    with pytest.raises(WorkflowError, match=r'node 7 \(PreviewImage "Preview Image"\) refers to link 9'):
        ui_to_api(dangling, object_info)
    with pytest.raises(WorkflowError, match="not a UI-format workflow"):
        ui_to_api(without_meta(ui_to_api(stock_txt2img_ui(tiny_ckpt["eps"]), object_info)), object_info)


# --- the checker -----------------------------------------------------------------------------------

def test_checker_passes_the_good_workflows(object_info, tiny_ckpt):
    assert check_workflow(stock_txt2img_ui(tiny_ckpt["eps"]), object_info) == []
    assert check_workflow(json.dumps(pack_edit_ui(tiny_ckpt["eps"])), object_info) == []


def _one_problem(workflow, object_info, *parts):
    """The problems of workflow; asserts that one of them contains every part."""
    problems = check_workflow(workflow, object_info)
    assert any(all(p in line for p in parts) for line in problems), problems
    return problems


def test_checker_catches_a_wrong_link_type(object_info, tiny_ckpt):
    workflow = pack_edit_ui(tiny_ckpt["eps"])
    # Capture's model input (link 3, from the Reroute) is re-linked from the empty latent.
    link = next(l for l in workflow["links"] if l[3] == 8 and l[5] == "MODEL")
    node_of(workflow, 3)["outputs"][0]["links"].remove(link[0])
    node_of(workflow, 6)["outputs"][0]["links"].append(link[0])
    link[1], link[2], link[5] = 6, 0, "LATENT"
    _one_problem(workflow, object_info, 'node 8 (AVICaptureLatent "Capture x")', "input 'model' takes MODEL",
                 'node 6 (EmptyLatentImage "Empty Latent Image") output 0, which gives LATENT')


def test_checker_catches_values_outside_options_and_range(object_info, tiny_ckpt):
    workflow = pack_edit_ui(tiny_ckpt["eps"])
    values = node_of(workflow, 8)["widgets_values"]
    values[4], values[2], values[6] = "no_such_sampler", 0, 1.5
    problems = check_workflow(workflow, object_info)
    assert any("widget 'sampler_name' = 'no_such_sampler' is not among the options ('euler'," in p for p in problems), problems
    assert any("widget 'steps' = 0 is outside 1..10000" in p for p in problems), problems
    assert any('node 8 (AVICaptureLatent "Capture x"): widget \'timestep_fraction\' = 1.5 is outside 0.0..1.0' in p
               for p in problems), problems
    node_of(workflow, 6)["widgets_values"] = [100, 128, 1]
    _one_problem(workflow, object_info, "widget 'width' = 100 is off the widget's step 8", "turns it into 104")


def test_checker_catches_a_missing_control_value(object_info, tiny_ckpt):
    workflow = pack_edit_ui(tiny_ckpt["eps"])
    node_of(workflow, 8)["widgets_values"] = [0, STEPS, 7.5, "euler", "normal", 0.5, -1]  # no "fixed" after the seed
    problems = _one_problem(workflow, object_info, 'node 8 (AVICaptureLatent "Capture x"): 7 widget values, '
                            "the frontend expects 8 (seed, control_after_generate, steps,")
    assert any(f"widget 'control_after_generate' = {STEPS} is not a control_after_generate value" in p for p in problems)
    assert any("widget 'sampler_name' = 'normal' is not among the options" in p for p in problems), "shifted values show"


def test_checker_catches_an_unknown_node_type_and_a_dangling_link(object_info, tiny_ckpt):
    unknown = pack_edit_ui(tiny_ckpt["eps"])
    node_of(unknown, 12)["type"] = "AVINoSuchNode"
    _one_problem(unknown, object_info, "node 12 ('AVINoSuchNode' 'Edited'): no such node type in this ComfyUI")
    dangling = pack_edit_ui(tiny_ckpt["eps"])
    link = next(l for l in dangling["links"] if l[3] == 11 and l[5] == "VAE")
    dangling["links"].remove(link)
    problems = _one_problem(dangling, object_info, 'node 11 (VAEDecode "VAE Decode"): input \'vae\' refers to link '
                            f"{link[0]}, which is not in the links list (dangling link)")
    assert any(f'node 2 (CheckpointLoaderSimple "Load Checkpoint"): output 2 refers to link {link[0]}' in p for p in problems)


def test_checker_reports_structure_and_primitive_problems(object_info, tiny_ckpt):
    assert check_workflow("{not json", object_info)[0].startswith("not JSON")
    api = ui_to_api(stock_txt2img_ui(tiny_ckpt["eps"]), object_info)
    assert check_workflow(api, object_info) == ["this is an API-format prompt ({id: {class_type, inputs}}), not a UI-format workflow"]
    workflow = pack_edit_ui(tiny_ckpt["eps"])
    node_of(workflow, 7)["widgets_values"] = [-3, "sometimes"]
    problems = check_workflow(workflow, object_info)
    assert any('node 7 (PrimitiveNode "seed"): widget \'seed\' = -3 is outside 0..' in p for p in problems), problems
    assert any("widget 'control_after_generate' = 'sometimes' is not a control_after_generate value" in p for p in problems)
    node_of(workflow, 12)["inputs"][0]["link"] = None  # the preview's images input, unlinked (its link kept in the list)
    problems = check_workflow(workflow, object_info)
    assert any("input 0 does not hold it" in p for p in problems), problems


# --- the command line ------------------------------------------------------------------------------

def test_cli_converts_a_file_with_object_info_from_a_file(tmp_path, object_info, tiny_ckpt, capsys):
    workflow = pack_edit_ui(tiny_ckpt["eps"])
    (tmp_path / "wf.json").write_text(json.dumps(workflow))
    (tmp_path / "oi.json").write_text(json.dumps(object_info))
    out = tmp_path / "prompt.json"
    assert convert_workflow.main([str(tmp_path / "wf.json"), "--object-info", str(tmp_path / "oi.json"), "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == ui_to_api(workflow, object_info)
    broken = copy.deepcopy(workflow)
    node_of(broken, 8)["widgets_values"][4] = "no_such_sampler"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    code = convert_workflow.main([str(tmp_path / "broken.json"), "--object-info", str(tmp_path / "oi.json"), "--check"])
    assert code == 1 and "'no_such_sampler' is not among the options" in capsys.readouterr().err
