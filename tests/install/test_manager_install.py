"""The pack installed as ComfyUI-Manager installs it, then run by the real ComfyUI server.

Manager (and the Comfy Registry) put the pack's files into <ComfyUI>/custom_nodes/<node id>
as a plain folder and run `python -m pip install <line>` for each line of its requirements.txt.
The files are git's tracked files: a clone of the repository, or the archive `comfy node publish`
makes from `git ls-files`. This test copies the tracked files as they are in the working tree:
on a clean clone (CI) that is exactly `git archive HEAD`; locally it also covers edits not yet
committed, while a new file that git does not track yet is left out, as a clone would leave it.

It runs only on hosts that do not ship the Manager (tests/install/conftest.py): ComfyUI v0.3.75 has no
manager_requirements.txt and no --enable-manager, and the Manager its users have is the ComfyUI-Manager custom node,
cloned from GitHub into custom_nodes/, which an offline CI run cannot fetch. On ComfyUI 0.33, which ships the Manager
as a package, test_comfyui_manager.py has the real Manager install the pack instead.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from PIL import Image

from devkit.server import ComfyServer
from tests.host.avi_prompts import PACK_NODES, edit_prompt
from tests.install.support import PACK_NAME, REPO_ROOT, TORCH_FAMILY, requirement_lines

CHECKPOINT = "tiny_sd2_eps.safetensors"


def tracked_files() -> list:
    """Paths git tracks, relative to the repository root; ones deleted in the working tree left out."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p and os.path.isfile(os.path.join(REPO_ROOT, p))]


def install_copy(dest: str) -> list:
    """Copy the tracked files into dest (a plain folder, no .git); the copied relative paths."""
    files = tracked_files()
    for rel in files:
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(REPO_ROOT, rel), target, follow_symlinks=False)
    return files


class SingleThreadServer(ComfyServer):
    """Tiny tensors run faster on one thread than on two contended ones (devkit HOST notes)."""

    def environment(self) -> dict:
        return dict(super().environment(), OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """{"server", "pack", "files", "seconds"}: the pack copied into custom_nodes, requirements
    installed line by line, a tiny checkpoint in models/checkpoints, the server up."""
    seconds = {}
    base = tmp_path_factory.mktemp("manager_install")
    pack = os.path.join(base, "custom_nodes", PACK_NAME)
    start = time.monotonic()
    files = install_copy(pack)
    seconds["copy"] = time.monotonic() - start
    start = time.monotonic()
    for line in requirement_lines(os.path.join(pack, "requirements.txt")):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", line], cwd=pack, check=True)
    seconds["pip"] = time.monotonic() - start
    start = time.monotonic()
    checkpoint = os.path.join(base, "models", "checkpoints", CHECKPOINT)
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "devkit", "write_tiny_checkpoint.py"), checkpoint],
                   cwd=REPO_ROOT, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    seconds["checkpoint"] = time.monotonic() - start
    start = time.monotonic()
    server = SingleThreadServer(base, custom_nodes={"avi-tiny-models": os.path.join(REPO_ROOT, "devkit", "tiny_model_pack")})
    with server:
        seconds["server_start"] = time.monotonic() - start
        yield {"server": server, "pack": pack, "files": files, "seconds": seconds}


def test_install_is_a_plain_copy_of_the_tracked_files(installed):
    pack = installed["pack"]
    assert os.path.isdir(pack) and not os.path.islink(pack)
    on_disk = {os.path.relpath(os.path.join(folder, name), pack)
               for folder, _, names in os.walk(pack) for name in names}
    on_disk = {p for p in on_disk if "__pycache__" not in p.split(os.sep)}  # written by the server's imports
    assert on_disk == set(installed["files"])
    for needed in ("__init__.py", "nodes/__init__.py", "avi_core/__init__.py", "pyproject.toml",
                   "requirements.txt", "LICENSE"):
        assert needed in on_disk, f"{needed} is not tracked by git, so a clone or registry archive lacks it"
    assert not any(p.split("/")[0] in (".git", ".venv", ".venv-cli", ".host") for p in on_disk)


@pytest.mark.parametrize("line", requirement_lines())
def test_each_requirement_installs_on_its_own_without_torch(line, tmp_path):
    """What `pip install <line>` would install into an empty environment: never a torch build."""
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
                    "--report", str(report), line], check=True, capture_output=True, timeout=300)
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert names and not names & TORCH_FAMILY
    assert not any(n.startswith("nvidia-") for n in names)


