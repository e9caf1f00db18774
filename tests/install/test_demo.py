"""`make run`'s command: the main workflow headless in a fresh process, images copied out."""
import os
import subprocess
import sys

from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO_ROOT, "devkit", "demo.py")


def demo(*args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, DEMO, *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def default_ctrl_c():
    """In the child: Ctrl-C (SIGINT) back to its default, so Python turns it into KeyboardInterrupt.

    A shell starts background jobs with SIGINT ignored and children inherit that; these tests press
    Ctrl-C, so they must not depend on how the test run itself was started.
    """
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ui_process(base, port) -> subprocess.Popen:
    """`make ui`'s command on a port and base folder, its output on a pipe."""
    return subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "devkit", "ui.py"), "--port", str(port), "--base", str(base)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=default_ctrl_c)


def test_demo_runs_the_digits_edit_on_the_shipped_model_and_copies_its_images(tmp_path):
    import numpy as np
    out = tmp_path / "output"
    run = demo("--base", str(tmp_path / "base"), "--out", str(out))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "tiny digits model" in run.stdout and "digits_bold.json" in run.stdout
    # node names as they start, then progress: 5 epochs of ceil(5001 / 256) = 20 steps, 31 sampler steps after 0.6·T (step 19)
    assert "Train AVI Φ" in run.stdout and "100/100" in run.stdout and "31/31" in run.stdout
    sizes, pixels = {}, {}
    for name in os.listdir(out):
        with Image.open(out / name) as image:
            sizes[name.rsplit("_", 2)[0]] = image.size
            pixels[name.rsplit("_", 2)[0]] = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    assert sizes["original"] == sizes["edited"] == (128, 128), sizes
    assert sizes["side_by_side"] == (128 + 16 + 128, 128)
    assert sizes["rho_sweep"][0] == 7 * 128 + 6 * 8, "seven ρ columns, 8 px apart"
    assert pixels["original"].std() > 0.1, "a drawn digit, not noise or an empty image"
    assert np.abs(pixels["edited"] - pixels["original"]).mean() > 0.005, "the edit is visible"
    ink = {k: float((pixels[k].max(axis=2) > 0.5).mean()) for k in ("original", "edited")}
    print(f"ink share original {ink['original']:.4f}, edited {ink['edited']:.4f}")
    assert ink["edited"] > 2.0 * ink["original"], f"'bold': a heavier stroke (measured 0.095 → 0.260 of the image; {ink})"
    for name in os.listdir(out):
        assert os.path.join(os.path.relpath(out), name) in run.stdout or name in run.stdout, "every copied image is listed"
    phi = tmp_path / "base" / "models" / "avi" / "digits_bold.safetensors"
    assert phi.is_file(), "Save AVI Φ wrote the attribute"


def test_demo_runs_sd21_young_when_a_checkpoint_is_given():
    from devkit.demo import default_workflow
    assert default_workflow(None) == "digits_bold"
    assert default_workflow("/models/v2-1_512-ema-pruned.safetensors") == "sd21_young"


def test_demo_names_what_it_needs_on_bad_arguments(tmp_path):
    run = demo("--workflow", "sd21_nope", "--base", str(tmp_path))
    assert run.returncode != 0 and "no workflow 'sd21_nope'; the pack ships: " in run.stderr
    assert "sd21_young" in run.stderr
    run = demo("--checkpoint", str(tmp_path / "missing.safetensors"), "--base", str(tmp_path))
    assert run.returncode != 0 and "checkpoint not found" in run.stderr and "missing.safetensors" in run.stderr
    assert not (tmp_path / "models").exists(), "nothing is set up before the arguments are checked"


