"""The real ComfyUI server (main.py of the embedded host) as a subprocess, for tests and demos.

Everything the server writes (models, input, output, temp, user settings, log) goes under one
base directory; the database lives in memory and bytecode goes to a cache outside the repo, so
neither the repository nor the host tree is written to.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from devkit import host_env
from devkit.comfy_host import default_comfy_dir

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST_DIR = default_comfy_dir()  # $AVI_COMFYUI_DIR, else the embedded v0.3.75
PYCACHE = os.path.join(tempfile.gettempdir(), f"comfy-pycache-{os.getuid()}")
LOG_NAME = "server.log"
PREVIOUS_LOG_NAME = "server.previous.log"  # the log of the start before, kept for one more start
LOG_DECORATION = re.compile(r"^(?:\x1b\[[0-9;]*m)*\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\](?:\x1b\[[0-9;]*m)* |\x1b\[[0-9;]*m")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ServerError(RuntimeError):
    """The server did not start, answered with an error, or a prompt failed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent(parent: int):
    """preexec_fn for the server: on Linux, it gets SIGTERM when the thread that started it ends, however it ends."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: the child only calls it

    def set_parent_death_signal():
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)
    return set_parent_death_signal


def _keep_previous(path: str, previous: str) -> None:
    """Move the last log aside (replacing the one before it), so a new start does not erase it."""
    if os.path.exists(path):
        os.replace(path, previous)


def _place(target: str, source) -> None:
    """Put source (a path, linked, or bytes, written) at target."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target):
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        else:
            os.remove(target)
    if isinstance(source, (bytes, bytearray)):
        with open(target, "wb") as f:
            f.write(source)
    else:
        os.symlink(os.path.abspath(os.fspath(source)), target)


