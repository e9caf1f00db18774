"""Comfy Registry metadata: `comfy node validate`, ComfyUI's own pyproject parser, and the
registry's pyproject.toml specification (docs.comfy.org/registry/specifications)."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.install.support import COMFY_DIR, PACK_NAME, REPO_ROOT, TORCH_FAMILY, pyproject, requirement_lines

# comfy-cli lives in its own venv (`make cli`, part of `make env`); AVI_COMFY_CLI names another.
COMFY_CLI = os.environ.get("AVI_COMFY_CLI") or os.path.join(REPO_ROOT, ".venv-cli", "bin", "comfy")
PASSED = "All validation checks passed successfully"


def _no_network_prefix() -> list:
    """`unshare -rn` (a network namespace with no interfaces) where this machine allows it, else nothing."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


def comfy_node_validate(cwd, home) -> subprocess.CompletedProcess:
    """`comfy node validate` in cwd, offline where possible, telemetry off, config under home."""
    if not os.path.isfile(COMFY_CLI):
        pytest.fail(f"{COMFY_CLI} is missing: `make env` installs comfy-cli (target cli)")
    env = dict(os.environ, HOME=str(home), DO_NOT_TRACK="1", COMFY_NO_TELEMETRY="1",
               RUFF_NO_CACHE="true", NO_COLOR="1", COLUMNS="200")
    # Where no namespace can be made, proxies on a closed port make any HTTP attempt fail loudly.
    if not _no_network_prefix():
        env.update({k: "http://127.0.0.1:9" for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                                        "http_proxy", "https_proxy", "all_proxy")})
    cmd = _no_network_prefix() + [COMFY_CLI, "--skip-prompt", "--no-json", "node", "validate"]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_comfy_node_validate_passes_offline(tmp_path):
    ruff_cache = os.path.join(REPO_ROOT, ".ruff_cache")
    had_cache = os.path.exists(ruff_cache)
    start = time.monotonic()
    result = comfy_node_validate(REPO_ROOT, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert PASSED in output
    assert not re.search(r"warning|error", output, re.IGNORECASE), output
    assert time.monotonic() - start < 60
    assert os.path.exists(ruff_cache) == had_cache  # its ruff step wrote no cache into the repository


def test_comfy_node_validate_reports_what_it_checks(tmp_path):
    """The same run on a broken copy: the messages the check above looks for do appear."""
    node = tmp_path / "node"
    node.mkdir()
    text = open(os.path.join(REPO_ROOT, "pyproject.toml"), encoding="utf-8").read()
    text = text.replace('requires-comfyui = ">=0.3.75"', 'requires-comfyui = "0.3"')
    text = text.replace('"Operating System :: OS Independent"', '"Operating System :: Plan 9"')
    (node / "pyproject.toml").write_text(text, encoding="utf-8")
    (node / "__init__.py").write_text("exec('x = 1')\n", encoding="utf-8")
    result = comfy_node_validate(node, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output  # comfy-cli only warns about these
    assert 'Invalid requires-comfyui format: "0.3"' in output
    assert "Invalid Operating System classifier" in output
    assert "Security warnings found" in output and "S102" in output
    assert PASSED not in output
    (node / "pyproject.toml").unlink()
    assert comfy_node_validate(node, tmp_path).returncode != 0


def test_comfy_cli_venv_has_no_torch():
    python = os.path.join(os.path.dirname(COMFY_CLI), "python")
    found = subprocess.run([python, "-c", "import importlib.util as u, sys; "
                            "print([n for n in sys.argv[1:] if u.find_spec(n)])", *sorted(TORCH_FAMILY)],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]"


PARSE = """
import json, sys, warnings
sys.path.insert(0, sys.argv[1])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from comfy_config import config_parser
    config = config_parser.extract_node_configuration(sys.argv[2])
print(json.dumps({"config": config.model_dump(), "warnings": [str(w.message) for w in caught]}))
"""


def test_comfyui_parses_the_pyproject_as_the_registry_reads_it():
    """comfy_config.config_parser is what ComfyUI runs on every pack it loads (nodes.load_custom_node)."""
    result = subprocess.run([sys.executable, "-c", PARSE, COMFY_DIR, REPO_ROOT],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    parsed = json.loads(result.stdout)
    assert parsed["warnings"] == []
    project, comfy = parsed["config"]["project"], parsed["config"]["tool_comfy"]
    assert project["name"] == PACK_NAME and project["version"] == "0.1.0"
    assert project["supported_comfyui_version"] == ">=0.3.75"
    assert project["dependencies"] == requirement_lines()
    assert project["license"] == {"file": "LICENSE", "text": ""}
    assert project["urls"]["repository"] == "https://github.com/avi-latent/avi-latent-svd"
    assert project["supported_os"] == ["OS Independent"] and project["supported_accelerators"] == []
    assert project["requires_python"] == ">=3.10"
    assert comfy["publisher_id"] == "avi-latent" and comfy["display_name"] == "AVI Latent SVD Editing"
    assert comfy["web"] is None and comfy["includes"] == [] and comfy["models"] == []


def test_dependencies_are_the_requirements_lines():
    assert pyproject()["project"]["dependencies"] == requirement_lines()


def test_requirements_add_only_what_comfyui_lacks():
    """requirements.txt names no torch build and nothing ComfyUI's own requirements already install."""
    ours = {canonicalize_name(Requirement(line).name) for line in requirement_lines()}
    comfy = {canonicalize_name(Requirement(line).name)
             for line in requirement_lines(os.path.join(COMFY_DIR, "requirements.txt"))}
    assert ours and not ours & (comfy | TORCH_FAMILY)
    assert all(not Requirement(line).url for line in requirement_lines())


def test_pyproject_follows_the_registry_specification():
    data = pyproject()
    project, comfy = data["project"], data["tool"]["comfy"]
    name = project["name"]
    # node id: < 100 chars; letters, digits, - _ .; no run of special chars; starts with a letter
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z](?:[A-Za-z0-9]|[-_.](?=[A-Za-z0-9]))*", name)
    assert "comfyui" not in name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["license"] == {"file": "LICENSE"}
    assert project["description"] and project["requires-python"]
    assert project["urls"]["Repository"].startswith("https://github.com/")
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert comfy["Icon"] == "" or comfy["Icon"].startswith("https://")
    assert re.fullmatch(r">=\d+\.\d+\.\d+", comfy["requires-comfyui"])
    assert data["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]


def test_license_and_changelog_match_the_metadata():
    with open(os.path.join(REPO_ROOT, "LICENSE"), encoding="utf-8") as f:
        license_text = f.read()
    assert license_text.split()[:5] == ["GNU", "GENERAL", "PUBLIC", "LICENSE", "Version"]
    assert "Version 3, 29 June 2007" in license_text and "END OF TERMS AND CONDITIONS" in license_text
    with open(os.path.join(REPO_ROOT, "CHANGELOG.md"), encoding="utf-8") as f:
        releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", f.read(), re.MULTILINE)
    assert releases and releases[0] == pyproject()["project"]["version"]
