"""Shared by the install checks: paths, the pack's name, requirements.txt and pyproject.toml as read by tools."""
import os
import tomllib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from devkit.comfy_host import default_comfy_dir  # noqa: E402

COMFY_DIR = default_comfy_dir()  # the host under test: $AVI_COMFYUI_DIR, else the embedded v0.3.75
# Packages a custom node must never install: the ComfyUI user chose their torch build.
TORCH_FAMILY = {"torch", "torchvision", "torchaudio", "triton", "xformers"}
PACK_NAME = "avi-latent-svd"  # the registry node id, and the folder name Manager and the registry give the pack


def requirement_lines(path: str = os.path.join(REPO_ROOT, "requirements.txt")) -> list:
    """The lines ComfyUI-Manager installs from a requirements.txt: stripped, blank and comment lines left out."""
    with open(path, encoding="utf-8") as f:
        return [s for s in (line.strip() for line in f) if s and not s.startswith("#")]


def pyproject() -> dict:
    """pyproject.toml of the repository, parsed."""
    with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)
