"""UI-format workflow -> API-format prompt, converted as the ComfyUI frontend 1.32.9 queues it.

`ui_to_api(workflow, object_info)` returns what `app.graphToPrompt().output` gives after the
frontend loaded the workflow, using only the nodes' input definitions (GET /object_info). The
references below name the frontend's TypeScript sources (shipped as source maps in
comfyui-frontend-package 1.32.9):

- widgets and their order: services/litegraphService.ts `#addInputs` (input_order via
  workbench/utils/nodeDefOrderingUtil.ts `getOrderedInputSpecs`; sockets first, then widget
  inputs); schemas/nodeDef/migration.ts `transformNodeDefV1ToV2`; stores/nodeDefStore.ts
  (optional `defaultInput` becomes `forceInput`).
- extra stored values: vueNodes/widgets/composables/useIntWidget.ts (INT with
  control_after_generate, or named seed/noise_seed: one control value), useComboWidget.ts
  (COMBO with control_after_generate: control value and filter text), scripts/widgets.ts
  `addValueControlWidgets` (both `serialize: false`: stored, never queued),
  extensions/core/uploadImage.ts + useImageUploadWidget.ts (media combos get an `upload` button
  after every other widget: stored, never queued).
- loading values: lib/litegraph/src/LGraphNode.ts `configure` (values go to widgets in order;
  missing ones keep their defaults), utils/litegraphUtil.ts `migrateWidgetsValues` (legacy lists
  that hold forceInput values), scripts/app.ts `loadGraphData` (type renames, `sample_` prefix).
- queueing: utils/executionUtil.ts `graphToPrompt`; lib/litegraph/src/subgraph/ExecutableNodeDTO.ts
  `resolveInput`/`resolveOutput`/`#getBypassSlotIndex` (virtual nodes followed, bypassed nodes
  passed through by type, muted nodes dropped with the inputs that point at them);
  extensions/core/widgetInputs.ts `PrimitiveNode` (value copied into its targets, after
  `mergeIfValid` clamping and the widgets' own rounding callbacks); dynamicPrompts.ts and
  saveImageExtraOutput.ts (values rewritten when serialised).

The result is the prompt as the server receives it: numbers pass through JavaScript (integral
floats become ints, ints beyond 2**53 are rounded like JSON.parse does). Defaults of the
frontend settings are assumed (float rounding on, control mode "after"). `_meta.title` (ignored
by the server) is the node's title, else the server's display name, where the frontend uses its
English locale: of ComfyUI 0.3.75's stock nodes only EmptyHunyuanLatentVideo differs.

Refused with a WorkflowError naming the node: subgraph instances, group nodes, unknown types,
dangling links, node types whose frontend extensions add widgets the definition does not list
(PreviewAny, audio and 3D nodes), and widgets other than INT/FLOAT/BOOLEAN/STRING/COMBO and media
upload (remote or multi-select combos, webcam, 3D, color, ...).
"""
import copy
import dataclasses
import datetime
import math
import random
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Optional

FRONTEND_VERSION = "1.32.9"
MODE_NEVER, MODE_BYPASS = 2, 4
VIRTUAL_NODE_TYPES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
COMBO_CONTROL_VALUES = CONTROL_VALUES + ("increment-wrap",)
# Widget types of scripts/widgets.ts ComfyWidgets and of the core extensions' getCustomWidgets.
SUPPORTED_WIDGET_TYPES = frozenset({"INT", "FLOAT", "BOOLEAN", "STRING", "COMBO", "IMAGEUPLOAD"})
UNSUPPORTED_WIDGET_TYPES = frozenset({"MARKDOWN", "COLOR", "IMAGECOMPARE", "CHART", "GALLERIA", "TEXTAREA", "WEBCAM",
                                      "AUDIO_UI", "AUDIOUPLOAD", "AUDIO_RECORD", "LOAD_3D", "PREVIEW_3D"})
# Core extensions that give these node types widgets or slots the node definition does not describe.
UNSUPPORTED_NODE_TYPES = {
    "PreviewAny": "extensions/core/previewAny.ts adds a preview widget",
    "Preview3D": "extensions/core/load3d.ts adds a 3D preview widget",
    "SaveGLB": "extensions/core/saveMesh.ts adds a 3D preview widget",
    **{t: "extensions/core/uploadAudio.ts adds an audio player widget"
       for t in ("LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus")},
}
RENAMED_TYPES = {"T2IAdapterLoader": "ControlNetLoader", "ConditioningAverage ": "ConditioningAverage",
                 "SDV_img2vid_Conditioning": "SVD_img2vid_Conditioning", "Load3DAnimation": "Load3D",
                 "Preview3DAnimation": "Preview3D"}
