"""The real ComfyUI frontend in headless Debian chromium (Python playwright), for workflow checks.

`open_frontend` boots the page served by a running `ComfyServer`; `load_workflow` loads a
UI-format workflow through `app.handleFile`, the call a file drop makes, and reports what the
frontend made of it. The JavaScript runs on frontends 1.32.9 and 1.49.6 (comfyui-frontend-package of
ComfyUI v0.3.75 and 0.33.0).
"""
import contextlib
import dataclasses
import importlib.metadata
import json
import os
import re

CHROMIUM = "/usr/bin/chromium"
# Root on a container: no sandbox; the background-networking flags stop chromium from opening
# connections of its own (without them, the local server sees many refused at once).
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")
VIEWPORT = {"width": 1280, "height": 800}
FRONTEND_VERSION = importlib.metadata.version("comfyui-frontend-package")
# A returning user: no template browser (TutorialCompleted), no what's-new (InstalledVersion).
QUIET_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.InstalledVersion": FRONTEND_VERSION}
# Optional user files the frontend asks for on boot; present, their 404s are gone.
USER_FILES = {"user.css": "", "comfy.templates.json": "[]"}
USER_FOLDERS = ("workflows", "subgraphs")
LEVELS = ("error", "warning")

# window.app is set once GraphCanvas ran app.setup(); extensionManager once GraphView is
# initialised; activeWorkflow once the startup workflow went through loadGraphData, so a
# later load cannot race with it; spinner is the blocking overlay.
READY_JS = """() => !!(window.app && window.app.graph && window.app.vueAppReady
    && window.app.extensionManager && window.app.extensionManager.workflow
    && window.app.extensionManager.workflow.activeWorkflow
    && !window.app.extensionManager.spinner)"""

# loadGraphData hands the missing node types (the list its dialog shows) to every extension's
# afterConfigureGraph; recording them there reads the frontend's own verdict.
INSTALL_HOOK_JS = """() => {
  if (window.__devkitLoad) return
  window.__devkitLoad = {missing: null, loads: 0}
  app.registerExtension({
    name: 'devkit.loadReport',
    afterConfigureGraph(missing) {
      window.__devkitLoad.missing = (missing || []).map(m => typeof m === 'string' ? m : m.type)
      window.__devkitLoad.loads += 1
    }
  })
}"""

LOAD_JS = """async ([text, name]) => {
  const dialogs = app.extensionManager._p._s.get('dialog')
  for (const d of [...dialogs.dialogStack]) dialogs.closeDialog({key: d.key})
  app.clean()
  app.graph.clear()
  window.__devkitLoad.missing = null
  const before = window.__devkitLoad.loads
  await app.handleFile(new File([text], name + '.json', {type: 'application/json'}), 'file_drop')
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))
  return window.__devkitLoad.loads > before
}"""

# Mirrors LGraphNode.configure (values go to widgets with serialize !== false, in order) and
# migrateWidgetsValues (forceInput entries are dropped when the count matches the definition).
INSPECT_JS = """(wf) => {
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)
  const problems = []
  const byId = new Map(app.graph.nodes.map(n => [String(n.id), n]))
  for (const wn of wf.nodes || []) {
    const node = byId.get(String(wn.id))
    let values = wn.widgets_values
    // Placeholders of missing node types have no definition (frontend 1.49 also flags nodes with a missing model
    // as has_errors: their widgets are checked like any other).
    if (!node || !node.constructor.nodeData || !Array.isArray(values)) continue
    const widgets = (node.widgets || []).filter(w => w.serialize !== false)
    const inputs = Object.values(node.constructor.nodeData?.inputs || {})
    const names = new Set((node.widgets || []).map(w => w.name))
    const original = inputs.filter(i => names.has(i.name) || i.forceInput)
    const count = original.reduce((s, i) => s + ((i.control_after_generate
      || ['seed', 'noise_seed'].includes(i.name)) ? 2 : 1), 0)
    if (count === values.length && original.some(i => i.forceInput))
      values = values.filter((_, k) => !original[k]?.forceInput)
    values.forEach((expected, i) => {
      const w = widgets[i]
      const base = {node: wn.id, type: wn.type, index: i, expected}
      if (!w) { problems.push({...base, widget: null, actual: null, reason: 'no widget for this value'}); return }
      let options = w.options?.values
      if (typeof options === 'function') options = options(w, node)
      const info = {...base, widget: w.name, actual: w.value}
      if (w.type === 'combo' && Array.isArray(options) && !options.includes(w.value))
        problems.push({...info, reason: 'not among the combo options', options: options.slice(0, 50)})
      else if (!same(w.value, expected))
        problems.push({...info, reason: 'value changed on load'})
    })
  }
  const dialogs = app.extensionManager._p._s.get('dialog').dialogStack
    .map(d => ({key: d.key, title: d.title || null}))
  const texts = [...document.querySelectorAll('.p-dialog')].map(e => e.innerText.trim())
  dialogs.forEach((d, i) => { d.text = texts.length === dialogs.length ? texts[i] : null })
  return {
    missing_nodes: window.__devkitLoad.missing || [],
    // Node ids are numbers in the saved workflow; frontend 1.49 keeps them as strings.
    error_nodes: app.graph.nodes.filter(n => n.has_errors)
      .map(n => ({id: /^[0-9]+$/.test(String(n.id)) ? Number(n.id) : n.id, type: n.last_serialization?.type ?? n.type})),
    widget_problems: problems,
    dialogs,
    toasts: [...document.querySelectorAll('.p-toast-message')].map(e => e.innerText.trim()),
    overlays: [...document.querySelectorAll('[data-testid="error-overlay"]')].map(e => e.innerText.trim()),
    node_types: app.graph.nodes.map(n => n.type),
  }
}"""


