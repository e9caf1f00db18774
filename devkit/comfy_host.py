"""In-process headless ComfyUI for tests and the demo: boot once, run API-format prompts, read outputs."""
# A real ComfyUI: the same node registry, executor and validation, the pack loaded from
# <base>/custom_nodes as main.py loads it. Only the web server is left out: HarnessServer stands
# in for the PromptServer members the executor and nodes use, and records every message.
import asyncio
import contextlib
import copy
import functools
import json
import logging
import os
import sys
import threading
import time
import traceback
import types
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK_NAME = "avi-latent-svd"
CLIENT_ID = "avi-harness"

_prepared: dict = {}
_host: list = []


class HostError(RuntimeError):
    """A prompt did not run; the message carries ComfyUI's own error."""


class PromptInvalid(HostError):
    """execution.validate_prompt refused the prompt (what POST /prompt would answer with 400)."""

    def __init__(self, message: str, validation: "Validation"):
        super().__init__(message)
        self.validation = validation


class ExecutionFailed(HostError):
    """A node raised during execution; `result` holds what ran before it."""

    def __init__(self, message: str, result: "RunResult"):
        super().__init__(message)
        self.result = result


class ExecutionInterrupted(HostError):
    """The run stopped on nodes.interrupt_processing(); `result` holds what ran before it."""

    def __init__(self, message: str, result: "RunResult"):
        super().__init__(message)
        self.result = result


class LogLine(NamedTuple):
    level: int
    logger: str
    message: str


class ProgressEvent(NamedTuple):
    value: float
    total: float
    node_id: Optional[str]


class Validation(NamedTuple):
    ok: bool
    error: Optional[dict]
    outputs: list
    node_errors: dict


def default_comfy_dir() -> str:
    """The embedded ComfyUI tree: $AVI_COMFYUI_DIR or <repo>/.host/comfyui."""
    return os.path.abspath(os.environ.get("AVI_COMFYUI_DIR") or os.path.join(REPO_ROOT, ".host", "comfyui"))


def _front_of_sys_path(path: str) -> None:
    """Move path to sys.path[0]."""
    while path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)


def prepare(base_dir: str, comfy_dir: Optional[str] = None, cpu: bool = True) -> str:
    """Make ComfyUI importable, rooted at base_dir and CPU-only unless cpu=False (idempotent); return its dir."""
    base_dir = os.path.abspath(base_dir)
    comfy_dir = os.path.abspath(comfy_dir) if comfy_dir else default_comfy_dir()
    if _prepared:
        if (_prepared["base_dir"], _prepared["comfy_dir"]) != (base_dir, comfy_dir):
            raise RuntimeError(
                f"ComfyUI is already set up in this process with base_dir={_prepared['base_dir']!r}, "
                f"comfy_dir={_prepared['comfy_dir']!r}; its module state cannot be reset "
                f"(asked for base_dir={base_dir!r}, comfy_dir={comfy_dir!r})")
        return comfy_dir
    if not os.path.isfile(os.path.join(comfy_dir, "comfyui_version.py")):
        raise FileNotFoundError(f"no ComfyUI tree at {comfy_dir}: run `make env` or set AVI_COMFYUI_DIR")
    if "folder_paths" in sys.modules or "comfy.model_management" in sys.modules:
        raise RuntimeError("ComfyUI modules were imported before devkit.comfy_host.prepare(); "
                           "their settings (CPU, base directory) are read at import and can no longer be set")
    # Import-only torchvision/torchaudio where this interpreter has no working one (devkit/host_env.py).
    from . import host_env
    placeholders = host_env.placeholder_path()
    if placeholders:
        _front_of_sys_path(placeholders)
    _front_of_sys_path(comfy_dir)
    # Not comfy.options.enable_args_parsing(): it would parse pytest's argv. Defaults, then ours.
    from comfy.cli_args import args
    args.cpu = cpu
    args.base_directory = base_dir
    os.makedirs(base_dir, exist_ok=True)
    _prepared.update(base_dir=base_dir, comfy_dir=comfy_dir)
    return comfy_dir


