"""The pack loads as ComfyUI loads a custom_nodes folder, and /object_info describes every node fully."""
import logging
import sys

from tests.host.avi_prompts import PACK_NODES


def pack_module(suffix: str, attribute: str):
    """The pack's module loaded by the host (under the name ComfyUI gives it), found by its name and an attribute."""
    return next(m for name, m in sys.modules.items() if name.endswith(suffix) and hasattr(m, attribute))


def test_pack_loads_without_warning_or_error(host):
    assert host.pack.success
    assert host.pack.path.endswith("custom_nodes/avi-latent-svd")
    noisy = [line for line in host.pack.log if line.level >= logging.WARNING]
    assert noisy == [], noisy


def test_object_info_lists_every_node_with_tooltips(host):
    info = host.object_info()
    ours = {name: node for name, node in info.items() if node["python_module"] == "custom_nodes.avi-latent-svd"}
    assert {name: node["display_name"] for name, node in ours.items()} == PACK_NODES
    for name, node in ours.items():
        assert name.startswith("AVI")
        assert node["category"] == "AVI", name
        assert len(node["description"]) > 40, name
        for section in ("required", "optional"):
            for input_name, spec in node["input"].get(section, {}).items():
                assert len(spec) == 2 and spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"
        assert node["output_tooltips"] and all(node["output_tooltips"]), f"{name} has an output without tooltip"
        assert len(node["output_tooltips"]) == len(node["output"]) == len(node["output_name"])
    assert ours["AVISavePhi"]["output_node"] is True
    assert ours["AVITrainPhi"]["output"] == ["AVI_PHI", "IMAGE"]
    assert ours["AVISVDDecompose"]["output"] == ["AVI_SVD", "IMAGE"]
    assert ours["AVICaptureLatent"]["input"]["required"]["seed"][1]["control_after_generate"] is True
    assert ours["AVIIntegrate"]["input"]["required"]["rho"][1]["display"] == "slider"


def test_avi_model_folder_is_registered_and_honours_extra_model_paths(host, extra_model_dirs):
    import folder_paths

    paths = folder_paths.get_folder_paths("avi")
    assert paths[0] == extra_model_dirs["avi"], "the extra_model_paths.yaml entry keeps its place"
    assert any(p.endswith("models/avi") for p in paths)
    assert folder_paths.folder_names_and_paths["avi"][1] == {".safetensors"}


def test_grid_captions_draw_greek_letters(host):
    import numpy as np
    grid = pack_module("nodes.grid", "caption_strip")
    rho, sigma = grid.caption_strip("ρ = 0.5", 120, 20), grid.caption_strip("σ = 0.5", 120, 20)
    assert np.abs(rho - sigma).max() > 0.5, "ρ and σ are drawn as two different glyphs, not one missing-glyph box"


def test_the_pack_uses_the_versioned_v3_api_module_only():
    """comfy_api.latest is a moving target; v0_0_2 exists in v0.3.75 and in current ComfyUI."""
    import glob
    import os
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sources = [os.path.join(root, "__init__.py")] + glob.glob(os.path.join(root, "nodes", "*.py"))
    for path in sources:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert "comfy_api.latest" not in text, path
    import comfy_api.v0_0_2 as api
    from comfy_api.latest import io as latest_io
    assert api.io is latest_io and hasattr(api, "ComfyExtension"), "v0_0_2 re-exports the same io module on this host"


def test_search_aliases_are_given_only_to_hosts_whose_schema_has_the_field(host):
    """v0.3.75's io.Schema has no search_aliases: the pack leaves it out there and adds it where the field exists."""
    import dataclasses

    from comfy_api.v0_0_2 import io
    schema_module = pack_module("nodes.schema", "SEARCH_ALIASES")
    assert set(schema_module.SEARCH_ALIASES) == set(PACK_NODES)
    fields = {f.name for f in dataclasses.fields(io.Schema)}
    node = {"node_id": "AVIIntegrate", "display_name": "AVI Integrate (ρ)"}
    older = schema_module.schema_fields(node, fields - {"search_aliases"})
    assert older == node, "a host without the field is not passed it"
    newer = schema_module.schema_fields(node, fields | {"search_aliases"})
    assert "attribute vector integration" in newer["search_aliases"] and newer["node_id"] == "AVIIntegrate"
    info = host.object_info()
    if "search_aliases" in fields:  # this host serves them: every node's own aliases reach /object_info
        assert all(info[name]["search_aliases"] == list(schema_module.SEARCH_ALIASES[name]) for name in PACK_NODES)
    else:
        assert all("search_aliases" not in info[name] for name in PACK_NODES)


def test_empty_latents_pass_the_downscale_ratios_only_where_the_host_takes_them(host, tiny_ckpt):
    """Newer EmptyLatentImage records downscale_ratio_spacial; its fix_empty_latent_channels takes it, v0.3.75's does not."""
    import comfy.sample
    import torch

    model_info = pack_module("nodes.model_info", "ratio_arguments")
    latent = {"samples": torch.zeros(1, 4, 8, 8), "downscale_ratio_spacial": 8}

    def older_fix(model, latent_image):
        return latent_image

    def newer_fix(model, latent_image, downscale_ratio_spacial=None, downscale_ratio_temporal=None):
        return latent_image

    assert model_info.ratio_arguments(older_fix, latent) == {}
    assert model_info.ratio_arguments(newer_fix, latent) == {"downscale_ratio_spacial": 8}
    assert model_info.ratio_arguments(newer_fix, {"samples": latent["samples"]}) == {}
    # This host: exactly the ratios its own fix_empty_latent_channels names are passed.
    import inspect
    takes = "downscale_ratio_spacial" in inspect.signature(comfy.sample.fix_empty_latent_channels).parameters
    assert model_info.ratio_arguments(comfy.sample.fix_empty_latent_channels, latent) == (
        {"downscale_ratio_spacial": 8} if takes else {})
    # Whatever ratios this host's EmptyLatentImage records, a capture's LATENT keeps them.
    from tests.host.avi_prompts import base_nodes, capture
    p = base_nodes(tiny_ckpt["eps"], "a cat", "a dog", 64)
    p["capture"] = capture("original", 0.5, steps=4)
    result = host.run(p, outputs=["empty", "capture"])
    recorded = {k: v for k, v in result.output("empty").items() if k in model_info.LATENT_RATIO_KEYS}
    assert {k: v for k, v in result.output("capture").items() if k in model_info.LATENT_RATIO_KEYS} == recorded


def test_model_family_names_the_stock_class_of_any_config(host):
    """A stock config, a subclass from outside ComfyUI (named by its stock base), and a model with no config."""
    import types

    import comfy.supported_models

    model_info = pack_module("nodes.model_info", "model_family")
    outside = type("OutsideSD15", (comfy.supported_models.SD15,), {"__module__": "some_pack.models"})
    family = lambda config: model_info.model_family(types.SimpleNamespace(model=types.SimpleNamespace(model_config=config)))
    assert family(object.__new__(comfy.supported_models.SDXL)) == "SDXL"
    assert family(object.__new__(outside)) == "SD15"
    assert family(object.__new__(type("Custom", (), {"__module__": "some_pack.models"}))) == ""
    assert model_info.model_family(types.SimpleNamespace()) == ""