@dataclasses.dataclass
class LoadReport:
    """What the frontend made of one workflow."""
    missing_nodes: list      # node types the frontend could not create (its missing-nodes list)
    error_nodes: list        # {id, type} of placeholder nodes (has_errors) in the graph
    widget_problems: list    # {node, type, index, widget, expected, actual, reason[, options]}
    console: list            # {type, text, url} of error/warning console messages during the load
    page_errors: list        # uncaught exceptions during the load
    dialogs: list            # {key, title, text} of the dialogs open after the load
    toasts: list             # texts of the toasts shown after the load
    overlays: list           # texts of the error overlay over the canvas (frontend 1.49; 1.32 uses dialogs)
    node_types: list         # types of the nodes in the loaded graph

    @property
    def rejected_widgets(self) -> list:
        """Combo values that are not among the widget's options."""
        return [p for p in self.widget_problems if p["reason"] == "not among the combo options"]


# Messages a stock ComfyUI 0.3.75 + frontend 1.32.9, or 0.33.0 + frontend 1.49.6, logs on a clean boot on
# this offline test machine (each seen with no custom node installed), matched as narrowly as they occur;
# each entry says why it is not a defect of the pack.
def _resource_404(path):
    return lambda m, url: (m["type"] == "error" and m["url"] == url + path
                           and m["text"].startswith("Failed to load resource: the server responded with a status of 404"))


STOCK_CONSOLE_MESSAGES = (
    ("index.html links user.css at the web root; ComfyUI serves no such file", _resource_404("/user.css")),
    ("chromium asks for /favicon.ico; the frontend ships none at that path", _resource_404("/favicon.ico")),
    ("frontend 1.32.9 bug: useRenderModeSetting sets LiteGraph.Canvas.MinFontSizeForLOD before the "
     "core settings are registered, so settingStore's onChange reads setting.id of undefined",
     lambda m, url: m["type"] == "error"
     and m["text"].startswith("TypeError: Cannot read properties of undefined (reading 'id')\n    at onChange (")
     and f"at Proxy.set ({url}/assets/index-" in m["text"]),
    ("registry look-ups at api.comfy.org (the packs named by the nodes' cnr_id properties, e.g. comfy-core and "
     "this pack, in one query; a search by node type for unknown ones): the machine is offline and ComfyUI's CSP (connect-src 'self') blocks them",
     lambda m, url: m["type"] == "error" and re.fullmatch(
         r"Connecting to 'https://api\.comfy\.org/(nodes\?node_id=[\w.-]+(&node_id=[\w.-]+)*|comfy-nodes/[^/']+/node)' violates the "
         r"following Content Security Policy directive: \"connect-src 'self'( data:)?\"\. The action has been blocked\.",
         m["text"]) is not None),
    ("frontend 1.49.6: the legacy menu's ComfyList warns in its constructor, and app.setup builds two whatever the menu setting",
     lambda m, url: m["type"] == "warning"
     and m["text"].startswith("[ComfyUI] The legacy queue/history menu is deprecated.")),
    ("frontend 1.49.6: the mask editor's legacy hook warns when the core extensions register",
     lambda m, url: m["type"] == "warning"
     and m["text"].startswith("[MaskEditor] ComfyApp.open_maskeditor is deprecated.")),
    ("frontend 1.49.6 reads app.graph during its own setup, before the graph exists",
     lambda m, url: m["type"] == "error" and m["text"] == "ComfyApp graph accessed before initialization"
     and m["url"].startswith(url + "/assets/settingStore-")),
    ("frontend 1.49.6 looks up the size of each model a workflow declares and the user lacks (its missing-model "
     "metadata, e.g. for the startup template's huggingface.co files): offline, and the CSP (connect-src 'self' data:) blocks it",
     lambda m, url: m["type"] == "error" and m["url"].startswith(url + "/assets/missingModelMetadata-") and (
         re.fullmatch(r"Connecting to 'https://huggingface\.co/[^' ]+' violates the following Content Security Policy "
                      r"directive: \"connect-src 'self' data:\"\. The action has been blocked\.", m["text"]) is not None
         or re.fullmatch(r"Fetch API cannot load https://huggingface\.co/\S+\. Refused to connect because it violates the "
                         r"document's Content Security Policy\.", m["text"]) is not None)),
)