@contextlib.contextmanager
def capture_logs(level: int = logging.INFO):
    """Collect the records ComfyUI logs inside the block (root logger) as LogLines."""
    lines: list = []

    class _Collect(logging.Handler):
        def emit(self, record):
            lines.append(LogLine(record.levelno, record.name, record.getMessage()))

    root = logging.getLogger()
    handler = _Collect(level)
    previous_level = root.level
    root.addHandler(handler)
    if previous_level > level:  # ComfyUI logs INFO; the root default (WARNING) would drop it
        root.setLevel(level)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def problems(lines: list) -> list:
    """The warning and error lines of a captured log."""
    return [line for line in lines if line.level >= logging.WARNING]


class HarnessServer:
    """The members of server.PromptServer that the executor and nodes use; records every message."""

    def __init__(self):
        from aiohttp import web
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata: dict = {}
        self.messages: list = []
        self.listeners: list = []  # callables (event, data), told of each message as it is sent
        # Packs may register HTTP routes at import; they are kept but never served here.
        self.routes = web.RouteTableDef()
        try:  # newer hosts: nodes register replacements for old node ids; POST /prompt applies them
            from app.node_replace_manager import NodeReplaceManager
        except ImportError:
            pass
        else:
            self.node_replace_manager = NodeReplaceManager()

    def send_sync(self, event, data, sid=None):
        """Record a message the server would send over the websocket."""
        self.messages.append((event, data))
        for listener in self.listeners:
            listener(event, data)

    def send_progress_text(self, text, node_id, sid=None):
        """Record the progress text a node shows under itself."""
        self.send_sync("progress_text", {"node_id": node_id, "text": text})

    def queue_updated(self):
        """No queue here: prompts run synchronously."""


@dataclass
class RunResult:
    """Everything one prompt execution produced."""

    prompt_id: str
    outputs: dict  # node id -> list of output slots, each the list of items ComfyUI keeps
    ui: dict  # executor.history_result: {"outputs": {node id: ui dict}, "meta": {...}}
    messages: list  # (event, data) a websocket client would have received
    status_messages: list  # (event, data) that go into /history status

    def output(self, node_id, slot: int = 0) -> Any:
        """The first item of an output slot (a node's return value for that slot)."""
        return self.output_list(node_id, slot)[0]

    def output_list(self, node_id, slot: int = 0) -> list:
        """All items of an output slot (more than one for list outputs)."""
        node_id = str(node_id)
        if node_id not in self.outputs:
            raise KeyError(f"node {node_id} has no outputs in this run (ran: {sorted(self.outputs)})")
        return self.outputs[node_id][slot]

    def events(self, name: str) -> list:
        """The data of every message of one event type, in order."""
        return [data for event, data in self.messages if event == name]

    @property
    def executed(self) -> list:
        """Node ids that ran (not served from cache), in execution order."""
        return [d["node"] for d in self.events("executing") if d.get("node") is not None]

    @property
    def cached(self) -> list:
        """Node ids served from the executor's cache."""
        return [n for d in self.events("execution_cached") for n in d["nodes"]]


@dataclass
class PackLoad:
    """How loading one custom-node folder went."""

    path: str
    success: bool
    log: list = field(default_factory=list)


