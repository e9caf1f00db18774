"""Import-only stand-ins for torchvision and torchaudio, for the devkit's ComfyUI hosts only.

ComfyUI imports torchvision and torchaudio at module level in model families and nodes this pack
never runs (SAM 3, Cosmos, Stable Cascade, audio). PyPI's builds of both for the torch used here
are CUDA builds whose extensions need libtorch_cuda, so they do not import beside the CPU torch.
devkit/host_env.py puts this folder on sys.path for a package only when the real one is missing
or does not import. Then every submodule imports (`from torchvision.ops import roi_align`,
`import torchaudio.functional as AF`) and every name in it is an `Unavailable` that raises
PlaceholderUsed, naming the package, as soon as it is called, iterated, subclassed or indexed.
Real ComfyUI installs have real packages and never see this folder.
"""
import importlib.abc
import importlib.machinery
import sys
import types


class PlaceholderUsed(RuntimeError):
    """Code tried to use a name of a placeholder package."""


def _refuse(name: str):
    package = name.split(".")[0]
    raise PlaceholderUsed(
        f"{name} is not available: this process runs with the AVI devkit's import-only stand-in for {package} "
        f"(devkit/placeholders), because no working {package} is installed beside this torch. "
        f"Install a {package} build that matches torch to use it.")


class Unavailable:
    """A name of a placeholder module: attribute chains resolve (e.g. InterpolationMode.BICUBIC), any use raises."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return Unavailable(f"{self._name}.{attr}")

    def __repr__(self):
        return f"<unavailable {self._name} (AVI devkit placeholder)>"

    def __call__(self, *args, **kwargs):
        _refuse(self._name)

    def __mro_entries__(self, bases):
        _refuse(self._name)

    def __iter__(self):
        _refuse(self._name)

    def __getitem__(self, key):
        _refuse(self._name)

    def __setattr__(self, attr, value):
        _refuse(self._name)


class PlaceholderModule(types.ModuleType):
    """A module of a placeholder package: submodules import, other names are Unavailable."""

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return Unavailable(f"{self.__name__}.{attr}")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes every submodule of one placeholder package importable as a PlaceholderModule package."""

    def __init__(self, package: str):
        self.package = package

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(self.package + "."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        module = PlaceholderModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def install(module: types.ModuleType) -> None:
    """Make the package `module` (being imported) a placeholder: its class, its submodule finder."""
    module.__class__ = PlaceholderModule
    module.AVI_PLACEHOLDER = True
    if not any(isinstance(f, _Finder) and f.package == module.__name__ for f in sys.meta_path):
        sys.meta_path.append(_Finder(module.__name__))
