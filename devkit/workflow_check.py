"""Check a UI-format workflow against the nodes' definitions (/object_info) before anyone runs it.

`check_workflow(workflow, object_info)` lists problems (empty: fine): structure, node types,
links (ids consistent between the links list and the nodes' slots; both ends' types, as ComfyUI's
validation compares them), widget values (type, min/max, the step or rounding the frontend's
widgets apply on edit, combo options) and the number of stored widget values, which shifts every
later value when a control_after_generate value is missing. Widget layouts come from
devkit.workflow_api, the converter that reproduces the frontend 1.32.9.
"""
import json

from . import workflow_api as api

MAX_LISTED_OPTIONS = 20


def parse(workflow):
    """(workflow dict or None, problems): JSON text or a dict; a UI workflow has nodes and links lists."""
    if isinstance(workflow, (str, bytes)):
        try:
            workflow = json.loads(workflow)
        except ValueError as e:
            return None, [f"not JSON: {e}"]
    if not isinstance(workflow, dict):
        return None, [f"a workflow is a JSON object; got {type(workflow).__name__}"]
    if "nodes" not in workflow and workflow and all(isinstance(v, dict) and "class_type" in v for v in workflow.values()):
        return None, ["this is an API-format prompt ({id: {class_type, inputs}}), not a UI-format workflow"]
    problems = [f"`{key}` must be a list; got {type(workflow.get(key)).__name__}"
                for key in ("nodes", "links") if not isinstance(workflow.get(key), list)]
    if workflow.get("version") not in (0.4, 1):
        problems.append(f"unknown workflow version {workflow.get('version')!r}; the frontend writes 0.4 or 1")
    return (None if problems else workflow), problems


def describe(raw: dict, object_info: dict) -> str:
    """node <id> (<type> "<title>"), the title as the frontend shows it."""
    kind = raw.get("type")
    title = raw.get("title") or (object_info.get(kind) or {}).get("display_name") or kind
    return f'node {raw.get("id")} ({kind} "{title}")'


def fmt_options(options: list) -> str:
    """Combo options for a message, long lists shortened as ComfyUI's validation does."""
    shown = ", ".join(repr(o) for o in options[:MAX_LISTED_OPTIONS])
    return shown + (f", … ({len(options)} options)" if len(options) > MAX_LISTED_OPTIONS else "")


def node_problems(workflow: dict, object_info: dict) -> list:
    """Nodes without id or type, duplicate ids, types this ComfyUI does not have."""
    problems, seen = [], set()
    for raw in workflow["nodes"]:
        if not isinstance(raw, dict) or raw.get("id") is None or not isinstance(raw.get("type"), str):
            problems.append(f"node entry {raw!r:.80} has no id or no type")
            continue
        if str(raw["id"]) in seen:
            problems.append(f"{describe(raw, object_info)}: id {raw['id']} is used by another node too")
        seen.add(str(raw["id"]))
        try:
            api.refuse_unsupported(workflow, raw, api.RENAMED_TYPES.get(raw["type"], raw["type"]), object_info)
        except api.WorkflowError as e:
            problems.append(str(e))
    return problems


def link_records(workflow: dict) -> tuple:
    """({link id: (origin, origin_slot, target, target_slot, type)}, problems)."""
    records, problems = {}, []
    for link in workflow["links"]:
        try:
            one = api.links_of({"version": workflow.get("version"), "links": [link]})
        except api.WorkflowError as e:
            problems.append(str(e))
            continue
        (link_id, record), = one.items()
        if link_id in records:
            problems.append(f"link id {link_id} is used twice in the links list")
        records[link_id] = record
    return records, problems


def slot_links(raw: dict) -> tuple:
    """([(index, input name, link id)], [(index, link id)]) of a node's saved slots."""
    ins = [(i, s.get("name"), s.get("link")) for i, s in enumerate(raw.get("inputs") or [])
           if isinstance(s, dict) and s.get("link") is not None]
    outs = [(i, link) for i, s in enumerate(raw.get("outputs") or []) if isinstance(s, dict)
            for link in s.get("links") or []]
    return ins, outs