@dataclass
class Host:
    """A booted in-process ComfyUI."""

    base_dir: str
    comfy_dir: str
    server: HarnessServer
    boot_log: list
    boot_seconds: float
    extra_model_paths: Optional[str] = None
    pack: Optional[PackLoad] = None
    _base_node_names: frozenset = frozenset()

    # --- packs -------------------------------------------------------------------------------

    def install_pack(self, src_dir: str, name: str) -> PackLoad:
        """Symlink src_dir to <base>/custom_nodes/<name> and load it as ComfyUI loads custom nodes."""
        import folder_paths
        import hook_breaker_ac10a0
        import nodes
        src_dir = os.path.abspath(src_dir)
        link = os.path.join(folder_paths.get_folder_paths("custom_nodes")[0], name)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link) and os.readlink(link) != src_dir:
            os.remove(link)
        if not os.path.lexists(link):
            os.symlink(src_dir, link, target_is_directory=True)
        # As nodes.init_external_custom_nodes: packs cannot replace built-in nodes; main.py
        # restores the functions custom nodes must not hook.
        hook_breaker_ac10a0.save_functions()
        try:
            with capture_logs() as log:
                ok = asyncio.run(nodes.load_custom_node(link, set(self._base_node_names), module_parent="custom_nodes"))
        finally:
            hook_breaker_ac10a0.restore_functions()
        return PackLoad(path=link, success=bool(ok), log=log)

    # --- prompts -----------------------------------------------------------------------------

    def new_executor(self):
        """A PromptExecutor as main.py's prompt worker makes it with --cache-classic (no LRU, no RAM limit)."""
        import execution
        # Newer hosts read cache_args["ram_inactive"] (the RAM-pressure cache's headroom) on every run.
        return execution.PromptExecutor(self.server, cache_type=execution.CacheType.CLASSIC,
                                        cache_args={"lru": 0, "ram": 0, "ram_inactive": 0})

    def validate(self, prompt: dict, outputs: Optional[list] = None) -> Validation:
        """execution.validate_prompt on a copy of the prompt (what POST /prompt checks)."""
        import execution
        result = asyncio.run(execution.validate_prompt(str(uuid.uuid4()), copy.deepcopy(prompt), outputs))
        return Validation(*result)

    def run(self, prompt: dict, outputs: Optional[list] = None, extra_data: Optional[dict] = None,
            executor=None) -> RunResult:
        """Execute an API-format prompt; raise HostError with ComfyUI's message if it does not finish."""
        # outputs=None: validate as POST /prompt does and run the output nodes. A list of node ids
        # runs exactly those (any node can be a target) without that validation. A fresh executor
        # per call runs every node; pass one from new_executor() to keep the cache between runs.
        prompt = copy.deepcopy(prompt)  # the executor writes into the prompt (is_changed)
        if outputs is None:
            if hasattr(self.server, "node_replace_manager"):
                self.server.node_replace_manager.apply_replacements(prompt)
            validation = self.validate(prompt)
            if not validation.ok:
                raise PromptInvalid(_format_validation(validation), validation)
            outputs = validation.outputs
        executor = executor if executor is not None else self.new_executor()
        prompt_id = str(uuid.uuid4())
        self.server.messages = []
        self.server.last_prompt_id = prompt_id
        executor.execute(prompt, prompt_id, {"client_id": CLIENT_ID, **(extra_data or {})}, [str(o) for o in outputs])
        # As main.py's prompt worker: tells the client the prompt is done.
        self.server.send_sync("executing", {"node": None, "prompt_id": prompt_id}, self.server.client_id)
        result = RunResult(
            prompt_id=prompt_id,
            outputs=_collect_outputs(executor, prompt),
            ui=getattr(executor, "history_result", {}),
            messages=list(self.server.messages),
            status_messages=list(executor.status_messages),
        )
        _raise_on_failure(result)
        return result

    # --- node information --------------------------------------------------------------------

    def object_info(self) -> dict:
        """What GET /object_info returns: server.py's node_info for every node, through JSON."""
        import folder_paths
        import nodes
        with folder_paths.cache_helper:
            out = {}
            for name in nodes.NODE_CLASS_MAPPINGS:
                try:
                    out[name] = node_info(name)
                except Exception:
                    logging.error(f"[ERROR] An error occurred while retrieving information for the '{name}' node.")
                    logging.error(traceback.format_exc())
        return json.loads(json.dumps(out))

    # --- progress and interruption -----------------------------------------------------------

    def _progress_hook(self, value, total, preview_image, prompt_id=None, node_id=None):
        """main.py's hijack_progress hook: honour interrupts, update progress state, tell the client."""
        import comfy.model_management
        from comfy_api import feature_flags
        from comfy_execution.progress import get_progress_state
        from comfy_execution.utils import get_executing_context
        from protocol import BinaryEventTypes
        context = get_executing_context()
        if prompt_id is None and context is not None:
            prompt_id = context.prompt_id
        if node_id is None and context is not None:
            node_id = context.node_id
        comfy.model_management.throw_exception_if_processing_interrupted()
        prompt_id = prompt_id if prompt_id is not None else self.server.last_prompt_id
        node_id = node_id if node_id is not None else self.server.last_node_id
        get_progress_state().update_progress(node_id, value, total, preview_image)
        self.server.send_sync("progress", {"value": value, "max": total, "prompt_id": prompt_id, "node": node_id}, self.server.client_id)
        if preview_image is not None and not feature_flags.supports_feature(
                self.server.sockets_metadata, self.server.client_id, "supports_preview_metadata"):
            self.server.send_sync(BinaryEventTypes.UNENCODED_PREVIEW_IMAGE, preview_image, self.server.client_id)

    @contextlib.contextmanager
    def _wrapped_progress_hook(self, before):
        """Install a hook that calls before(...) and then the current hook; restore it on exit."""
        import comfy.utils
        previous = comfy.utils.PROGRESS_BAR_HOOK

        def hook(value, total, preview_image, prompt_id=None, node_id=None):
            before(value, total, node_id)
            if previous is not None:
                previous(value, total, preview_image, prompt_id=prompt_id, node_id=node_id)

        comfy.utils.set_progress_bar_global_hook(hook)
        try:
            yield
        finally:
            comfy.utils.set_progress_bar_global_hook(previous)

    @contextlib.contextmanager
    def progress_events(self, on_event: Optional[Callable[[int, int, Optional[str]], None]] = None):
        """Record (value, total, node_id) of every comfy.utils.ProgressBar update inside the block."""
        # Samplers report through ProgressBar. The V3 set_progress API bypasses the hook: its
        # updates arrive as "progress_state" messages in RunResult.messages.
        from comfy_execution.utils import get_executing_context
        events: list = []

        def record(value, total, node_id):
            context = get_executing_context()
            if node_id is None:
                node_id = context.node_id if context is not None else self.server.last_node_id
            events.append(ProgressEvent(value, total, node_id))
            if on_event is not None:
                on_event(value, total, node_id)

        with self._wrapped_progress_hook(record):
            yield events

    @contextlib.contextmanager
    def interrupt_after(self, events: Optional[int] = None, seconds: Optional[float] = None):
        """Interrupt from another thread after N progress events or S seconds; yields {"fired", "events"}."""
        # The flag is cleared on exit: an interrupt that found nothing to stop must not leak.
        import nodes
        if (events is None) == (seconds is None):
            raise ValueError("give exactly one of events= or seconds=")
        state = {"fired": False, "events": 0}

        def fire():
            state["fired"] = True
            nodes.interrupt_processing(True)

        def count(value, total, node_id):
            state["events"] += 1
            if events is not None and state["events"] == events:
                # Joined, so the hook that runs next (main.py's) raises at exactly this event.
                thread = threading.Thread(target=fire, name="avi-interrupt")
                thread.start()
                thread.join()

        timer = None
        if seconds is not None:
            timer = threading.Timer(seconds, fire)
            timer.daemon = True
            timer.start()
        try:
            with self._wrapped_progress_hook(count):
                yield state
        finally:
            if timer is not None:
                timer.cancel()
                timer.join()
            nodes.interrupt_processing(False)


