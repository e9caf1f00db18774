"""Every shipped workflow, queued as the frontend queues it, runs in the real host end to end.

Only the checkpoint changes (SD2.1 base -> the tiny random SD2 model, SDXL base -> the tiny random
SDXL model, Flux dev -> the tiny random Flux model; the digits_* workflows run on the shipped digits
model they name): sizes, steps, Φ width, training settings and file names are the shipped ones.
sd21_reuse_phi loads the Φ that sd21_young saves.
"""
import copy
import json
import os

import pytest
import torch
from PIL import Image

from devkit.demo import SHIPPED_MODELS
from devkit.workflow_api import ui_to_api
from devkit.workflow_check import check_workflow

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKFLOW_DIR = os.path.join(REPO_ROOT, "example_workflows")
NAMES = sorted(f[:-5] for f in os.listdir(WORKFLOW_DIR) if f.endswith(".json"))
STITCH_GAP = 16
# Workflows for other model classes, by name prefix: (the tiny class that runs them, the model they declare, their size).
CLASS_WORKFLOWS = {"sdxl_": ("sdxl", "sd_xl_base_1.0.safetensors", 1024),
                   "flux_": ("flux", "flux1-dev-fp8.safetensors", 1024)}


def big_tensor_threads() -> int:
    """Threads for 512 px tensors: two beat one (the host fixture pins one for tiny ones), unless other test runs
    share the cores (AVI_TEST_RUNS, set by `make test`), where two threads each cost several times one."""
    runs = max(1, int(os.environ.get("AVI_TEST_RUNS") or 1))
    return max(1, min(2, (os.cpu_count() or 1) // runs))


def place_inputs() -> list:
    """The images the workflows' Load Image nodes name in the host's input folder, as make run places them; their names."""
    import folder_paths
    from devkit.demo import example_inputs, place_inputs as place_examples
    place_examples(folder_paths.get_input_directory())
    return list(example_inputs())


def class_of(name: str):
    """(tiny class, declared model, size) of a workflow for another model class, else None (SD2.1 or digits)."""
    return next((spec for prefix, spec in CLASS_WORKFLOWS.items() if name.startswith(prefix)), None)


def shipped_model(name: str):
    """The pack's own model a workflow names (digits_*, people_*), else None."""
    return next((ckpt for prefix, ckpt in SHIPPED_MODELS.items() if name.startswith(prefix)), None)


def size_of(name: str) -> int:
    spec = class_of(name)
    return spec[2] if spec else 128 if shipped_model(name) else 512


def load(name: str) -> dict:
    with open(os.path.join(WORKFLOW_DIR, f"{name}.json"), encoding="utf-8") as f:
        return json.load(f)


def nodes_of(workflow: dict, node_type: str) -> list:
    return [n for n in workflow["nodes"] if n["type"] == node_type]


@pytest.fixture(scope="module")
def run_workflow(host, tiny_ckpt, digits_ckpt, people_ckpt, class_ckpt):
    """run_workflow(name) -> (workflow, prompt, result), each workflow run once per module."""
    runs = {}

    def run(name):
        if name not in runs:
            if name == "sd21_reuse_phi":
                run("sd21_young")  # saves models/avi/young.safetensors
            place_inputs()
            workflow = load(name)
            prompt = ui_to_api(workflow, host.object_info())  # fresh: Load AVI Φ lists what earlier runs saved
            loaders = [n for n in prompt.values() if n["class_type"] == "CheckpointLoaderSimple"]
            assert len(loaders) == 1
            if shipped_model(name):
                assert loaders[0]["inputs"]["ckpt_name"] == shipped_model(name), "the digits and people workflows name the shipped model"
            else:
                spec = class_of(name)
                loaders[0]["inputs"]["ckpt_name"] = class_ckpt(spec[0]) if spec else tiny_ckpt["eps"]
            threads = torch.get_num_threads()
            torch.set_num_threads(big_tensor_threads())
            try:
                runs[name] = (workflow, prompt, host.run(prompt))  # validated as POST /prompt does
            finally:
                torch.set_num_threads(threads)
        return runs[name]

    return run


def saved_images(host, result, node_id) -> list:
    """The PIL images a SaveImage node wrote, in order."""
    entries = result.ui["outputs"][node_id]["images"]
    assert all(e["type"] == "output" for e in entries)
    return [Image.open(os.path.join(host.base_dir, "output", e["subfolder"], e["filename"])) for e in entries]


def add_option(info: dict, node: str, name: str, option: str) -> None:
    """Append option to a combo input of object_info (either of its two combo layouts)."""
    spec = info[node]["input"]["required"][name]
    options = spec[1]["options"] if spec[0] == "COMBO" else spec[0]
    if option not in options:
        options.append(option)


def test_shipped_workflows_pass_the_checker_with_their_declared_models(host):
    info = copy.deepcopy(host.object_info())
    for name in NAMES:
        workflow = load(name)
        declared = [m["name"] for n in workflow["nodes"] for m in n.get("properties", {}).get("models", [])]
        if shipped_model(name):
            assert declared == [], "the digits and people models ship with the pack: nothing to download"
            add_option(info, "CheckpointLoaderSimple", "ckpt_name", shipped_model(name))
        else:
            spec = class_of(name)
            assert declared == [spec[1] if spec else "v2-1_512-ema-pruned.safetensors"], name
            add_option(info, "CheckpointLoaderSimple", "ckpt_name", declared[0])  # as if the user downloaded it
        add_option(info, "AVILoadPhi", "phi_name", "young.safetensors")  # sd21_young saves it
        for image in place_inputs():
            add_option(info, "LoadImage", "image", image)
        assert check_workflow(workflow, info) == [], name


@pytest.mark.parametrize("name", [n for n in NAMES if n != "sd21_reuse_phi"])
def test_attribute_workflow_runs_and_saves_its_images_and_phi(host, run_workflow, name):
    workflow, prompt, result = run_workflow(name)
    SIZE = size_of(name)
    saves = {n["widgets_values"][0].rsplit("/", 1)[-1]: str(n["id"]) for n in nodes_of(workflow, "SaveImage")}
    assert all(str(n["id"]) in result.ui["outputs"] for n in nodes_of(workflow, "PreviewImage")), "spectrum and loss previews"
    if "original" in saves:
        original, = saved_images(host, result, saves["original"])
        edited, = saved_images(host, result, saves["edited"])
        pair, = saved_images(host, result, saves["side_by_side"])
        assert original.size == edited.size == (SIZE, SIZE)
        assert pair.size == (2 * SIZE + STITCH_GAP, SIZE)
        assert original.tobytes() != edited.tobytes(), "ρ = 1 changes the image"
    if "rho_sweep" in saves:
        rhos = result.output(str(nodes_of(workflow, "AVIIntegrate")[-1]["id"]), 1).split(", ")
        grid, = saved_images(host, result, saves["rho_sweep"])
        padding = nodes_of(workflow, "AVIImageGrid")[0]["widgets_values"][1]
        assert grid.size[0] == len(rhos) * SIZE + (len(rhos) - 1) * padding, rhos
        assert grid.size[1] > SIZE, "one row and a caption strip"
    if "side_by_side" in saves and "original" not in saves:  # upload | unedited | edited, or original | first | both
        row, = saved_images(host, result, saves["side_by_side"])
        edited, = saved_images(host, result, saves["edited"])
        assert row.size == (3 * SIZE + 2 * STITCH_GAP, SIZE) and edited.size == (SIZE, SIZE)
        cells = [torch.tensor(list(row.crop((i * (SIZE + STITCH_GAP), 0, i * (SIZE + STITCH_GAP) + SIZE, SIZE)).getdata()),
                              dtype=torch.float32) / 255 for i in range(3)]
        assert not torch.equal(cells[1], cells[2]), "the edit changes the image"
        if name == "digits_real_image":  # the inversion gives the upload back up to the VAE's own loss (measured: 0.132)
            assert float((cells[0] - cells[1]).pow(2).mean().sqrt()) < 0.15
    if not nodes_of(workflow, "AVITrainPhi"):  # the findings: every SaveImage wrote its picture
        for key, node_id in saves.items():
            image, = saved_images(host, result, node_id)
            assert image.size[0] >= SIZE and image.size[1] >= 200, key
    import folder_paths
    from avi_core import load_phi
    trains = nodes_of(workflow, "AVITrainPhi")
    for save_phi, train in zip(nodes_of(workflow, "AVISavePhi"), trains):
        saved_as, = result.ui["outputs"][str(save_phi["id"])]["text"]
        assert saved_as.startswith(save_phi["widgets_values"][0]) and saved_as.endswith(".safetensors")
        phi = load_phi(os.path.join(folder_paths.get_folder_paths("avi")[0], saved_as))
        k, hidden = train["widgets_values"][:2]
        assert (phi.info.k, phi.info.hidden, phi.info.height, phi.info.width) == (k, hidden, SIZE // 8, SIZE // 8)
        assert phi.info.note == save_phi["widgets_values"][2], "the note says which prompts taught it"

def test_reuse_workflow_applies_the_saved_phi_to_a_batch_of_new_seeds(host, run_workflow):
    workflow, prompt, result = run_workflow("sd21_reuse_phi")
    SIZE = size_of("sd21_reuse_phi")
    batch = nodes_of(workflow, "EmptyLatentImage")[0]["widgets_values"][2]
    save, = nodes_of(workflow, "SaveImage")
    grid, = saved_images(host, result, str(save["id"]))
    columns, padding = nodes_of(workflow, "AVIImageGrid")[0]["widgets_values"]
    assert batch == columns == 4
    # each cell: original over edited (ImageStitch down, 16 px gap)
    assert grid.size[0] == columns * SIZE + (columns - 1) * padding
    assert grid.size[1] >= 2 * SIZE + STITCH_GAP
    load, = nodes_of(workflow, "AVILoadPhi")
    assert prompt[str(load["id"])]["inputs"]["phi_name"] == "young.safetensors"


def without_unlinked_outputs_of_output_nodes(workflow: dict, info: dict) -> dict:
    """The workflow less the unconnected output slots of output nodes (SaveImage, PreviewImage, ...).

    Hosts differ there (newer ones give SaveImage and PreviewImage an IMAGE output) and nothing reads an
    unconnected slot: a workflow saved with or without them loads and queues the same on every host.
    """
    workflow = copy.deepcopy(workflow)
    for node in workflow["nodes"]:
        if info.get(node["type"], {}).get("output_node"):
            node["outputs"] = [o for o in node.get("outputs", []) if o.get("links")]
    return workflow


def test_shipped_workflows_are_what_the_builder_writes(host):
    """example_workflows/*.json are generated (devkit/build_workflows.py): a hand edit or a changed node definition shows here."""
    from devkit.build_workflows import build_all

    info = host.object_info()
    built = build_all(info)
    assert sorted(built) == [f"{n}.json" for n in NAMES]
    for file_name, workflow in built.items():
        built_here = json.loads(json.dumps(workflow, ensure_ascii=False))
        assert without_unlinked_outputs_of_output_nodes(built_here, info) == \
            without_unlinked_outputs_of_output_nodes(load(file_name[:-5]), info), \
            f"{file_name} differs from `python devkit/build_workflows.py`; rebuild it"


def test_every_workflow_has_a_thumbnail_for_the_template_browser():
    from PIL import Image

    for name in NAMES:
        with Image.open(os.path.join(WORKFLOW_DIR, f"{name}.jpg")) as thumb:
            assert thumb.format == "JPEG" and thumb.width == 768 and thumb.height > 300, name


# The workflows whose z is captured on a coarser run (defaults.Z_STEPS of x's 50 `ddim_uniform` steps, from noise).
COARSE_Z = {"digits_bold", "digits_rho_sweep", "people_woman", "sd21_castle", "sd21_female", "sd21_male", "sd21_old",
            "sd21_reuse_phi", "sd21_rho_sweep", "sd21_smile", "sd21_young"}


def test_z_is_captured_on_20_steps_where_x_runs_50_from_noise_and_on_xs_run_elsewhere():
    """The default edit costs 61 evaluations: z on Z_STEPS where measured so; from an inverted image, for composed
    attributes, the paper preset, SDXL and Flux, z keeps x's steps (widgets: seed, control, steps, cfg, sampler, …)."""
    from avi_core.defaults import FULL_STEPS, Z_STEPS

    coarse = set()
    for name in NAMES:
        captures = {n["title"].split(":")[0]: n["widgets_values"] for n in load(name)["nodes"] if n["type"] == "AVICaptureLatent"}
        if "Capture x" not in captures:
            continue  # the findings workflows capture one run
        x, zs = captures["Capture x"], [v for title, v in captures.items() if title.startswith("Capture z")]
        assert zs and all(z[3:6] == x[3:6] for z in zs), f"{name}: z shares x's cfg, sampler and scheduler"
        if any(z[2] != x[2] for z in zs):
            assert x[2] == FULL_STEPS and x[5] == "ddim_uniform" and [z[2] for z in zs] == [Z_STEPS], name
            coarse.add(name)
    assert coarse == COARSE_Z


def finish_prompts(workflow: dict) -> dict:
    """{Inject Latent's title: the text of the prompt linked to its `target`, or None}."""
    links = {link[0]: link[1] for link in workflow["links"]}
    nodes = {n["id"]: n for n in workflow["nodes"]}
    out = {}
    for inject in nodes_of(workflow, "AVIInjectLatent"):
        link = next((i["link"] for i in inject["inputs"] if i["name"] == "target"), None)
        out[inject["title"]] = nodes[links[link]]["widgets_values"][0] if link is not None else None
    return out


def test_two_stacked_attributes_finish_with_the_prompt_naming_both():
    """defaults.STACKED: the stacked edit finishes with the prompt that has both attributes' words, the first alone with
    its own target, the unedited x with the original prompt only."""
    from avi_core.defaults import STACKED
    workflow = load("digits_two_attributes")
    texts = {n["title"]: n["widgets_values"][0] for n in nodes_of(workflow, "CLIPTextEncode")}
    assert STACKED["finish"] == "target"
    assert finish_prompts(workflow) == {"Inject y₁₂ (both attributes)": "a bold handwritten 4 slanted right",
                                        "Inject y₁ (first attribute)": texts["Target prompt"], "Inject x (unedited)": None}
    assert texts["Target prompt"] == "a bold handwritten 4" and texts["Second target prompt"] == "a handwritten 4 slanted right"
