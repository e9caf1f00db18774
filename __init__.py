"""ComfyUI entry point of the AVI latent-SVD attribute editing pack.

Registers the models/avi folder and hands ComfyUI the pack's V3 nodes. Nothing else lives here.
"""
import os

import folder_paths
from comfy_api.latest import ComfyExtension, io

from .nodes import NODES

AVI_FOLDER = "avi"


def register_model_folder() -> None:
    """models/avi for learned attributes; extra_model_paths.yaml entries for `avi` keep priority."""
    folder_paths.add_model_folder_path(AVI_FOLDER, os.path.join(folder_paths.models_dir, AVI_FOLDER))
    folder_paths.folder_names_and_paths[AVI_FOLDER][1].add(".safetensors")


class AVIExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> AVIExtension:
    register_model_folder()
    return AVIExtension()
