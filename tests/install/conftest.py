"""Which Manager install test runs on the host under test.

Hosts that ship the Manager as a package (manager_requirements.txt, started with --enable-manager: ComfyUI 0.33
and newer) run test_comfyui_manager.py, the real Manager installing the pack. Older hosts run
test_manager_install.py, which does what the Manager does: ComfyUI v0.3.75 has neither file nor flag, and its
Manager is the ComfyUI-Manager custom node, cloned from GitHub, which an offline test cannot fetch.
The real-Manager test repeats the imitation's checks of the restarted server (nodes, templates, help pages, startup
log, a run); its checks that need no host (each requirement without torch, help pages from docs/nodes.md) run on v0.3.75,
where the whole suite runs.
"""
import os

from tests.install.support import COMFY_DIR

MANAGER_SHIPS_WITH_HOST = os.path.isfile(os.path.join(COMFY_DIR, "manager_requirements.txt"))
collect_ignore = ["test_manager_install.py" if MANAGER_SHIPS_WITH_HOST else "test_comfyui_manager.py"]