SAVE_NODE_TYPES = frozenset({"SaveImage", "SaveVideo", "SaveAnimatedWEBP", "SaveWEBM", "SaveAudio", "SaveGLB",
                             "SaveAnimatedPNG", "CLIPSave", "VAESave", "ModelSave", "LoraSave", "SaveLatent"})
UPLOAD_OPTIONS = ("image_upload", "video_upload", "animated_image_upload")
REPLACE_PROPERTY = "Run widget replace on values"
SR_PROPERTY = "Node name for S&R"
MAX_SAFE_INTEGER = 2 ** 53


class WorkflowError(ValueError):
    """The workflow cannot be converted as the frontend would; the message names the node."""


@dataclasses.dataclass(frozen=True)
class Widget:
    """One widget the frontend creates for a node, in order; role value/control/filter/upload."""
    name: str
    role: str
    spec: dict  # the V2 input spec of the input this widget belongs to

    @property
    def queued(self) -> bool:
        """Whether graphToPrompt sends it (control, filter and upload widgets are serialize: false)."""
        return self.role == "value"

    @property
    def kind(self) -> str:
        """The widget's type: the input type for values, COMBO/STRING/BUTTON for the helpers."""
        return {"value": self.spec["type"], "control": "COMBO", "filter": "STRING", "upload": "BUTTON"}[self.role]


@dataclasses.dataclass
class Slot:
    """An input slot of a loaded node: name, type, link id, and whether it feeds a widget."""
    name: str
    type: object
    link: object = None
    widget: bool = False


# --- JavaScript number and string semantics ------------------------------------------------------

def js_round(x: float) -> float:
    """Math.round: nearest integer, halves up."""
    if math.isnan(x) or math.isinf(x):
        return x
    f = math.floor(x)
    return float(f + 1 if x - f >= 0.5 else f)


