"""The pack installed by the real ComfyUI-Manager, offline, into a ComfyUI that has no pack; then ComfyUI restarts.

ComfyUI 0.33 ships the Manager as a Python package (manager_requirements.txt: comfyui_manager==4.2.2, in the
host's venv) and starts it with --enable-manager. The install is what a user types in a terminal:
`cm-cli install <git URL>` with COMFYUI_PATH naming the ComfyUI. The URL is a bare repository on this
machine holding the working tree's HEAD (on CI, the commit under test), so the Manager clones what a user
clones from GitHub. It runs pip on each line of requirements.txt; the restarted ComfyUI runs a template.

Offline: the pip-installed Manager reads its custom-node list and the registry only from its cache or the
copy it ships (comfyui_manager/common/manager_util.py `is_manager_pip_package`); `network_mode = offline` in
its config.ini keeps the restarted server from fetching them at startup (glob/manager_server.py
`default_cache_update`). Every process here sends its HTTP(S) to a proxy that records and refuses each
request, and the test asserts it saw none (and, beforehand, that a child process's request does reach it).

The Manager logs "PyTorch is not installed" after the install: its PIPFixer looks for torchvision and torchaudio
distributions, and this venv has import-only placeholders for them (devkit/host_requirements.py); it then leaves
torch alone, which the test checks by the commands the Manager ran. cm-cli prints "Frozen ComfyUI mode": the host
is ComfyUI's source tarball, not a git clone, so the Manager knows no ComfyUI commit.

The ComfyUI is a copy of the host tree: cm-cli reads folder_paths without ComfyUI's arguments, so it writes
into the tree itself (custom_nodes/, user/__manager/), as in a user's clone.
"""
import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from PIL import Image

from devkit import host_env
from devkit.demo import DIGITS_NAME
from devkit.server import ComfyServer
from devkit.workflow_api import ui_to_api
from tests.host.avi_prompts import PACK_NODES
from tests.install.offline import RecordingProxy
from tests.install.support import COMFY_DIR, PACK_NAME, REPO_ROOT, requirement_lines

TEMPLATE = "digits_bold"  # runs on the demo model the pack brings: nothing to download
BLUEPRINTS = ("AVI attribute edit", "AVI edit an image")
MANAGER_CONFIG = "[default]\nnetwork_mode = offline\n"