def consistency_problems(workflow: dict, records: dict, object_info: dict) -> list:
    """Every link id agrees between the links list and both nodes' slots."""
    nodes = {str(n.get("id")): n for n in workflow["nodes"] if isinstance(n, dict)}
    problems = []
    for link_id, (origin, o_slot, target, t_slot, _) in records.items():
        source, sink = nodes.get(str(origin)), nodes.get(str(target))
        if source is None or sink is None:
            missing = origin if source is None else target
            problems.append(f"link {link_id} connects node {missing}, which is not in the workflow")
            continue
        outs = [link for i, link in slot_links(source)[1] if i == o_slot]
        if link_id not in outs:
            problems.append(f"link {link_id}: {describe(source, object_info)} output {o_slot} does not list it")
        ins = sink.get("inputs") or []
        if not (isinstance(t_slot, int) and 0 <= t_slot < len(ins) and ins[t_slot].get("link") == link_id):
            problems.append(f"link {link_id}: {describe(sink, object_info)} input {t_slot} does not hold it")
    for raw in nodes.values():
        ins, outs = slot_links(raw)
        for _, name, link_id in ins:
            if link_id not in records:
                problems.append(f"{describe(raw, object_info)}: input {name!r} refers to link {link_id}, "
                                "which is not in the links list (dangling link)")
        for slot, link_id in outs:
            if link_id not in records:
                problems.append(f"{describe(raw, object_info)}: output {slot} refers to link {link_id}, "
                                "which is not in the links list (dangling link)")
    return problems


def types_match(received, expected) -> bool:
    """ComfyUI's validate_node_input (non-strict): equal, '*' on either side, or comma lists that overlap."""
    if received == expected or "*" in (received, expected):
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    return bool({t.strip() for t in received.split(",")} & {t.strip() for t in expected.split(",")})


def real_origin(graph: api.Graph, link_id):
    """(origin node, slot) of a link, followed upstream through Reroute nodes; None when it ends nowhere."""
    seen = set()
    while link_id not in seen:
        seen.add(link_id)
        origin_id, slot = graph.links[link_id][:2]
        node = graph.nodes[str(origin_id)]
        if node.type != "Reroute":
            return node, slot
        if not node.slots or node.slots[0].link is None:
            return None
        link_id = node.slots[0].link
    return None


def type_problems(graph: api.Graph) -> list:
    """Each link into a ComfyUI node: its origin's output type fits the input (and the link's own type)."""
    problems = []
    for node in graph.nodes.values():
        if node.virtual:
            continue
        for slot in node.slots:
            if slot.link is None:
                continue
            found = real_origin(graph, slot.link)
            recorded = graph.links[slot.link][4]
            if found is None or found[0].type == "PrimitiveNode":
                continue  # a PrimitiveNode takes its target's type; its value is checked instead
            origin, index = found
            if origin.virtual or index >= len(origin.output_types):
                problems.append(f"{node.describe()}: input {slot.name!r} comes from {origin.describe()}, "
                                f"which has no output {index}")
                continue
            given = origin.output_types[index]
            if not types_match(given, slot.type):
                problems.append(f"{node.describe()}: input {slot.name!r} takes {slot.type} but is linked to "
                                f"{origin.describe()} output {index}, which gives {given}")
            elif recorded not in (None, "*", given) and not types_match(recorded, slot.type):
                problems.append(f"{node.describe()}: link {slot.link} into {slot.name!r} is recorded as "
                                f"{recorded}; its ends are {given} -> {slot.type}")
    return problems