def progress_is_throttled() -> bool:
    """Whether the host's ProgressBar holds updates back from the hook (newer hosts: 100 ms and 0.5 % apart;
    the first, the last and those with a preview always pass)."""
    import comfy.utils
    return hasattr(comfy.utils, "PROGRESS_THROTTLE_MIN_INTERVAL")


def node_info(node_class: str) -> dict:
    """What GET /object_info/<node_class> returns: the host's own node_info, call for call."""
    return _host_node_info()(node_class)


@functools.lru_cache(maxsize=None)
def _host_node_info() -> Callable[[str], dict]:
    """server.py's node_info, a closure inside PromptServer (its __init__ or add_routes), compiled on its own.

    Each host version describes nodes differently (newer ones add is_input_list, search_aliases,
    has_intermediate_output, ...); taking the function from the host's source serves exactly what
    its server would, without starting one. It reads only server.py's module globals.
    """
    import ast

    import server
    with open(server.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read(), server.__file__)
    found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "node_info"]
    if len(found) != 1:
        raise RuntimeError(f"{len(found)} functions node_info in {server.__file__} (one expected): the harness cannot describe nodes")
    # The function's code object, made into a function over server.py's globals (no closure cells: it has none).
    module_code = compile(ast.Module(body=found, type_ignores=[]), server.__file__, "exec")
    (code,) = [c for c in module_code.co_consts if isinstance(c, types.CodeType) and c.co_name == "node_info"]
    if code.co_freevars:
        raise RuntimeError(f"node_info in {server.__file__} reads {code.co_freevars} from PromptServer: the harness cannot describe nodes")
    return types.FunctionType(code, vars(server), "node_info")


def _collect_outputs(executor, prompt: dict) -> dict:
    """Every prompt node's outputs still held by the executor's output cache."""
    out = {}
    outputs = executor.caches.outputs
    # Newer hosts made get() a coroutine (it may ask external cache providers); get_local reads this cache only.
    read = getattr(outputs, "get_local", outputs.get)
    for node_id in prompt:
        entry = read(node_id)
        if entry is not None:
            out[node_id] = entry.outputs
    return out


