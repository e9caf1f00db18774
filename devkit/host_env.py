"""Which import-only placeholders (devkit/placeholders) a Python interpreter needs to boot ComfyUI.

ComfyUI imports torchvision (v0.3.75: Cosmos, Stable Cascade; 0.33: also SAM 3 from model_base)
and torchaudio at module level. The devkit's venvs have neither: PyPI's builds for torch 2.13
are CUDA builds that fail beside its CPU build ("operator torchvision::nms does not exist").
A package gets its placeholder only when that interpreter cannot import the real one, so a
user's ComfyUI venv with working torchvision and torchaudio runs the tests on the real packages.
"""
import functools
import os
import subprocess
import sys
import tempfile
from typing import Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEHOLDERS_DIR = os.path.join(REPO_ROOT, "devkit", "placeholders")
PLACEHOLDER_PACKAGES = ("torchvision", "torchaudio")
HELPER = "avi_import_placeholder.py"


@functools.lru_cache(maxsize=None)
def importable(python: str, package: str) -> bool:
    """The interpreter imports the real package (not installed: no; installed: it must import cleanly)."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        import importlib.util
        if importlib.util.find_spec(package) is None or PLACEHOLDERS_DIR in _origins(package):
            return False
    probe = subprocess.run([python, "-c", f"import {package}"], capture_output=True, timeout=300,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return probe.returncode == 0


def _origins(package: str) -> str:
    """Where this process would import package from (empty when nowhere)."""
    import importlib.util
    spec = importlib.util.find_spec(package)
    return (spec.origin or "") if spec else ""


def needed(python: str = sys.executable) -> tuple:
    """The placeholder packages this interpreter needs."""
    return tuple(p for p in PLACEHOLDER_PACKAGES if not importable(python, p))


def placeholder_path(python: str = sys.executable) -> Optional[str]:
    """A folder to put first on sys.path / PYTHONPATH holding exactly the placeholders needed, or None."""
    packages = needed(python)
    if not packages:
        return None
    if packages == PLACEHOLDER_PACKAGES:
        return PLACEHOLDERS_DIR
    # Some real packages work: a folder of links to only the missing ones, so the working ones are not shadowed.
    folder = os.path.join(tempfile.gettempdir(), f"avi-placeholders-{os.getuid()}-{'-'.join(packages)}")
    os.makedirs(folder, exist_ok=True)
    for name in (*packages, HELPER):
        link = os.path.join(folder, name)
        try:
            os.symlink(os.path.join(PLACEHOLDERS_DIR, name), link)
        except FileExistsError:  # made earlier, or by a test run beside this one (make test runs two)
            pass
    return folder