def git(*args, cwd=REPO_ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def executed_commands(output: str) -> list:
    """The commands the Manager logged as it ran them ("## ComfyUI-Manager: EXECUTE => [...]"), in order."""
    marker = "## ComfyUI-Manager: EXECUTE => "
    return [ast.literal_eval(line.split(marker, 1)[1].strip()) for line in output.splitlines() if marker in line]


def bare_repository(folder) -> tuple:
    """A bare repository named as the pack, holding HEAD of this checkout as its main branch: (file URL, commit)."""
    repo = os.path.join(folder, f"{PACK_NAME}.git")
    git("init", "-q", "--bare", repo)
    git("config", "receive.shallowUpdate", "true", cwd=repo)  # CI's checkout may be shallow: the bare repository is too
    git("push", "-q", repo, "HEAD:refs/heads/main")
    git("symbolic-ref", "HEAD", "refs/heads/main", cwd=repo)
    # cm-cli takes a URL only with a host part (legacy/manager_core.py `is_valid_url`); git reads file://localhost/ as file:///.
    return "file://localhost" + urllib.parse.quote(os.path.abspath(repo)), git("rev-parse", "HEAD")


def fresh_comfyui(folder) -> str:
    """A copy of the host's ComfyUI tree with no custom node pack in it."""
    comfy = os.path.join(folder, "ComfyUI")
    shutil.copytree(COMFY_DIR, comfy, ignore=shutil.ignore_patterns("__pycache__"), symlinks=True)
    assert not os.path.exists(os.path.join(comfy, "custom_nodes", PACK_NAME))
    manager = os.path.join(comfy, "user", "__manager")
    os.makedirs(manager)
    with open(os.path.join(manager, "config.ini"), "w") as f:
        f.write(MANAGER_CONFIG)
    return comfy


def offline_env(proxy: RecordingProxy, comfy: str) -> dict:
    """The environment of cm-cli and of the restarted ComfyUI."""
    env = dict(os.environ, **proxy.env(), COMFYUI_PATH=comfy, HF_HUB_OFFLINE="1", COLUMNS="400", NO_COLOR="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (host_env.placeholder_path(), env.get("PYTHONPATH")) if p)
    # pip's weekly look for a newer pip is pip's own request, not the Manager's; the pin keeps torch where it is.
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONSTRAINT=os.path.join(REPO_ROOT, "devkit", "host-constraints.txt"))
    return env


class ManagedServer(ComfyServer):
    """The restarted ComfyUI: the copied tree is both program and base folder, the Manager on, offline."""

    def __init__(self, comfy: str, env: dict):
        super().__init__(comfy, host_dir=comfy, extra_args=["--enable-manager"], python=sys.executable)
        self._env = env

    def environment(self) -> dict:
        return dict(super().environment(), **self._env)


@pytest.fixture(scope="module")
def managed(tmp_path_factory):
    """{"install", "server", "pack", "commit", "url", "proxy", "seconds"}: cm-cli's run and the restarted server."""
    cm_cli = os.path.join(os.path.dirname(sys.executable), "cm-cli")
    if importlib.util.find_spec("comfyui_manager") is None or not os.path.isfile(cm_cli):  # found as main.py finds it
        pytest.fail(f"{sys.executable} has no ComfyUI-Manager: `{sys.executable} -m pip install -r "
                    f"{os.path.join(COMFY_DIR, 'manager_requirements.txt')}` (`make env-033` does it for the 0.33 host)")
    folder = tmp_path_factory.mktemp("manager")
    seconds = {}
    url, commit = bare_repository(folder)
    comfy = fresh_comfyui(folder)
    with RecordingProxy() as proxy:
        env = offline_env(proxy, comfy)
        start = time.monotonic()
        install = subprocess.run([cm_cli, "install", "--exit-on-fail", url], cwd=folder, env=env, capture_output=True,
                                 text=True, timeout=600, stdin=subprocess.DEVNULL)
        seconds["cm-cli install"] = time.monotonic() - start
        start = time.monotonic()
        with ManagedServer(comfy, env) as server:
            seconds["restart"] = time.monotonic() - start
            yield {"install": install, "server": server, "pack": os.path.join(comfy, "custom_nodes", PACK_NAME),
                   "commit": commit, "url": url, "proxy": proxy, "seconds": seconds}
    print("real Manager install timings (s):", {k: round(v, 1) for k, v in seconds.items()})


def test_the_recording_proxy_sees_a_child_processs_request():
    """The offline check below is only as good as the proxy: a request from a process given its env reaches it."""
    with RecordingProxy() as proxy:
        probe = "import urllib.request\ntry: urllib.request.urlopen('http://example.invalid/simple/', timeout=10)\nexcept OSError: pass"
        subprocess.run([sys.executable, "-c", probe], env=dict(os.environ, **proxy.env()), check=True, timeout=60)
        subprocess.run(["git", "ls-remote", "https://example.invalid/pack.git"], env=dict(os.environ, **proxy.env()),
                       capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proxy.requests == ["GET http://example.invalid/simple/", "CONNECT example.invalid:443"]


def test_cm_cli_clones_the_repository_and_installs_each_requirement(managed):
    install, pack = managed["install"], managed["pack"]
    output = install.stdout + install.stderr
    assert install.returncode == 0, output
    assert f"[INSTALLED] {managed['url']}" in output, output
    # pip ran once per requirement line and for nothing else: no torch rollback, no install.py, no other package.
    assert executed_commands(output) == [[sys.executable, "-m", "pip", "install", line] for line in requirement_lines()], output
    assert "install script failed" not in output, output
    # A git clone of the commit under test, its origin the URL given: what the Manager updates from later.
    assert git("rev-parse", "HEAD", cwd=pack) == managed["commit"]
    assert git("remote", "get-url", "origin", cwd=pack) == managed["url"]
    assert git("status", "--porcelain", cwd=pack) == "", "the install changed no tracked file"
    for name in BLUEPRINTS:
        assert os.path.isfile(os.path.join(pack, "subgraphs", f"{name}.json"))


def test_the_restarted_comfyui_runs_the_manager_offline_and_knows_the_pack(managed):
    server = managed["server"]
    log = server.log_text()
    assert "[START] ComfyUI-Manager" in log and "[ComfyUI-Manager] network_mode: offline" in log, log
    installed = server.get("/v2/customnode/installed")
    assert installed.get(PACK_NAME, {}).get("ver") == managed["commit"] and installed[PACK_NAME]["enabled"], installed


def test_the_pack_loads_from_the_managers_folder(managed):
    server, pack = managed["server"], managed["pack"]
    info = server.get("/object_info")
    ours = {node_id: node for node_id, node in info.items() if node_id.startswith("AVI")}
    assert {node_id: node["display_name"] for node_id, node in ours.items()} == PACK_NODES
    assert {node["python_module"] for node in ours.values()} == {f"custom_nodes.{PACK_NAME}"}
    assert {node["category"] for node in ours.values()} == {"AVI"}
    import_lines = [line for line in server.log_text().splitlines() if line.rstrip().endswith(pack)]
    assert len(import_lines) == 1 and "IMPORT FAILED" not in import_lines[0], import_lines
    assert DIGITS_NAME in info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0], "the demo model is offered"


def test_the_startup_log_has_no_problem_with_the_pack(managed):
    """Only the import-times line names the pack's folder: no traceback, warning or failure about it, Manager's included."""
    log, pack = managed["server"].log_text(), managed["pack"]
    assert [line for line in log.splitlines() if pack in line] == [line for line in log.splitlines()
                                                                   if line.rstrip().endswith(pack) and "seconds:" in line], log
    assert "Unable to parse pyproject.toml" not in log
    startup = log.split("Starting server")[0].splitlines()
    assert [line for line in startup if "avi" in line.lower() and "seconds:" not in line] == [], log


def test_templates_and_help_pages_are_served_from_the_managers_folder(managed):
    """What the template browser and the node library's help read: every example workflow, every node's page."""
    server, pack = managed["server"], managed["pack"]
    names = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(pack, "example_workflows")) if f.endswith(".json"))
    assert sorted(server.get("/workflow_templates").get(PACK_NAME, [])) == names and TEMPLATE in names
    for name in names:
        with urllib.request.urlopen(f"{server.url}/api/workflow_templates/{PACK_NAME}/{urllib.parse.quote(name)}.json",
                                    timeout=30) as resp, open(os.path.join(pack, "example_workflows", f"{name}.json"), "rb") as f:
            assert resp.read() == f.read(), name
    for node_id in PACK_NODES:
        with urllib.request.urlopen(f"{server.url}/extensions/{PACK_NAME}/docs/{urllib.parse.quote(node_id)}.md", timeout=30) as resp:
            text = resp.read().decode("utf-8")
        assert text.startswith("# ") and f"`{node_id}`" in text.splitlines()[0], node_id


