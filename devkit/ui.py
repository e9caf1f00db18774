"""Start the embedded ComfyUI with the pack on http://127.0.0.1:8188 and keep it running (Ctrl-C stops it).

However the launcher ends (Ctrl-C, SIGTERM, SIGHUP, an error, or being killed) the server ends with it:
signals are turned into a normal shutdown, and the server process gets a parent-death signal.

Usage: python devkit/ui.py [--port 8188] [--checkpoint PATH] [--base .demo]   (make ui UI_PORT=8189)
The ComfyUI is $AVI_COMFYUI_DIR, else the embedded v0.3.75 (make ui HOST=0.33 runs the 0.33 host).

The pack's workflows appear under Workflow > Browse Templates > avi-latent-svd. The pack's
trained tiny digits model is always offered (digits_bold runs on it); --checkpoint (or
AVI_CHECKPOINT) adds an SD2.1 checkpoint for the sd21_* workflows. `make ui` calls this.
"""
import argparse
import os
import signal
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from devkit.demo import DIGITS_NAME, example_input_bytes  # noqa: E402
from devkit.server import ComfyServer, ServerError  # noqa: E402

PACK_NAME = "avi-latent-svd"


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP reached the launcher: unwind as Ctrl-C does, so the server is stopped on the way out."""


def stop_on_signals(signals=(signal.SIGTERM, signal.SIGHUP)) -> None:
    """Turn the signals that end a terminal session or a service into Stopped (by default they kill Python outright)."""
    def handler(signum, frame):
        for other in signals:  # a second signal must not interrupt the shutdown it started
            signal.signal(other, signal.SIG_IGN)
        raise Stopped(signal.Signals(signum).name)
    for signum in signals:
        signal.signal(signum, handler)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--checkpoint", default=os.environ.get("AVI_CHECKPOINT") or None,
                        help="an SD2.1-base checkpoint to offer (default: $AVI_CHECKPOINT, else the tiny model)")
    parser.add_argument("--base", default=os.path.join(REPO_ROOT, ".demo"), help="ComfyUI base directory")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when CUDA is available")
    args = parser.parse_args(argv)
    stop_on_signals()
    try:
        return serve(args)
    except KeyboardInterrupt as e:
        print(f"stopped ({e})" if isinstance(e, Stopped) else "stopped", flush=True)
        return 0


def serve(args) -> int:
    """Check the port, place the model, run the server until it exits (or the launcher is stopped)."""
    if not port_is_free(args.port):
        raise SystemExit(f"port {args.port} on 127.0.0.1 is in use (another ComfyUI?); "
                         f"choose another: make ui UI_PORT={args.port + 1}")
    import torch
    cpu = args.cpu or not torch.cuda.is_available()
    base = os.path.abspath(args.base)
    models = {}  # the pack offers its digits model itself (nodes/demo_models.py), as in any ComfyUI
    if args.checkpoint:
        checkpoint = os.path.abspath(args.checkpoint)
        if not os.path.isfile(checkpoint):
            raise SystemExit(f"checkpoint not found: {checkpoint}")
        models[f"checkpoints/{os.path.basename(checkpoint)}"] = checkpoint
    else:
        print(f"No checkpoint given: offering {DIGITS_NAME}, the pack's trained tiny digits model (open the digits_bold template).")
    # Only the pack, as a user installs it: its templates and demo model need nothing else.
    server = ComfyServer(base, custom_nodes={PACK_NAME: REPO_ROOT}, models=models, port=args.port, cpu=cpu,
                         inputs=example_input_bytes())
    print(f"Starting ComfyUI {host_version(server.host_dir)} ({'CPU' if cpu else 'CUDA'}) from {server.host_dir} "
          f"with the pack; log: {server.log_path}", flush=True)
    try:
        with server:
            print(f"Open {server.url}  (Workflow > Browse Templates > {PACK_NAME}). Ctrl-C stops it.", flush=True)
            while server.proc.poll() is None:
                time.sleep(0.5)
            print(server.log_text()[-4000:])
            return server.proc.returncode or 1
    except ServerError as e:
        raise SystemExit(str(e))


def host_version(comfy_dir: str) -> str:
    """The version a ComfyUI tree's comfyui_version.py names ("?" when it names none)."""
    import re
    try:
        with open(os.path.join(comfy_dir, "comfyui_version.py"), encoding="utf-8") as f:
            match = re.search(r'__version__\s*=\s*"([^"]+)"', f.read())
    except OSError:
        match = None
    return match.group(1) if match else "?"


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (main.py would fail to bind it)."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the server binds (asyncio sets SO_REUSEADDR): a port just freed, in TIME_WAIT, is free for it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
