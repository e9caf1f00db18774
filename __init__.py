"""ComfyUI entry point of the AVI latent-SVD attribute editing pack.

Registers the models/avi folder and the pack's demo models (nodes/demo_models.py) and hands ComfyUI
the pack's V3 nodes. Nothing else lives here.
ComfyUI modules are imported only when ComfyUI calls the entry point, so tools that import this
folder without a host (test collectors, linters) can.
"""
import os

AVI_FOLDER = "avi"
# ComfyUI serves this folder at /extensions/<pack folder>/; the frontend's node help reads docs/<node id>.md
# there (built from docs/nodes.md by devkit/build_node_docs.py). It holds no scripts.
WEB_DIRECTORY = "./web"


def register_model_folder() -> None:
    """models/avi for learned attributes; extra_model_paths.yaml entries for `avi` keep priority."""
    import folder_paths

    folder_paths.add_model_folder_path(AVI_FOLDER, os.path.join(folder_paths.models_dir, AVI_FOLDER))
    folder_paths.folder_names_and_paths[AVI_FOLDER][1].add(".safetensors")


async def comfy_entrypoint():
    """V3 entry point: a ComfyExtension listing the pack's nodes."""
    from comfy_api.v0_0_2 import ComfyExtension

    from .nodes import NODES, demo_models

    class AVIExtension(ComfyExtension):
        async def get_node_list(self):
            return list(NODES)

    register_model_folder()
    demo_models.register()
    return AVIExtension()