def _format_validation(validation: Validation) -> str:
    """validate_prompt's error and per-node errors as text."""
    error = validation.error or {}
    lines = [f"prompt invalid: {error.get('message', '')}: {error.get('details', '')}".rstrip(": ")]
    for node_id, info in validation.node_errors.items():
        for reason in info["errors"]:
            lines.append(f"  node {node_id} ({info['class_type']}): {reason['message']}: {reason['details']}")
    return "\n".join(lines)


def _raise_on_failure(result: RunResult) -> None:
    """Turn the executor's execution_error / execution_interrupted status into an exception."""
    for event, data in result.status_messages:
        if event == "execution_error":
            trace = "".join(data.get("traceback") or [])
            raise ExecutionFailed(
                f"node {data['node_id']} ({data['node_type']}) failed: {data['exception_type']}: "
                f"{data['exception_message']}\n{trace}", result)
        if event == "execution_interrupted":
            raise ExecutionInterrupted(f"interrupted at node {data['node_id']} ({data['node_type']})", result)


def _add_output_model_paths() -> None:
    """main.py's apply_custom_paths: CheckpointSave and friends write under output/, loaders look there."""
    import folder_paths
    for name in ("checkpoints", "clip", "vae", "diffusion_models", "loras"):
        folder_paths.add_model_folder_path(name, os.path.join(folder_paths.get_output_directory(), name))


def boot(base_dir: str, pack_dir: Optional[str] = None, comfy_dir: Optional[str] = None,
         extra_model_paths: Optional[str] = None, cpu: bool = True) -> Host:
    """Boot ComfyUI in this process once (headless; CPU unless cpu=False) and load the pack from custom_nodes."""
    # A second call returns the same Host and refuses other arguments: ComfyUI's module state
    # (folder paths, node registry) cannot be reset.
    wanted = (os.path.abspath(base_dir), os.path.abspath(pack_dir) if pack_dir else None,
              os.path.abspath(extra_model_paths) if extra_model_paths else None)
    if _host:
        host = _host[0]
        have = (host.base_dir, os.path.realpath(host.pack.path) if host.pack else None,
                host.extra_model_paths, host.comfy_dir)
        asked = (wanted[0], wanted[1] and os.path.realpath(wanted[1]), wanted[2],
                 os.path.abspath(comfy_dir) if comfy_dir else default_comfy_dir())
        if asked != have:
            raise RuntimeError(f"ComfyUI was already booted in this process as (base_dir, pack_dir, "
                               f"extra_model_paths, comfy_dir)={have}; cannot boot again as {asked}")
        return host
    start = time.perf_counter()
    with capture_logs() as boot_log:
        comfy_dir = prepare(base_dir, comfy_dir, cpu=cpu)
        import utils.extra_config  # noqa: F401  before nodes, as main.py: nodes_images needs them
        import utils.install_util  # noqa: F401
        if extra_model_paths:
            utils.extra_config.load_extra_path_config(wanted[2])
        _add_output_model_paths()
        import comfy.utils
        import hook_breaker_ac10a0
        import nodes
        import server
        harness = HarnessServer()
        if getattr(server.PromptServer, "instance", None) is None:
            # Before the built-in extras load: newer ones register node replacements with the server
            # at load; nodes that message the client find the harness.
            server.PromptServer.instance = harness
        hook_breaker_ac10a0.save_functions()
        try:
            asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
        finally:
            hook_breaker_ac10a0.restore_functions()
        from . import tiny_models
        tiny_models.register_tiny_configs()
    host = Host(base_dir=wanted[0], comfy_dir=comfy_dir, server=harness, boot_log=boot_log,
                boot_seconds=0.0, extra_model_paths=wanted[2],
                _base_node_names=frozenset(nodes.NODE_CLASS_MAPPINGS))
    comfy.utils.set_progress_bar_global_hook(host._progress_hook)
    if pack_dir:
        host.pack = host.install_pack(pack_dir, PACK_NAME)
        if not host.pack.success:
            raise HostError("ComfyUI could not load the pack:\n" + "\n".join(l.message for l in host.pack.log))
    host.boot_seconds = time.perf_counter() - start
    _host.append(host)
    return host