def js_to_fixed(x: float, digits: int) -> float:
    """Number(x.toFixed(digits)): decimal rounding of the exact double, halves away from zero."""
    if math.isnan(x) or math.isinf(x) or abs(x) >= 1e21:
        return x
    return float(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def js_number_text(x) -> str:
    """String(x) for a JavaScript number (Number::toString)."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign, digits, exp = Decimal(repr(abs(x))).normalize().as_tuple()
    d = "".join(map(str, digits))
    k, n = len(d), len(d) + exp  # value = 0.d * 10**n
    if k <= n <= 21:
        text = d + "0" * (n - k)
    elif 0 < n <= 21:
        text = d[:n] + "." + d[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + d
    else:
        e = n - 1
        text = d[0] + ("." + d[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))
    return ("-" if x < 0 else "") + text


def js_string(value) -> str:
    """String(value) for JSON values."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return js_number_text(value)
    if isinstance(value, list):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def js_truthy(value) -> bool:
    """JavaScript truthiness of a JSON value (empty lists and objects are true)."""
    if isinstance(value, (list, dict)):
        return True
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


def js_value(value):
    """A JSON value as JSON.parse in the browser holds it: ints beyond 2**53 become doubles."""
    if isinstance(value, bool) or not isinstance(value, int):
        return [js_value(v) for v in value] if isinstance(value, list) else value
    return float(value) if abs(value) > MAX_SAFE_INTEGER else value


def wire(value):
    """A value as JSON.stringify sends it: integral doubles print as integers."""
    if isinstance(value, list):
        return [wire(v) for v in value]
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(Decimal(repr(value)))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        return wire(float(value))
    return value


def js_valid_connection(a, b) -> bool:
    """LiteGraph.isValidConnection: '*' and '' match anything; comma lists match on any member."""
    a = 0 if a in ("", "*") else a
    b = 0 if b in ("", "*") else b
    if not a or not b or a == b:
        return True
    a, b = str(a).lower(), str(b).lower()
    if "," not in a and "," not in b:
        return a == b
    return any(js_valid_connection(x, y) for x in a.split(",") for y in b.split(","))


def _js_keys(d: dict) -> list:
    """Object.keys order: array-index-like keys first, ascending, then insertion order."""
    index = [k for k in d if re.fullmatch(r"0|[1-9]\d*", k) and int(k) < 2 ** 32 - 1]
    return sorted(index, key=int) + [k for k in d if k not in index]


# --- node definitions as the frontend reads them ---------------------------------------------------

def _v2_spec(name: str, spec_v1, optional: bool) -> dict:
    """transformInputSpecV1ToV2 (plus nodeDefStore's defaultInput -> forceInput for optional inputs)."""
    options = dict(spec_v1[1]) if len(spec_v1) > 1 and isinstance(spec_v1[1], dict) else {}
    if optional and options.get("defaultInput"):
        options["forceInput"] = True
    first = spec_v1[0]
    if isinstance(first, list) or first == "COMBO":
        combo = first if isinstance(first, list) else options.get("options")
        return {"type": "COMBO", "name": name, "isOptional": optional, **options, "options": combo or []}
    return {"type": first if isinstance(first, str) else "UNKNOWN", "name": name, "isOptional": optional, **options}


def _upload_input(required: dict):
    """Comfy.UploadImage: the `upload` input added after a media combo, or None."""
    for name in _js_keys(required):
        spec = required[name]
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if any(options.get(o) is True for o in UPLOAD_OPTIONS) and (isinstance(spec[0], list) or spec[0] == "COMBO"):
            return ["IMAGEUPLOAD", {**options, "imageInputName": name}]
    return None


def definition_specs(info: dict) -> list:
    """The node's V2 input specs in definition order (nodeData.inputs): required, `upload`, optional."""
    section = info.get("input") or {}
    required, optional = dict(section.get("required") or {}), section.get("optional") or {}
    upload = _upload_input(required)
    if upload is not None:
        required["upload"] = upload
    specs = {}
    for name in _js_keys(required):
        specs[name] = _v2_spec(name, required[name], False)
    for name in _js_keys(optional):
        specs[name] = _v2_spec(name, optional[name], True)
    return list(specs.values())


def input_specs(info: dict) -> list:
    """The node's V2 input specs in the order the frontend creates sockets and widgets."""
    specs = {s["name"]: s for s in definition_specs(info)}
    order = info.get("input_order")
    if not order:
        return list(specs.values())
    ordered = [specs[n] for n in order.get("required") or [] if n in specs and not specs[n]["isOptional"]]
    ordered += [specs[n] for n in order.get("optional") or [] if n in specs and specs[n]["isOptional"]]
    seen = {s["name"] for s in ordered}
    return ordered + [s for s in specs.values() if s["name"] not in seen]


def widget_type(spec: dict) -> str:
    """The widget constructor the frontend picks: widgetType, else the input type."""
    return spec.get("widgetType") or spec["type"]


def has_widget(spec: dict) -> bool:
    """Whether the input becomes a widget (a constructor exists and it is not forceInput)."""
    kind = widget_type(spec)
    return (kind in SUPPORTED_WIDGET_TYPES or kind in UNSUPPORTED_WIDGET_TYPES) and not spec.get("forceInput")


def _control_name(spec: dict, default: str) -> str:
    """addValueControlWidgets' getName: a string option of that name, else control_prefix + name."""
    if isinstance(spec.get(default), str):
        return spec[default]
    if spec.get("control_prefix"):
        return f"{spec['control_prefix']} {default}"
    return default


def int_has_control(spec: dict) -> bool:
    """useIntWidget: control_after_generate, else legacy names seed/noise_seed."""
    flag = spec.get("control_after_generate")
    return bool(flag) if flag is not None else spec["name"] in ("seed", "noise_seed")


def widget_layout(class_type: str, info: dict) -> list:
    """The widgets the frontend creates for a node type, in widgets_values order."""
    if class_type in UNSUPPORTED_NODE_TYPES:
        raise WorkflowError(f"{class_type}: {UNSUPPORTED_NODE_TYPES[class_type]}, which this converter does not model")
    audio = ((info.get("input") or {}).get("required") or {}).get("audio") or [None]
    if len(audio) > 1 and isinstance(audio[1], dict) and audio[1].get("audio_upload") is True:
        raise WorkflowError(f"{class_type}: extensions/core/uploadAudio.ts adds an audio upload widget, "
                            "which this converter does not model")
    widgets = []
    for spec in input_specs(info):
        if not has_widget(spec):
            continue
        kind = widget_type(spec)
        if kind in UNSUPPORTED_WIDGET_TYPES or spec.get("multi_select") or spec.get("remote"):
            what = "multi_select" if spec.get("multi_select") else "remote" if spec.get("remote") else kind
            raise WorkflowError(f"{class_type} input {spec['name']!r} is a {what} widget; supported widgets: "
                                f"{', '.join(sorted(SUPPORTED_WIDGET_TYPES))}")
        if kind == "IMAGEUPLOAD":
            widgets.append(Widget(spec["name"], "upload", spec))
            continue
        widgets.append(Widget(spec["name"], "value", spec))
        if (kind == "INT" and int_has_control(spec)) or (kind == "COMBO" and spec.get("control_after_generate")):
            widgets.append(Widget(_control_name(spec, "control_after_generate"), "control", spec))
            if kind == "COMBO":
                widgets.append(Widget(_control_name(spec, "control_filter_list"), "filter", spec))
    return widgets


def default_value(spec: dict):
    """The value a freshly created widget holds."""
    kind = widget_type(spec)
    if kind in ("INT", "FLOAT"):
        return _opt(spec, "default", 0)
    if kind == "BOOLEAN":
        return spec["default"] if spec.get("default") is not None else False
    if kind == "STRING":
        return spec["default"] if spec.get("default") is not None else ""
    if kind == "COMBO":
        if spec.get("default"):
            return spec["default"]
        return spec["options"][0] if spec.get("options") else None
    return None


def helper_default(widget: Widget):
    """The initial value of a control, filter or upload widget."""
    if widget.role == "control":
        return "randomize"
    return "" if widget.role == "filter" else "image"


def legacy_values(specs: list, widgets: list, values: list) -> list:
    """migrateWidgetsValues: drop the values stored for forceInput inputs by older frontends.

    specs in definition order (not input_order), as the frontend counts them.
    """
    names = {w.name for w in widgets}
    original = [s for s in specs if s["name"] in names or s.get("forceInput")]
    count = sum(2 if (s.get("control_after_generate") or s["name"] in ("seed", "noise_seed")) else 1 for s in original)
    if count != len(values):
        return values
    # _.zip pads the shorter list; values past the originals are kept (their input is undefined)
    return [v for i, v in enumerate(values) if i >= len(original) or not original[i].get("forceInput")]


def frontend_inputs(specs: list) -> list:
    """The input slots the frontend creates: sockets first, then one per widget input."""
    slots = [Slot(s["name"], s["type"]) for s in specs if not has_widget(s)]
    return slots + [Slot(s["name"], s["type"], widget=True) for s in specs if has_widget(s)]


# --- widget callbacks and value transforms --------------------------------------------------------

def float_options(spec: dict) -> dict:
    """useFloatWidget's options: min, max, round, precision."""
    step = spec.get("step") if spec.get("step") is not None else 0.5
    precision = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    rounding = 10.0 ** -precision if precision and not spec.get("round") else spec.get("round")
    return {"min": _opt(spec, "min", 0), "max": _opt(spec, "max", 2048), "round": rounding, "precision": precision}


def int_options(spec: dict) -> dict:
    """useIntWidget's options: min, max, step2."""
    return {"min": _opt(spec, "min", 0), "max": _opt(spec, "max", 2048), "step2": _opt(spec, "step", 1)}


def _opt(spec: dict, key: str, default):
    """spec[key] ?? default."""
    return spec[key] if spec.get(key) is not None else default


def float_rounded(spec: dict, v):
    """onFloatValueChange's rounding alone: to the widget's round, printed at its precision."""
    o = float_options(spec)
    if not o["round"]:
        return v
    return js_to_fixed(js_round(float(v) / o["round"]) * o["round"], o["precision"])


def on_float_change(spec: dict, v):
    """onFloatValueChange: round to the widget's rounding and clamp."""
    o = float_options(spec)
    return min(max(float_rounded(spec, v), o["min"]), o["max"]) if o["round"] else v


def on_int_change(spec: dict, v):
    """onValueChange of INT widgets: round to the step grid, offset by min."""
    o = int_options(spec)
    step = o["step2"] or 1
    if step == 1:
        return js_round(float(v))
    offset = math.fmod(o["min"], step)
    return js_round((float(v) - offset) / step) * step + offset


def widget_callback(spec: dict, value):
    """The value after the widget's own change callback (what an edit or a PrimitiveNode leaves)."""
    kind = widget_type(spec)
    if kind in ("INT", "FLOAT") and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise WorkflowError(f"{value!r} is not a number for the {kind} widget {spec['name']!r}")
    if kind == "INT":
        return on_int_change(spec, value)
    return on_float_change(spec, value) if kind == "FLOAT" else value


def textarea_value(value) -> str:
    """A multiline widget's value after textarea.value = value (text, newlines normalised)."""
    text = "" if value is None else js_string(value)
    return text.replace("\r\n", "\n").replace("\r", "\n")


_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|//[^\n\r\u2028\u2029]*")


def dynamic_prompt(text: str, choose: Callable = random.choice) -> str:
    """processDynamicPrompt: strip C comments, replace each {a|b|...} by choose(options)."""
    text = _COMMENTS.sub("", text)
    pos = [0]

    def escape():
        nxt = text[pos[0]] if pos[0] < len(text) else "undefined"
        pos[0] += 1
        return "\\" + nxt

    def choice_block():
        options, choice, depth = [], "", 0
        while pos[0] < len(text):
            char = text[pos[0]]
            pos[0] += 1
            if char == "\\":
                choice += escape()
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                if not depth:
                    break
                depth -= 1
            elif char == "|" and not depth:
                options.append(choice)
                choice = ""
                continue
            choice += char
        options.append(choice)
        return dynamic_prompt(choose(options), choose)

    result = ""
    while pos[0] < len(text):
        char = text[pos[0]]
        pos[0] += 1
        result += escape() if char == "\\" else choice_block() if char == "{" else char
    return re.sub(r"\\([{}|])", r"\1", result)


_DATE = re.compile(r"dd?|MM?|hh?|mm?|ss?|yyy?y?")


def format_date(text: str, now: datetime.datetime) -> str:
    """formatDate of searchAndReplace's %date:...% (local time)."""
    parts = {"d": now.day, "M": now.month, "h": now.hour, "m": now.minute, "s": now.second}

    def one(match):
        t = match.group(0)
        if t == "yy":
            return str(now.year)[2:]
        if t == "yyyy":
            return str(now.year)
        return str(parts[t[0]]).rjust(len(t), "0") if t[0] in parts else t

    return _DATE.sub(one, text)


def upload_value(spec: dict, value):
    """The media combo's value through useImageUploadWidget's transform (folder annotation)."""
    folder = spec["image_folder"] if "image_folder" in spec else "input"

    def annotate(v):
        text = js_string(v)
        known = re.search(r"\[(input|output|temp)\]", text, re.I)
        return text if known or folder == "input" else f"{text} [{folder}]"

    if not js_truthy(value):  # the initial file: the combo's value when the widget was made
        return js_string(default_value(spec)) if default_value(spec) is not None else "undefined"
    if isinstance(value, list):
        return [annotate(v) for v in value] if spec.get("allow_batch") else annotate(value[0])
    return annotate(value)


# --- the loaded graph ---------------------------------------------------------------------------

@dataclasses.dataclass
class Node:
    """One node as the frontend holds it after loading the workflow."""
    id: str
    type: str
    mode: int
    title: str
    raw: dict
    slots: list
    output_types: list
    output_links: list
    widgets: list = dataclasses.field(default_factory=list)
    values: list = dataclasses.field(default_factory=list)
    specs: dict = dataclasses.field(default_factory=dict)
    virtual: bool = False
    info: dict = dataclasses.field(default_factory=dict)  # the node type's object_info entry

    def describe(self) -> str:
        """node <id> (<type> "<title>") for messages."""
        return f'node {self.id} ({self.type} "{self.title}")'

    def value_of(self, name: str):
        """The current value of the widget called name."""
        for w, v in zip(self.widgets, self.values):
            if w.name == name:
                return v
        raise KeyError(name)

    def set_value(self, name: str, value) -> None:
        """widget.value = value for the widget called name."""
        self.set_index(next(i for i, w in enumerate(self.widgets) if w.name == name), value)

    def set_index(self, index: int, value) -> None:
        """widget.value = value for the index-th widget (a multiline widget's textarea keeps text)."""
        w = self.widgets[index]
        multiline = w.role == "value" and widget_type(w.spec) == "STRING" and w.spec.get("multiline")
        self.values[index] = textarea_value(value) if multiline else value


def links_of(workflow: dict) -> dict:
    """{link id: (origin_id, origin_slot, target_id, target_slot, type)} of either schema version."""
    out = {}
    for link in workflow.get("links") or []:
        if workflow.get("version") == 0.4 and isinstance(link, list):
            out[link[0]] = (link[1], link[2], link[3], link[4], link[5] if len(link) > 5 else None)
        elif isinstance(link, dict):
            out[link.get("id")] = (link.get("origin_id"), link.get("origin_slot"), link.get("target_id"),
                                   link.get("target_slot"), link.get("type"))
        else:
            raise WorkflowError(f"link {link!r} is not a link of a version {workflow.get('version')} workflow")
    return out


def refuse_unsupported(workflow: dict, raw: dict, class_type: str, object_info: dict) -> None:
    """Raise for node types the converter cannot reproduce: unknown, subgraph or group nodes."""
    where = f"node {raw.get('id')} ({class_type!r}{' ' + repr(raw['title']) if raw.get('title') else ''})"
    subgraphs = {s.get("id") for s in (workflow.get("definitions") or {}).get("subgraphs") or []}
    if class_type in subgraphs:
        raise WorkflowError(f"{where} is a subgraph instance; subgraphs are not supported: unpack it in the frontend")
    groups = (workflow.get("extra") or {}).get("groupNodes") or {}
    if class_type.startswith(("workflow>", "workflow/")) or class_type in groups:
        raise WorkflowError(f"{where} is a group node; group nodes are not supported: convert it to nodes first")
    if class_type not in object_info and class_type not in VIRTUAL_NODE_TYPES:
        raise WorkflowError(f"{where}: no such node type in this ComfyUI (object_info) and not a frontend-only node "
                            f"({', '.join(sorted(VIRTUAL_NODE_TYPES))})")


def load_node(workflow: dict, raw: dict, object_info: dict) -> Node:
    """A node as LGraphNode.configure leaves it: definition slots with saved links, widget values."""
    class_type = RENAMED_TYPES.get(raw.get("type"), raw.get("type"))
    if not isinstance(class_type, str):
        raise WorkflowError(f"node {raw.get('id')} has no type")
    refuse_unsupported(workflow, raw, class_type, object_info)
    saved_in = [i for i in raw.get("inputs") or [] if isinstance(i, dict)]
    saved_out = [o for o in raw.get("outputs") or [] if isinstance(o, dict)]
    if class_type in VIRTUAL_NODE_TYPES:
        return Node(str(raw.get("id")), class_type, raw.get("mode") or 0, raw.get("title") or class_type, raw,
                    [Slot(i.get("name"), i.get("type"), i.get("link")) for i in saved_in],
                    [o.get("type") for o in saved_out], [list(o.get("links") or []) for o in saved_out], virtual=True)
    info = object_info[class_type]
    try:
        specs = input_specs(info)
        widgets = widget_layout(class_type, info)
    except WorkflowError as e:
        raise WorkflowError(f"node {raw.get('id')}: {e}") from None
    outputs = [("COMBO" if isinstance(t, list) else t) for t in info.get("output") or []]
    outputs += [o.get("type") for o in saved_out[len(outputs):]]  # extra saved outputs are kept as they are
    links = [list((saved_out[i] if i < len(saved_out) else {}).get("links") or []) for i in range(len(outputs))]
    node = Node(str(raw.get("id")), class_type, raw.get("mode") or 0,
                raw.get("title") or info.get("display_name") or class_type, raw, configure_slots(specs, saved_in),
                outputs, links, widgets, [None] * len(widgets), {s["name"]: s for s in specs}, info=info)
    configure_values(node)
    return node


def configure_slots(specs: list, saved_in: list) -> list:
    """The definition's input slots holding the saved links (matched by name), then saved extra inputs."""
    slots = frontend_inputs(specs)
    by_name = {i.get("name"): i for i in saved_in}
    for slot in slots:
        slot.link = (by_name.get(slot.name) or {}).get("link")
    defined = {s.name for s in slots}
    # Extra inputs stay (custom JS may add them); WidgetInputs drops those that name a missing widget.
    return slots + [Slot(i.get("name"), i.get("type"), i.get("link")) for i in saved_in
                    if i.get("name") not in defined and not i.get("widget")]


def configure_values(node: Node) -> None:
    """Widget defaults, then the stored values in order (the rest keep defaults), then load-time fixes."""
    for i, w in enumerate(node.widgets):
        node.set_index(i, default_value(w.spec) if w.role == "value" else helper_default(w))
    stored = node.raw.get("widgets_values")
    if isinstance(stored, list):  # an object (some custom nodes save one) sets nothing: it has no length
        values = legacy_values(definition_specs(node.info), node.widgets, [js_value(v) for v in stored])
        for i, v in enumerate(values[:len(node.widgets)]):
            node.set_index(i, v)
    if node.type in ("KSampler", "KSamplerAdvanced") and "sampler_name" in node.specs:
        sampler = node.value_of("sampler_name")
        if isinstance(sampler, str) and sampler.startswith("sample_"):
            node.set_value("sampler_name", sampler[7:])


class Graph:
    """The loaded workflow: nodes by id (as strings) and links by id."""

    def __init__(self, workflow: dict, object_info: dict):
        if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
            raise WorkflowError("not a UI-format workflow: it has no `nodes` list (an API-format prompt needs no conversion)")
        self.workflow = workflow
        self.links = links_of(workflow)
        self.nodes = {}
        for raw in workflow["nodes"]:
            node = load_node(workflow, raw, object_info)
            if node.id in self.nodes:
                raise WorkflowError(f"{node.describe()}: node id {node.id} is used by another node too")
            self.nodes[node.id] = node

    def link(self, link_id, node: Node):
        """The link with this id; a dangling id is an error naming the node."""
        if link_id not in self.links:
            raise WorkflowError(f"{node.describe()} refers to link {link_id}, which is not in the links list")
        return self.links[link_id]

    def node(self, node_id, context: str) -> Node:
        """The node with this id; a missing one is an error."""
        node = self.nodes.get(str(node_id))
        if node is None:
            raise WorkflowError(f"{context} refers to node {node_id}, which is not in the workflow")
        return node

    def target(self, link_id, node: Node):
        """(target node, index of its input that holds the link) or (target node, None)."""
        link = self.link(link_id, node)
        target = self.node(link[2], f"link {link_id}")
        index = next((i for i, s in enumerate(target.slots) if s.link == link_id), None)
        return target, index

    def resolve_input(self, node: Node, index: int, type_=None, visited=None):
        """ExecutableNodeDTO.resolveInput: (origin node id, slot) or None."""
        visited = set() if visited is None else visited
        key = (node.id, "I", index)
        if key in visited:
            raise WorkflowError(f"circular reference while resolving input {index} of {node.describe()}")
        visited.add(key)
        if index >= len(node.slots):
            return None if node.virtual else _raise(f"{node.describe()} has no input {index}")
        slot = node.slots[index]
        if slot.link is None:
            return None
        link = self.link(slot.link, node)
        origin = self.node(link[0], f"link {slot.link}")
        return self.resolve_output(origin, link[1], type_ if type_ is not None else slot.type, visited)

    def resolve_output(self, node: Node, slot: int, type_, visited: set):
        """ExecutableNodeDTO.resolveOutput: bypassed nodes pass through, virtual nodes are followed."""
        key = (node.id, "O", slot)
        if key in visited:
            raise WorkflowError(f"circular reference while resolving output {slot} of {node.describe()}")
        visited.add(key)
        if node.mode == MODE_BYPASS:
            index = self.bypass_slot_index(node, slot, type_)
            return None if index == -1 else self.resolve_input(node, index, None, visited)
        if node.virtual:
            if slot < len(node.slots) and node.slots[slot].link is not None:
                return self.resolve_input(node, slot, type_, visited)
            return None
        return node.id, slot

    @staticmethod
    def bypass_slot_index(node: Node, slot: int, type_) -> int:
        """#getBypassSlotIndex: same slot if types fit, else the first exact, else the first fitting input."""
        inputs = node.slots
        if slot >= len(node.output_types):
            raise WorkflowError(f"{node.describe()} has no output {slot}")
        output_type = node.output_types[slot]
        if type_ in ("*", ""):
            return slot if len(inputs) > slot else 0
        if slot < len(inputs) and js_valid_connection(inputs[slot].type, output_type) \
                and js_valid_connection(inputs[slot].type, type_):
            return slot
        for i, s in enumerate(inputs):
            if s.type == type_:
                return i
        for i, s in enumerate(inputs):
            if js_valid_connection(s.type, output_type) and js_valid_connection(s.type, type_):
                return i
        return -1


def _raise(message: str):
    """Raise a WorkflowError (usable in expressions)."""
    raise WorkflowError(message)


# --- PrimitiveNode ---------------------------------------------------------------------------------

def merge_input_spec(a: dict, b: dict):
    """mergeInputSpec of two widget specs (numbers: range intersection, lcm step), or None."""
    if a["type"] != b["type"]:
        return None
    if a["type"] in ("INT", "FLOAT"):
        lo = max(_opt(a, "min", -math.inf), _opt(b, "min", -math.inf))
        hi = min(_opt(a, "max", math.inf), _opt(b, "max", math.inf))
        if _opt(a, "min", -math.inf) > _opt(b, "max", math.inf) or _opt(a, "max", math.inf) < _opt(b, "min", -math.inf):
            return None
        merged = {"min": lo, "max": hi, "step": _lcm(_opt(a, "step", 1), _opt(b, "step", 1))}
        a, b = {**a, **merged}, {**b, **merged}
    elif a["type"] == "COMBO":
        both = [o for o in dict.fromkeys(a.get("options") or []) if o in (b.get("options") or [])]
        if not both:
            return None
        a, b = {**a, "options": both}, {**b, "options": both}
    ignore = {"default", "forceInput", "defaultInput", "control_after_generate", "multiline", "tooltip", "dynamicPrompts"}
    for key in (set(a) | set(b)) - ignore:
        x, y = a.get(key), b.get(key)
        same = x is y or (x is None and y is None) or (not isinstance(x, (list, dict)) and type(x) is type(y) and x == y) \
            or (isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool)
                and not isinstance(y, bool) and x == y)
        if not same:
            return None
    return {**a, **b}


