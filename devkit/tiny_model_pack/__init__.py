"""For tests and the demo only, not part of the pack: lets a real ComfyUI load tiny SD2 checkpoints."""
# Symlink or copy this folder into <base>/custom_nodes/ of a ComfyUI that should run checkpoints
# written by devkit/tiny_models.py: on import it registers the tiny model configs, so the stock
# CheckpointLoaderSimple detects them. It adds no nodes. A copied folder finds
# devkit/tiny_models.py through $AVI_REPO_ROOT (the repository root).
import importlib.util
import os
import sys

NODE_CLASS_MAPPINGS = {}

_MODULE = "avi_devkit_tiny_models"


def _tiny_models_path() -> str:
    """devkit/tiny_models.py: beside this folder's real location, else under $AVI_REPO_ROOT."""
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    candidates = [os.path.join(here, "tiny_models.py")]
    if os.environ.get("AVI_REPO_ROOT"):
        candidates.append(os.path.join(os.environ["AVI_REPO_ROOT"], "devkit", "tiny_models.py"))
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise ImportError(f"devkit/tiny_models.py not found (looked at {candidates}); set AVI_REPO_ROOT")


def _tiny_models():
    """The tiny_models module: the one already imported in this process, else loaded by file path."""
    for name in ("devkit.tiny_models", _MODULE):
        if name in sys.modules:
            return sys.modules[name]
    # By path, not by putting the repository on sys.path: its nodes/ would shadow ComfyUI's nodes.
    spec = importlib.util.spec_from_file_location(_MODULE, _tiny_models_path())
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module
    spec.loader.exec_module(module)
    return module


_tiny_models().register_tiny_configs()