def unexpected_console(messages, server_url) -> list:
    """The messages not explained by STOCK_CONSOLE_MESSAGES."""
    return [m for m in messages if not any(match(m, server_url) for _, match in STOCK_CONSOLE_MESSAGES)]


def prepare_user(server, settings=None) -> None:
    """Make <base>/user/default look like a returning user's: quiet settings, optional files."""
    user = os.path.join(server.base_dir, "user", "default")
    for folder in USER_FOLDERS:
        os.makedirs(os.path.join(user, folder), exist_ok=True)
    for name, text in USER_FILES.items():
        path = os.path.join(user, name)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(text)
    path = os.path.join(user, "comfy.settings.json")
    current = {}
    if os.path.exists(path):
        with open(path) as f:
            current = json.load(f)
    with open(path, "w") as f:
        json.dump({**current, **QUIET_SETTINGS, **(settings or {})}, f, indent=4)


class PageLog:
    """Console messages (error/warning) and uncaught page errors of one page, in order."""

    def __init__(self, page):
        self.console, self.page_errors = [], []
        self.boot_console, self.boot_page_errors = [], []  # what the boot logged, set by open_frontend
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_console(self, msg) -> None:
        if msg.type in LEVELS:
            self.console.append({"type": msg.type, "text": msg.text, "url": msg.location.get("url", "")})


_LOGS = {}


def page_log(page) -> PageLog:
    """The PageLog that open_frontend attached to page."""
    return _LOGS[id(page)]


@contextlib.contextmanager
def chromium(playwright=None):
    """A headless Debian chromium driven by playwright; closed on exit."""
    from playwright.sync_api import sync_playwright

    with contextlib.ExitStack() as stack:
        if playwright is None:
            playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_FLAGS))
        stack.callback(browser.close)
        yield browser


def open_frontend(browser, server, timeout=90.0, settings=None, settle=1.0):
    """A fresh page (new profile) showing the server's frontend, ready for workflows.

    page_log(page).boot_console / boot_page_errors keep what the boot logged.
    """
    prepare_user(server, settings)
    context = browser.new_context(viewport=VIEWPORT)
    # The "Nodes 2.0" banner remembers its dismissal in localStorage only.
    context.add_init_script("localStorage.setItem('vueNodesBannerDismissed', 'true')")
    page = context.new_page()
    _LOGS[id(page)] = PageLog(page)
    page.on("close", lambda p: _LOGS.pop(id(p), None))
    page.goto(server.url + "/", timeout=timeout * 1000)
    try:
        page.wait_for_function(READY_JS, timeout=timeout * 1000, polling=100)
    except Exception as e:
        log = page_log(page)
        raise RuntimeError(f"the frontend did not become ready: {e}\nconsole: {log.console}\n"
                           f"page errors: {log.page_errors}\nserver log:\n{server.log_text()[-4000:]}") from None
    page.evaluate(INSTALL_HOOK_JS)
    # Fire-and-forget work of the boot (registry and release look-ups) logs after readiness;
    # waiting through playwright (not time.sleep) lets their console events be delivered.
    page.wait_for_timeout(settle * 1000)
    log = page_log(page)
    log.boot_console, log.boot_page_errors = list(log.console), list(log.page_errors)
    return page


def load_workflow(page, workflow: dict, name="workflow", settle=0.5) -> LoadReport:
    """Load a UI-format workflow as a file drop does; report what the frontend made of it."""
    log = page_log(page)
    console_start, errors_start = len(log.console), len(log.page_errors)
    configured = page.evaluate(LOAD_JS, [json.dumps(workflow), name])
    # Watchers and registry look-ups run after the load resolves; let their messages arrive.
    page.wait_for_timeout(settle * 1000)
    result = page.evaluate(INSPECT_JS, workflow)
    report = LoadReport(console=log.console[console_start:], page_errors=log.page_errors[errors_start:], **result)
    if not configured:
        # handleFile shows an error dialog (or imports API-format JSON) instead of configuring.
        raise RuntimeError(f"the frontend did not load {name!r} as a UI workflow: {report}")
    return report


def api_prompt(page) -> dict:
    """The API-format prompt the frontend would queue for the loaded graph (app.graphToPrompt)."""
    return page.evaluate("async () => (await app.graphToPrompt()).output")


def screenshot(page, path, full_detail=True) -> str:
    """Save a PNG of the page at path (folders created); the path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if full_detail:
        # Zoomed out to fit, litegraph draws nodes without text; a review shot needs the text.
        page.evaluate("() => { app.canvas.min_font_size_for_lod = 0; app.canvas.draw(true, true) }")
    page.screenshot(path=path)
    return path