def _lcm(a: float, b: float) -> float:
    """mathUtil lcm with JavaScript's % (fmod) in the gcd."""
    x, y = a, b
    while y != 0:
        x, y = y, math.fmod(x, y)
    return abs(a * b) / x


def primitive_widgets(graph: Graph, prim: Node):
    """(target spec, value) of a connected PrimitiveNode after loading, or None when it has no widget."""
    links = prim.output_links[0] if prim.output_links else []
    if not links:
        return None
    target, index = graph.target(links[0], prim)
    if index is None or not target.slots[index].widget or target.virtual:
        return None  # no widget input at the other end: the frontend gives the primitive no widget
    spec = target.specs[target.slots[index].name]
    stored = prim.raw.get("widgets_values")
    value = js_value(stored[0]) if isinstance(stored, list) and stored else target.value_of(spec["name"])
    if spec["type"] in ("INT", "FLOAT"):  # #mergeWidgetConfig -> mergeIfValid: clamp, then the widget callback
        config = spec
        for link_id in links:
            node, i = graph.target(link_id, prim)
            if i is None or not node.slots[i].widget or node.virtual:
                continue
            merged = merge_input_spec(config, node.specs[node.slots[i].name])
            if merged is None:
                continue
            config = merged
            o = int_options(config) if config["type"] == "INT" else float_options(config)
            value = widget_callback(config, min(max(_number(value, prim), o["min"]), o["max"]))
    return spec, value


