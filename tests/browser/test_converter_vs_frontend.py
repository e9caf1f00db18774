"""The graphs the devkit converts (the pack's workflows, the stock text-to-image graph) convert as the installed
frontend queues them, on every host: devkit.workflow_api.ui_to_api equals `app.graphToPrompt().output`.

The converter models frontend 1.32.9 (test_converter_fidelity.py pins it case by case there); these graphs use
none of the behaviours in which frontend 1.49.6 differs, and the comparison on each host shows it.
"""
import json
import os

import pytest

from devkit import browser, convert_workflow
from devkit.server import ServerError
from devkit.workflow_api import ui_to_api
from tests.host.test_workflow_api import pack_edit_ui, stock_txt2img_ui

from .conftest import STOCK_CHECKPOINT, pack_workflows
from .test_frontend import txt2img

GRAPHS = {
    "stock_txt2img": txt2img,
    "stock_builder": lambda: stock_txt2img_ui(STOCK_CHECKPOINT),
    "pack_edit": lambda: pack_edit_ui(STOCK_CHECKPOINT),
}


def as_lines(prompt: dict) -> list:
    """The prompt as sorted, indented JSON lines (type-exact; readable diffs)."""
    return json.dumps(prompt, indent=1, sort_keys=True, ensure_ascii=False).splitlines()


def frontend_prompt(page, workflow: dict, name: str) -> dict:
    """What the frontend queues after loading the workflow."""
    browser.load_workflow(page, workflow, name=name, settle=0.05)
    return browser.api_prompt(page)


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.get("/object_info")


@pytest.mark.parametrize("name", list(GRAPHS))
def test_devkit_graphs_convert_as_the_frontend_queues_them(frontend, object_info, name):
    workflow = GRAPHS[name]()
    expected = frontend_prompt(frontend, workflow, name)
    assert len(expected) >= 5, "the frontend queued the graph"
    assert as_lines(ui_to_api(workflow, object_info)) == as_lines(expected)


@pytest.mark.parametrize("path", pack_workflows(), ids=os.path.basename)
def test_pack_workflow_converts_as_the_frontend_queues_it(frontend, object_info, path):
    with open(path) as f:
        workflow = json.load(f)
    expected = frontend_prompt(frontend, workflow, os.path.basename(path))
    assert len(expected) >= 5
    assert as_lines(ui_to_api(workflow, object_info)) == as_lines(expected)


def test_cli_reads_object_info_from_the_running_server(comfy_server, object_info, tmp_path):
    workflow = pack_edit_ui(STOCK_CHECKPOINT)
    (tmp_path / "wf.json").write_text(json.dumps(workflow))
    out = tmp_path / "prompt.json"
    assert convert_workflow.main([str(tmp_path / "wf.json"), "--object-info", comfy_server.url, "--check", "-o", str(out)]) == 0
    prompt = json.loads(out.read_text())
    assert prompt == ui_to_api(workflow, object_info)
    prompt_id = comfy_server.queue_prompt(prompt)  # accepted: the server's validation passes
    with pytest.raises(ServerError, match=r"\(CheckpointLoaderSimple\).*header"):
        comfy_server.wait_for(prompt_id, timeout=60)  # and it fails only where it must: the checkpoint is an empty file
