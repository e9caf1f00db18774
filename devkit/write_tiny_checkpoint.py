"""Write a tiny SD2 checkpoint (devkit/tiny_models.py) from a fresh process.

Usage: python devkit/write_tiny_checkpoint.py PATH [eps|v]
For callers that must keep ComfyUI's modules out of their own process (they fix the device and
folders at import): the UI launcher and the install test.
"""
import os
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)


def is_current(path: str) -> bool:
    """A tiny checkpoint at path written after the last change of devkit/tiny_models.py."""
    source = os.path.join(REPO_ROOT, "devkit", "tiny_models.py")
    return os.path.isfile(path) and os.path.getmtime(path) >= os.path.getmtime(source)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2 or (len(args) == 2 and args[1] not in ("eps", "v")):
        raise SystemExit(__doc__.split("\n\n")[1])
    from devkit import comfy_host
    with tempfile.TemporaryDirectory(prefix="avi-tiny-") as scratch:
        comfy_host.prepare(scratch)  # ComfyUI needs a base directory; nothing is kept there
        from devkit import tiny_models
        tiny_models.write_tiny_checkpoint(args[0], args[1] if len(args) == 2 else "eps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