def _number(value, node: Node):
    """A numeric PrimitiveNode value, or an error naming the node."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WorkflowError(f"{node.describe()} holds {value!r}, not a number, for a number widget")
    return value


def apply_primitive(graph: Graph, prim: Node, now: datetime.datetime) -> None:
    """PrimitiveNode.applyToGraph: its value goes to every linked widget, through their callbacks."""
    loaded = primitive_widgets(graph, prim)
    if loaded is None:
        return
    value = loaded[1]
    if js_truthy(value) and isinstance(value, str) and js_truthy((prim.raw.get("properties") or {}).get(REPLACE_PROPERTY)):
        value = text_replacements(graph, value, now)
    for link_id in prim.output_links[0]:
        node, i = graph.target(link_id, prim)
        if i is None or not node.slots[i].widget or node.virtual:
            continue
        name = node.slots[i].name
        node.set_value(name, value)
        node.set_value(name, widget_callback(node.specs[name], node.value_of(name)))


# --- serialisation ---------------------------------------------------------------------------------

def text_replacements(graph: Graph, value: str, now: datetime.datetime) -> str:
    """applyTextReplacements: %Node.widget% from another node's widget, %date:...% from the clock."""
    nodes = list(graph.nodes.values())

    def one(match):
        text = match.group(1)
        split = text.split(".")
        if len(split) != 2:
            return format_date(split[0][5:], now) if split[0].startswith("date:") else match.group(0)
        found = [n for n in nodes if sr_name(n) == split[0]] or [n for n in nodes if n.title == split[0]]
        widget = next((i for i, w in enumerate(found[0].widgets) if w.name == split[1]), None) if found else None
        if widget is None:
            return match.group(0)
        v = found[0].values[widget]
        return re.sub(r'[/?<>\\:*|"\x00-\x1f\x7f]', "_", "" if v is None else js_string(v))

    return re.sub(r"%([^%]+)%", one, value)


