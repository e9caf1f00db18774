"""digits_bold on the real ComfyUI server over HTTP with only the pack installed: its demo model is listed and
detected without anything placed in models/, and the edit is visible end to end."""
import json
import os

import numpy as np
from PIL import Image

from devkit.demo import DIGITS_NAME
from devkit.server import ComfyServer
from devkit.workflow_api import ui_to_api
from tests.install.support import PACK_NAME, REPO_ROOT


class SingleThreadServer(ComfyServer):
    """Small tensors run faster on one thread than on two contended ones."""

    def environment(self) -> dict:
        return dict(super().environment(), OMP_NUM_THREADS="1")


def test_digits_bold_runs_through_the_real_server_and_edits(tmp_path):
    with open(os.path.join(REPO_ROOT, "example_workflows", "digits_bold.json"), encoding="utf-8") as f:
        workflow = json.load(f)
    with SingleThreadServer(tmp_path / "base", custom_nodes={PACK_NAME: REPO_ROOT}) as srv:
        info = srv.get("/object_info")
        assert DIGITS_NAME in info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0], "the pack lists its demo model"
        assert [f for _, _, files in os.walk(tmp_path / "base" / "models") for f in files] == [], "nothing is in models/"
        prompt = ui_to_api(workflow, info)
        history = srv.wait_for(srv.queue_prompt(prompt), timeout=600)
    saved = {}
    for node_id, out in history["outputs"].items():
        for image in out.get("images", []):
            if image["type"] == "output":
                path = os.path.join(tmp_path, "base", "output", image["subfolder"], image["filename"])
                saved[image["filename"].rsplit("_", 2)[0]] = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    assert {"original", "edited", "side_by_side", "rho_sweep"} <= set(saved), sorted(saved)
    assert saved["original"].shape == saved["edited"].shape == (128, 128, 3)
    assert saved["original"].std() > 0.1, "a drawn digit"
    assert np.abs(saved["edited"] - saved["original"]).mean() > 0.005, "the edit is visible"
    assert os.path.isfile(tmp_path / "base" / "models" / "avi" / "digits_bold.safetensors")
