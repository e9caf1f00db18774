"""Import-only placeholder for torchvision.transforms (see torchvision/__init__.py)."""


def __getattr__(name):
    raise AttributeError(f"torchvision.transforms.{name} is not available in the AVI test harness (placeholder package)")