class ComfyServer:
    """Context manager: prepare base_dir, run main.py on 127.0.0.1 (a free port unless given), stop on exit."""

    def __init__(self, base_dir, custom_nodes=None, models=None, extra_args=(),
                 python=sys.executable, host_dir=HOST_DIR, start_timeout=120.0, port=None, cpu=True, inputs=None):
        self.base_dir = os.path.abspath(os.fspath(base_dir))
        self.custom_nodes = dict(custom_nodes or {})
        self.models = dict(models or {})
        self.inputs = dict(inputs or {})  # {file name in input/: bytes}
        self.extra_args = list(extra_args)
        self.python = python
        self.host_dir = host_dir
        self.start_timeout = start_timeout
        self.fixed_port = port
        self.cpu = cpu
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.base_dir, LOG_NAME)
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        """Create the base dir layout: custom node folders (links) and model files."""
        for sub in ("custom_nodes", "models", "input", "output", "temp", "user"):
            os.makedirs(os.path.join(self.base_dir, sub), exist_ok=True)
        for name, path in self.custom_nodes.items():
            _place(os.path.join(self.base_dir, "custom_nodes", name), path)
        for rel, source in self.models.items():
            _place(os.path.join(self.base_dir, "models", *rel.split("/")), source)
        for name, data in self.inputs.items():
            _place(os.path.join(self.base_dir, "input", name), data)

    def command(self) -> list:
        return [self.python, "main.py", *(["--cpu"] if self.cpu else []), "--listen", "127.0.0.1", "--port", str(self.port),
                "--base-directory", self.base_dir, "--disable-api-nodes",
                "--database-url", "sqlite:///:memory:", "--disable-auto-launch", *self.extra_args]

    def environment(self) -> dict:
        env = dict(os.environ)
        # Import-only torchvision/torchaudio where this Python has no working one (devkit/host_env.py).
        env["PYTHONPATH"] = os.pathsep.join(p for p in (host_env.placeholder_path(self.python), env.get("PYTHONPATH")) if p)
        # Bytecode cache outside the repo and host tree: faster restarts, no stray files.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE
        env["PYTHONUNBUFFERED"] = "1"
        # Tests run offline: tokenizers and configs come from the host tree, never from the hub.
        env.setdefault("HF_HUB_OFFLINE", "1")
        return env

    def start(self) -> "ComfyServer":
        """Start main.py and block until /object_info answers; raise with the log on failure."""
        self.prepare()
        self.port = self.fixed_port or free_port()
        # One log per start (no stale lines from a past run); the previous start's log is kept beside it.
        _keep_previous(self.log_path, os.path.join(self.base_dir, PREVIOUS_LOG_NAME))
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), cwd=self.host_dir, env=self.environment(),
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent(os.getpid()))
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()  # also on Ctrl-C while starting: no orphaned server
            raise
        return self

    def _wait_until_ready(self) -> None:
        """Block until /object_info answers; raise ServerError if the server exits or times out."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"ComfyUI exited with code {self.proc.returncode}:\n{self.log_text()}")
            try:
                self.get("/object_info", timeout=30)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"ComfyUI did not answer /object_info within {self.start_timeout} s:\n"
                                  f"{self.log_text()}")
            time.sleep(0.25)

    def stop(self) -> None:
        """Terminate the server, kill it if it does not exit within 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_text(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        if self._log is not None:
            self._log.flush()
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_lines(self) -> list:
        """The server's log as lines, without the colour codes and "[INFO] " level tags newer hosts put before each."""
        return [LOG_DECORATION.sub("", line) for line in self.log_text().splitlines()]

    def _request(self, method: str, path: str, payload=None, timeout=30.0):
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body.strip() else None

    def get(self, path: str, timeout=30.0):
        """GET path; the decoded JSON answer."""
        return self._request("GET", path, timeout=timeout)

    def post(self, path: str, payload, timeout=30.0):
        """POST JSON to path; the decoded JSON answer (None when empty)."""
        return self._request("POST", path, payload, timeout=timeout)

    def queue_prompt(self, prompt: dict, client_id=None) -> str:
        """POST /prompt (API format); the prompt_id. Raise with the node errors when rejected."""
        payload = {"prompt": prompt}
        if client_id is not None:
            payload["client_id"] = client_id
        try:
            return self.post("/prompt", payload)["prompt_id"]
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", errors="replace")
            raise ServerError(f"prompt rejected ({e.code}): {_describe_rejection(body)}") from None

    def wait_for(self, prompt_id: str, timeout=300.0) -> dict:
        """Poll /history/<id> until the prompt finished; its history entry. Raise if it failed."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.get(f"/history/{urllib.parse.quote(prompt_id)}").get(prompt_id)
            if entry is not None:
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    raise ServerError(f"prompt {prompt_id} failed: {_describe_messages(status.get('messages', []))}")
                return entry
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f"ComfyUI exited while running {prompt_id}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise ServerError(f"prompt {prompt_id} not finished within {timeout} s:\n{self.log_text()[-4000:]}")
            time.sleep(0.2)


def _describe_rejection(body: str) -> str:
    """The error and node_errors of a 400 answer from /prompt, as text."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    lines = []
    error = data.get("error") or {}
    lines.append(f"{error.get('message', '')} {error.get('details', '')}".strip())
    for node_id, info in (data.get("node_errors") or {}).items():
        for err in info.get("errors", []):
            lines.append(f"node {node_id} ({info.get('class_type')}): {err.get('message')}: {err.get('details')}")
    return "\n".join(lines)


def _describe_messages(messages: list) -> str:
    """The execution_error (or interruption) of a history status, as text."""
    for kind, data in messages:
        if kind == "execution_error":
            return (f"node {data.get('node_id')} ({data.get('node_type')}): {data.get('exception_type')}: "
                    f"{data.get('exception_message')}\n{''.join(data.get('traceback') or [])}")
        if kind == "execution_interrupted":
            return f"interrupted at node {data.get('node_id')} ({data.get('node_type')})"
    return json.dumps(messages)
