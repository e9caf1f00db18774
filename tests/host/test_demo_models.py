"""The pack's demo models (nodes/demo_models.py): listed and detected by the stock Load Checkpoint in any ComfyUI
the pack is installed in, under names that say they are the pack's demo, without shadowing real models."""
import os

import pytest

from tests.host.test_models_unet import REAL_UNET_CONFIGS
from tests.host.test_nodes_pack import pack_module

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What detect_unet_config reads from SD2.1 base: SD1.5's UNet with linear projections and 1024-wide context.
REAL_UNET_CONFIGS = {**REAL_UNET_CONFIGS,
                     "sd21": {**REAL_UNET_CONFIGS["sd15"], "use_linear_in_transformer": True, "context_dim": 1024}}


@pytest.fixture(scope="module")
def demo(host):
    """The pack's nodes/demo_models.py as ComfyUI loaded it with the pack."""
    return pack_module("nodes.demo_models", "DEMO_MODELS")


def test_every_demo_model_ships_under_a_demo_name(demo):
    assert demo.DEMO_MODELS, "the pack ships at least its digits model"
    for entry in demo.DEMO_MODELS:
        assert entry.file.startswith("avi_demo_") and entry.config.__name__.startswith("AVIDemo"), entry
        assert os.path.isfile(os.path.join(REPO_ROOT, "demo_models", entry.file)), entry.file
    assert len({e.file for e in demo.DEMO_MODELS}) == len({e.config for e in demo.DEMO_MODELS}) == len(demo.DEMO_MODELS)


def test_load_checkpoint_lists_and_detects_each_demo_model(host, demo):
    info = host.object_info()
    listed = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    for entry in demo.DEMO_MODELS:
        assert entry.file in listed
        result = host.run({"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": entry.file}}}, outputs=["1"])
        model, clip, vae = (result.output("1", slot) for slot in range(3))
        assert type(model.model.model_config) is entry.config, "detected by the pack's own config class"
        assert model.model.model_type.name == "EPS" and clip is not None and vae is not None


def test_demo_configs_come_after_every_stock_class_and_match_no_real_model(host, demo):
    import comfy.model_detection
    import comfy.supported_models
    models = comfy.supported_models.models
    configs = [e.config for e in demo.DEMO_MODELS]
    assert models[-len(configs):] == configs, "appended: every other class is tried first"
    for name, real in REAL_UNET_CONFIGS.items():
        assert not any(c.matches(dict(real)) for c in configs), name
        detected = comfy.model_detection.model_config_from_unet_config(dict(real))
        assert not getattr(detected, "avi_demo_model", False), name
    # The pack adds nothing else to the registry: its classes there are exactly the demo configs.
    assert [m for m in models if m.__module__ == demo.__name__] == configs


def test_registration_is_idempotent(host, demo):
    import comfy.supported_models
    import folder_paths
    before = list(comfy.supported_models.models), list(folder_paths.get_folder_paths("checkpoints"))
    demo.register()
    demo.register()
    assert (list(comfy.supported_models.models), list(folder_paths.get_folder_paths("checkpoints"))) == before
    assert [p for p in before[1] if os.path.realpath(p) == os.path.realpath(demo.DEMO_FOLDER)] == [demo.DEMO_FOLDER]
    assert before[1].index(demo.DEMO_FOLDER) > 0, "the user's own models/checkpoints comes first"