def sr_name(node: Node):
    """The node's "Node name for S&R" property (ComfyUI nodes default to their type)."""
    props = node.raw.get("properties") or {}
    return props.get(SR_PROPERTY, None if node.virtual else node.type)


def serialize_value(graph: Graph, node: Node, widget: Widget, value, choose, now):
    """widget.serializeValue: dynamic prompts, filename S&R, media combo annotation; arrays boxed."""
    spec = widget.spec
    if spec.get("type") == "COMBO" and any(s.get("imageInputName") == widget.name for s in node.specs.values()):
        value = upload_value(spec, value)
    if node.type in SAVE_NODE_TYPES and widget.name == "filename_prefix":
        value = text_replacements(graph, js_string(value), now) if isinstance(value, str) else _raise(
            f"{node.describe()}: filename_prefix {value!r} is not text")
    elif widget_type(spec) == "STRING" and spec.get("dynamicPrompts") is True and isinstance(value, str):
        value = dynamic_prompt(value, choose)
    return {"__value__": value} if isinstance(value, list) else value


def ui_to_api(workflow: dict, object_info: dict, *, choose: Callable = random.choice,
              now: Optional[datetime.datetime] = None) -> dict:
    """The API prompt the frontend queues for a UI-format workflow ({id: {inputs, class_type, _meta}}).

    choose picks one option of a {a|b} dynamic prompt (the frontend picks at random); now is the
    clock for %date:...% in file name prefixes.
    """
    now = now or datetime.datetime.now()
    graph = Graph(copy.deepcopy(workflow), object_info)
    for node in graph.nodes.values():
        if node.type == "PrimitiveNode":
            apply_primitive(graph, node, now)
    prompt = {}
    for node in graph.nodes.values():
        if node.virtual or node.mode in (MODE_NEVER, MODE_BYPASS):
            continue
        inputs = {}
        for widget, value in zip(node.widgets, node.values):
            if widget.queued:
                inputs[widget.name] = serialize_value(graph, node, widget, value, choose, now)
        for index, slot in enumerate(node.slots):
            origin = graph.resolve_input(node, index)
            if origin is not None:
                inputs[slot.name] = [origin[0], int(origin[1])]
        prompt[node.id] = {"inputs": inputs, "class_type": node.type, "_meta": {"title": node.title}}
    for entry in prompt.values():  # inputs that point at dropped (muted) nodes go too
        for name, value in list(entry["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and value[0] not in prompt:
                del entry["inputs"][name]
    return wire(prompt)


def substitute(prompt: dict, class_type: str, **values) -> dict:
    """A copy of an API prompt with inputs set on every node of one type (e.g. ckpt_name)."""
    out = copy.deepcopy(prompt)
    found = [n for n in out.values() if n["class_type"] == class_type]
    if not found:
        raise KeyError(f"no {class_type} node in the prompt (types: {sorted({n['class_type'] for n in out.values()})})")
    for node in found:
        node["inputs"].update(values)
    return out
