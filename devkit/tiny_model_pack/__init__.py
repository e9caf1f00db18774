"""For tests and the demo only, not part of the pack: lets a real ComfyUI load the tiny test checkpoints."""
# Symlink or copy this folder into <base>/custom_nodes/ of a ComfyUI that should run checkpoints
# written by devkit/tiny_models*.py (SD2, SD1.5, SDXL, SD3, Flux): on import it registers their
# model configs, so the stock CheckpointLoaderSimple detects them. It adds no nodes. A copied
# folder finds devkit/ through $AVI_REPO_ROOT (the repository root).
import importlib
import importlib.util
import os
import sys

NODE_CLASS_MAPPINGS = {}

# Each module's registration function, in the order applied (the last one registered is detected first).
REGISTRATIONS = (("tiny_models_flow", "register_configs"), ("tiny_models_unet", "register_configs"),
                 ("tiny_models", "register_tiny_configs"))


def _devkit_dir() -> str:
    """devkit/: beside this folder's real location, else under $AVI_REPO_ROOT."""
    candidates = [os.path.dirname(os.path.dirname(os.path.realpath(__file__)))]
    if os.environ.get("AVI_REPO_ROOT"):
        candidates.append(os.path.join(os.environ["AVI_REPO_ROOT"], "devkit"))
    for path in candidates:
        if os.path.isfile(os.path.join(path, "tiny_models.py")):
            return path
    raise ImportError(f"devkit/tiny_models.py not found (looked in {candidates}); set AVI_REPO_ROOT")


def _devkit():
    """The devkit package: the one already imported in this process, else loaded from its folder by path."""
    if "devkit" not in sys.modules:
        # By path, not by putting the repository on sys.path: its nodes/ would shadow ComfyUI's nodes.
        folder = _devkit_dir()
        spec = importlib.util.spec_from_file_location("devkit", os.path.join(folder, "__init__.py"),
                                                      submodule_search_locations=[folder])
        package = importlib.util.module_from_spec(spec)
        sys.modules["devkit"] = package
        spec.loader.exec_module(package)
    return sys.modules["devkit"]


def register_all() -> None:
    """Register every tiny model config of the devkit (idempotent)."""
    _devkit()
    for module, function in REGISTRATIONS:
        getattr(importlib.import_module(f"devkit.{module}"), function)()


register_all()