def test_ui_serves_the_pack_and_its_workflow_templates(tmp_path):
    import json
    import signal
    import urllib.request

    from devkit.server import free_port

    port = free_port()
    proc = ui_process(tmp_path / "base", port)
    url = f"http://127.0.0.1:{port}"
    printed = []
    try:
        # ui.py prints "Open <url>" once the server answers (it gives up by itself after 120 s).
        for line in proc.stdout:
            printed.append(line)
            if line.startswith("Open "):
                break
        assert any(line.startswith(f"Open {url}") for line in printed), "".join(printed)[-3000:]
        with urllib.request.urlopen(f"{url}/api/workflow_templates", timeout=30) as r:
            templates = json.load(r)
        with urllib.request.urlopen(f"{url}/object_info/AVITrainPhi", timeout=30) as r:
            assert json.load(r)["AVITrainPhi"]["display_name"] == "Train AVI Φ"
        with urllib.request.urlopen(f"{url}/object_info/CheckpointLoaderSimple", timeout=30) as r:
            ckpts = json.load(r)["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
        assert "avi_demo_tiny_digits_sd2.safetensors" in ckpts, "the digits model is offered when no checkpoint is given"
        shipped = sorted(f[:-5] for f in os.listdir(os.path.join(REPO_ROOT, "example_workflows")) if f.endswith(".json"))
        assert sorted(templates["avi-latent-svd"]) == shipped
        with urllib.request.urlopen(f"{url}/api/workflow_templates/avi-latent-svd/sd21_young.json", timeout=30) as r:
            assert any(n["type"] == "AVITrainPhi" for n in json.load(r)["nodes"])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0 and out.rstrip().endswith("stopped"), out[-3000:]


def servers(port: int) -> list:
    """PIDs of ComfyUI main.py processes serving port."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"main.py" in args and str(port).encode() in args:
            found.append(pid)
    return found


def start_ui(base, port, until="Open "):
    """ui.py on port, read up to the first line starting with `until`; (process, lines printed)."""
    proc = ui_process(base, port)
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if line.startswith(until):
            break
    return proc, printed


def stop_ui(proc, signum) -> str:
    """Send signum to the launcher and wait for it; what it printed after that."""
    try:
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return out


def test_ui_ends_its_server_however_it_is_stopped_and_keeps_the_previous_log(tmp_path):
    import signal
    import time

    from devkit.server import PREVIOUS_LOG_NAME, free_port

    base = tmp_path / "base"  # one base: the tiny checkpoint is written once
    port = free_port()
    proc, printed = start_ui(base, port)
    assert printed[-1].startswith("Open ") and len(servers(port)) == 1, "".join(printed)[-3000:]
    out = stop_ui(proc, signal.SIGTERM)
    assert proc.returncode == 0 and out.rstrip().endswith("stopped (SIGTERM)"), out[-3000:]
    assert servers(port) == [], "SIGTERM to the launcher left the ComfyUI server running"
    first_port = port

    port = free_port()
    proc, printed = start_ui(base, port, until="Starting ComfyUI")
    time.sleep(1.0)  # main.py is importing by now
    out = stop_ui(proc, signal.SIGHUP)
    assert proc.returncode == 0 and out.rstrip().endswith("stopped (SIGHUP)"), out[-3000:]
    assert servers(port) == [], "SIGHUP to the launcher left the ComfyUI server running"
    assert f"127.0.0.1:{first_port}" in (base / PREVIOUS_LOG_NAME).read_text(), "the previous start's log is kept"

    port = free_port()
    proc, printed = start_ui(base, port, until="Starting ComfyUI")
    time.sleep(1.0)
    stop_ui(proc, signal.SIGKILL)  # no handler runs: the server's parent-death signal ends it
    deadline = time.monotonic() + 30
    while servers(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert servers(port) == [], "the server outlived a killed launcher"


def test_a_port_just_freed_counts_as_free():
    import socket

    from devkit.ui import port_is_free

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp's server socket
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        assert not port_is_free(port), "a listening port is busy"
        conn.close()  # the server side closes first: its port stays in TIME_WAIT for about a minute
        client.close()
    assert port_is_free(port), "a port in TIME_WAIT is free for a server that binds with SO_REUSEADDR, as main.py does"


def test_ui_interrupted_while_starting_leaves_no_server_behind(tmp_path):
    import signal
    import time

    from devkit.server import free_port

    port = free_port()
    proc = ui_process(tmp_path / "base", port)
    for line in proc.stdout:
        if line.startswith("Starting ComfyUI"):
            break
    time.sleep(1.0)  # main.py is importing by now, not yet answering
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert servers(port) == [], "the ComfyUI child was stopped with its launcher"


def test_ui_names_a_busy_port_and_what_to_do():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "devkit", "ui.py"), "--port", str(port)],
                             capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in run.stderr and f"make ui UI_PORT={port + 1}" in run.stderr
