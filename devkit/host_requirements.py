"""A ComfyUI checkout's requirements.txt as the devkit installs it into a venv of that host's own.

Usage: python devkit/host_requirements.py COMFY_DIR OUT_DIR
writes OUT_DIR/host-requirements.txt (installed with torch pinned by devkit/host-constraints.txt)
and OUT_DIR/host-requirements-nodeps.txt (installed with --no-deps).

Every line is kept but these:
- torch is left to the constraints file (the CPU build 2.13.0; an unpinned torch is a CUDA build
  of several GB);
- torchvision and torchaudio are left out: PyPI's builds for torch 2.13 are CUDA builds whose
  extensions need libtorch_cuda and fail to import; devkit/placeholders stands in for them;
- packages whose own dependencies name torchvision or torchaudio (spandrel) go to the no-deps
  list, so pip does not bring those builds in through them.
"""
import os
import re
import sys

LEFT_TO_CONSTRAINTS = {"torch"}
PLACEHOLDERS = {"torchvision", "torchaudio"}
NO_DEPS = {"spandrel"}


def requirement_name(line: str) -> str:
    """The normalised project name of a requirements line ('' for blank lines and comments)."""
    line = line.split("#", 1)[0].strip()
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else ""


def split(lines) -> tuple:
    """(lines to install with dependencies, lines to install without)."""
    with_deps, no_deps = [], []
    for line in lines:
        name = requirement_name(line)
        if not name or name in LEFT_TO_CONSTRAINTS | PLACEHOLDERS:
            continue
        (no_deps if name in NO_DEPS else with_deps).append(line.strip())
    return with_deps, no_deps


def main(comfy_dir: str, out_dir: str) -> None:
    with open(os.path.join(comfy_dir, "requirements.txt"), encoding="utf-8") as f:
        with_deps, no_deps = split(f)
    os.makedirs(out_dir, exist_ok=True)
    for name, lines in (("host-requirements.txt", with_deps), ("host-requirements-nodeps.txt", no_deps)):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.write("".join(f"{line}\n" for line in lines))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
