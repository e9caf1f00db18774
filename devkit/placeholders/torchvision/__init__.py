"""Import-only placeholder for torchvision, used by the test and demo harness only.

ComfyUI imports torchvision at module level in model families this pack never runs
(Cosmos, Stable Cascade). PyPI's torchvision wheels do not load beside the CPU build of
torch used here, so the harness puts this folder on sys.path. Any real use fails loudly.
Real ComfyUI installs have a real torchvision and never see this file.
"""


def __getattr__(name):
    raise AttributeError(f"torchvision.{name} is not available in the AVI test harness (placeholder package)")