def test_the_blueprints_are_served_as_global_subgraphs(managed):
    server, pack = managed["server"], managed["pack"]
    ours = {entry_id: entry for entry_id, entry in server.get("/global_subgraphs").items()
            if entry["info"].get("node_pack") == f"custom_nodes.{PACK_NAME}"}
    assert sorted(entry["name"] for entry in ours.values()) == sorted(BLUEPRINTS)
    for entry_id, entry in ours.items():
        served = server.get(f"/global_subgraphs/{entry_id}")
        with open(os.path.join(pack, "subgraphs", f"{entry['name']}.json"), encoding="utf-8") as f:
            assert json.loads(served["data"]) == json.load(f)


def test_a_template_runs_to_images_after_the_restart(managed):
    server = managed["server"]
    url = f"{server.url}/api/workflow_templates/{PACK_NAME}/{TEMPLATE}.json"
    with urllib.request.urlopen(url, timeout=30) as resp:
        workflow = json.load(resp)
    start = time.monotonic()
    entry = server.wait_for(server.queue_prompt(ui_to_api(workflow, server.get("/object_info"))), timeout=600)
    managed["seconds"][TEMPLATE] = time.monotonic() - start
    saved = {}
    for output in entry["outputs"].values():
        for image in output.get("images", []):
            if image["type"] == "output":
                with Image.open(os.path.join(server.base_dir, "output", image["subfolder"], image["filename"])) as png:
                    saved[image["filename"].rsplit("_", 2)[0]] = np.asarray(png.convert("RGB"), dtype=np.float32) / 255
    assert {"original", "edited", "side_by_side", "rho_sweep"} <= set(saved), sorted(saved)
    assert saved["original"].shape == saved["edited"].shape == (128, 128, 3)
    assert saved["original"].std() > 0.1, "a drawn digit"
    assert np.abs(saved["edited"] - saved["original"]).mean() > 0.005, "the edit is visible"


def test_nothing_reached_for_the_network(managed):
    """Last in this module: the install, the restart, the Manager's startup tasks and the template run asked for nothing."""
    assert managed["proxy"].requests == []