def test_every_node_is_served_from_the_installed_folder(installed):
    info = installed["server"].get("/object_info")
    ours = {node_id: node for node_id, node in info.items() if node_id.startswith("AVI")}
    assert {node_id: node["display_name"] for node_id, node in ours.items()} == PACK_NODES
    for node in ours.values():
        assert node["category"] == "AVI"
        assert node["python_module"] == f"custom_nodes.{PACK_NAME}"


def test_workflow_templates_list_the_workflows_folder(installed):
    server = installed["server"]
    expected = sorted(os.path.splitext(os.path.basename(p))[0]
                      for p in glob.glob(os.path.join(installed["pack"], "example_workflows", "*.json")))
    templates = server.get("/workflow_templates")
    assert sorted(templates.get(PACK_NAME, [])) == expected
    for name in expected:
        url = f"{server.url}/api/workflow_templates/{PACK_NAME}/{urllib.parse.quote(name)}.json"
        with urllib.request.urlopen(url, timeout=30) as resp:
            served = resp.read()
        with open(os.path.join(installed["pack"], "example_workflows", f"{name}.json"), "rb") as f:
            assert served == f.read()


def test_every_node_has_its_help_page_where_the_frontend_looks(installed):
    """The node library's help: /extensions/<pack folder>/docs/<node id>.md (comfyui-frontend-package's NodeHelpService)."""
    for node_id in PACK_NODES:
        url = f"{installed['server'].url}/extensions/{PACK_NAME}/docs/{urllib.parse.quote(node_id)}.md"
        with urllib.request.urlopen(url, timeout=30) as resp:
            text = resp.read().decode("utf-8")
        assert text.startswith("# ") and f"`{node_id}`" in text.splitlines()[0], node_id
        assert len(text) > 200, node_id


def test_help_pages_are_the_node_docs_sections():
    """web/docs is generated from docs/nodes.md (devkit/build_node_docs.py): an edit to either shows here."""
    from devkit.build_node_docs import DOCS_DIR, NODES_DOC, build
    with open(NODES_DOC, encoding="utf-8") as f:
        pages = build(f.read())
    assert sorted(pages) == sorted(PACK_NODES)
    on_disk = {}
    for name in os.listdir(DOCS_DIR):
        with open(os.path.join(DOCS_DIR, name), encoding="utf-8") as f:
            on_disk[name[:-3]] = f.read()
    assert on_disk == pages, "web/docs differs from `python devkit/build_node_docs.py`; rebuild it"


def test_startup_log_has_no_problem_with_the_pack(installed):
    log = installed["server"].log_text()
    pack = installed["pack"]
    import_lines = [line for line in log.splitlines() if line.rstrip().endswith(pack)]
    assert len(import_lines) == 1 and "seconds:" in import_lines[0], log
    assert "IMPORT FAILED" not in import_lines[0]
    # Tracebacks, warnings and failures about a pack name its folder; only the import-times line may.
    assert [line for line in log.splitlines() if pack in line] == import_lines, log
    assert "Unable to parse pyproject.toml" not in log
    # Nor does any other startup line speak of AVI (the fixture pack's import line aside).
    assert "Starting server" in log
    startup = log.split("Starting server")[0].splitlines()
    assert [line for line in startup if "avi" in line.lower() and "seconds:" not in line] == [], log


def test_tiny_edit_runs_through_post_prompt(installed):
    server = installed["server"]
    start = time.monotonic()
    prompt_id = server.queue_prompt(edit_prompt(CHECKPOINT))
    entry = server.wait_for(prompt_id, timeout=300)
    installed["seconds"]["edit"] = time.monotonic() - start
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"]
    outputs = entry["outputs"]
    assert set(outputs) == {"edited", "unedited", "loss_plot"}
    for node_id, output in outputs.items():
        (image,) = output["images"]
        path = os.path.join(server.base_dir, image["type"], image["subfolder"], image["filename"])
        with Image.open(path) as png:
            assert png.format == "PNG"
            if node_id != "loss_plot":
                assert png.size == (128, 128)
    print("manager install timings (s):", {k: round(v, 1) for k, v in installed["seconds"].items()})