def number_problems(label: str, spec: dict, kind: str, value) -> list:
    """An INT/FLOAT value: a number, an integer for INT, within min/max, on the widget's step or rounding."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{label} is not a number ({kind})"]
    if kind == "INT" and not float(value).is_integer():
        return [f"{label} is not an integer"]
    lo, hi = spec.get("min"), spec.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return [f"{label} is outside {lo}..{hi}"]
    held = api.js_value(value)  # what the browser holds (ints beyond 2**53 are doubles there)
    edited = api.on_int_change(spec, held) if kind == "INT" else api.float_rounded(spec, held)
    if edited == held:
        return []
    o = api.int_options(spec) if kind == "INT" else api.float_options(spec)
    what = f"step {o['step2']} from {o['min']}" if kind == "INT" else f"rounding ({o['round']}, {o['precision']} decimals)"
    return [f"{label} is off the widget's {what}: the frontend turns it into {api.wire(edited)!r} on edit"]


def value_problems(where: str, widget: api.Widget, value, node_type: str) -> list:
    """Problems of one stored widget value against its widget."""
    spec, kind = widget.spec, widget.kind
    label = f"{where}: widget {widget.name!r} = {value!r}"
    if widget.role == "control":
        allowed = api.COMBO_CONTROL_VALUES if spec["type"] == "COMBO" else api.CONTROL_VALUES
        legacy = isinstance(value, bool) and node_type in ("KSampler", "KSamplerAdvanced", "PrimitiveNode")
        return [] if value in allowed and isinstance(value, str) or legacy else [
            f"{label} is not a control_after_generate value ({', '.join(allowed)}); a value is missing "
            "or out of place before it"]
    if widget.role != "value":
        return [] if widget.role == "upload" or isinstance(value, str) else [f"{label} is not text"]
    if kind in ("INT", "FLOAT"):
        return number_problems(label, spec, kind, value)
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return [f"{label} is not true/false"]
    if kind == "STRING" and not isinstance(value, str):
        return [f"{label} is not text"]
    if kind == "COMBO" and value not in spec.get("options", []):
        return [f"{label} is not among the options ({fmt_options(spec.get('options', []))})"]
    return []


def widget_problems(node: api.Node) -> list:
    """The count of stored widget values and each value against its widget."""
    stored = node.raw.get("widgets_values")
    if not node.widgets:
        return []
    names = [w.name for w in node.widgets]
    if not isinstance(stored, list):
        return [f"{node.describe()}: no widgets_values list; the frontend expects {len(names)} ({', '.join(names)})"]
    values = api.legacy_values(api.definition_specs(node.info), node.widgets, stored)
    problems = []
    if len(values) != len(node.widgets):
        problems.append(f"{node.describe()}: {len(stored)} widget values, the frontend expects {len(names)} "
                        f"({', '.join(names)})")
    linked = {s.name for s in node.slots if s.widget and s.link is not None}
    for widget, value in zip(node.widgets, values):
        if widget.role != "value" or widget.name not in linked:  # a linked widget's own value is not queued
            problems += value_problems(node.describe(), widget, value, node.type)
    return problems


def primitive_problems(graph: api.Graph) -> list:
    """A connected PrimitiveNode feeds widget inputs, and its value fits the first one."""
    problems = []
    for prim in graph.nodes.values():
        if prim.type != "PrimitiveNode" or not prim.output_links or not prim.output_links[0]:
            continue
        for link_id in prim.output_links[0]:
            target, index = graph.target(link_id, prim)
            if index is None or not target.slots[index].widget:
                problems.append(f"{prim.describe()} is linked to {target.describe()}, but not to a widget input")
        try:
            loaded = api.primitive_widgets(graph, prim)
        except api.WorkflowError as e:
            problems.append(str(e))
            continue
        stored = prim.raw.get("widgets_values")
        if loaded is None or not isinstance(stored, list) or not stored:
            continue
        spec = loaded[0]
        problems += value_problems(prim.describe(), api.Widget(spec["name"], "value", spec), api.js_value(stored[0]),
                                   prim.type)
        if len(stored) > 1 and spec["type"] in ("INT", "FLOAT", "COMBO"):
            problems += value_problems(prim.describe(), api.Widget("control_after_generate", "control", spec),
                                       stored[1], prim.type)
    return problems


def reach_problems(graph: api.Graph) -> list:
    """Required link inputs of queued nodes that end nowhere (unlinked, muted or unbypassable origin)."""
    problems = []
    for node in graph.nodes.values():
        if node.virtual or node.mode in (api.MODE_NEVER, api.MODE_BYPASS):
            continue
        for index, slot in enumerate(node.slots):
            spec = node.specs.get(slot.name)
            if spec is None or spec["isOptional"] or slot.widget:
                continue
            if slot.link is None:
                problems.append(f"{node.describe()}: required input {slot.name!r} is not linked")
                continue
            origin = graph.resolve_input(node, index)
            dropped = origin is not None and graph.nodes[origin[0]].mode in (api.MODE_NEVER, api.MODE_BYPASS)
            if origin is None or dropped:
                problems.append(f"{node.describe()}: required input {slot.name!r} reaches no queued node "
                                "(a muted node, a bypassed node without a matching input, or an unlinked Reroute)")
    return problems


def check_workflow(workflow, object_info: dict) -> list:
    """Problems of a UI-format workflow (dict or JSON text) against object_info; empty when fine."""
    workflow, problems = parse(workflow)
    if workflow is None:
        return problems
    problems += node_problems(workflow, object_info)
    records, link_issues = link_records(workflow)
    problems += link_issues
    if problems:
        return problems  # nodes or links that cannot be read: the checks below need them
    problems += consistency_problems(workflow, records, object_info)
    if problems:
        return problems
    try:
        graph = api.Graph(workflow, object_info)
    except api.WorkflowError as e:
        return [str(e)]
    problems += type_problems(graph)
    for node in graph.nodes.values():
        if not node.virtual:
            problems += widget_problems(node)
    problems += primitive_problems(graph)
    try:
        problems += reach_problems(graph)
    except api.WorkflowError as e:
        problems.append(str(e))
    return problems
