"""Build UI-format ComfyUI workflows (what the frontend saves) from node definitions (/object_info).

Sockets, output names and the order of widget values come from the nodes' own definitions, so a
generated workflow cannot drift from the nodes it uses.
"""
import uuid

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FRONTEND_ONLY = {"MarkdownNote", "Note"}
CONTROL_AFTER_GENERATE = "fixed"


def ordered_inputs(info: dict) -> list:
    """(name, type, options) of a node's inputs, required then optional, in definition order."""
    out = []
    for section in ("required", "optional"):
        spec = info["input"].get(section, {})
        for name in info.get("input_order", {}).get(section, list(spec)):
            raw_type, options = spec[name][0], (spec[name][1] if len(spec[name]) > 1 else {})
            out.append((name, "COMBO" if isinstance(raw_type, list) else raw_type, options))
    return out


def is_widget(io_type: str, options: dict) -> bool:
    """Primitive inputs are widgets unless forced to sockets."""
    return io_type in WIDGET_TYPES and not options.get("forceInput")


def has_control_widget(name: str, io_type: str, options: dict) -> bool:
    """The frontend adds a "control after generate" value after such widgets; INT seeds get one unless told not to."""
    flag = options.get("control_after_generate")
    if io_type == "INT":
        return flag if flag is not None else name in ("seed", "noise_seed")
    return bool(flag)


class Node:
    """A node being placed: its id, definition and chosen widget values."""

    def __init__(self, node_id: int, node_type: str, info: dict, pos, widgets: dict, title, size, color, properties):
        self.id, self.type, self.info = node_id, node_type, info
        self.pos, self.title, self.size, self.color = list(pos), title, size, color
        self.widgets, self.properties = widgets, properties
        self.links_in: dict = {}  # input name -> link id
        self.links_out: dict = {}  # output slot -> [link ids]


class WorkflowBuilder:
    """Collects nodes, links and groups and writes the workflow dict (format version 0.4)."""

    def __init__(self, object_info: dict, pack_module: str, pack_id: str, pack_version: str, core_version: str):
        self.object_info = object_info
        self.pack_module, self.pack_id, self.pack_version, self.core_version = pack_module, pack_id, pack_version, core_version
        self.nodes: list = []
        self.links: list = []
        self.groups: list = []

    def add(self, node_type: str, pos, widgets: dict = None, title: str = None, size=None, color: str = None,
            properties: dict = None) -> Node:
        """Place a node; widgets not given keep their defaults."""
        info = self.object_info.get(node_type)
        if info is None:
            raise KeyError(f"unknown node type {node_type!r}")
        node = Node(len(self.nodes) + 1, node_type, info, pos, dict(widgets or {}), title, size, color, properties or {})
        unknown = set(node.widgets) - {name for name, t, o in ordered_inputs(info) if is_widget(t, o)}
        if unknown:
            raise KeyError(f"{node_type} has no widget(s) {sorted(unknown)}")
        self.nodes.append(node)
        return node

    def note(self, text: str, pos, size=(420, 300), title: str = "Read me") -> Node:
        """A Markdown note (a frontend-only node)."""
        node = Node(len(self.nodes) + 1, "MarkdownNote", None, pos, {}, title, list(size), None, {})
        node.text = text
        self.nodes.append(node)
        return node

    def connect(self, src: Node, output, dst: Node, input_name: str) -> None:
        """Link an output (index or name) to a named input (a socket, or a widget turned into one)."""
        slot = output if isinstance(output, int) else src.info["output_name"].index(output)
        io_type = src.info["output"][slot]
        names = [name for name, _, _ in ordered_inputs(dst.info)]
        if input_name not in names:
            raise KeyError(f"{dst.type} has no input {input_name!r}")
        link_id = len(self.links) + 1
        self.links.append([link_id, src.id, slot, dst.id, None, io_type, input_name])
        dst.links_in[input_name] = link_id
        src.links_out.setdefault(slot, []).append(link_id)

    def group(self, title: str, x: float, y: float, w: float, h: float, color: str = "#3f789e") -> None:
        """A titled box around nodes."""
        self.groups.append({"id": len(self.groups) + 1, "title": title, "bounding": [x, y, w, h], "color": color,
                            "font_size": 24, "flags": {}})

    def node_dict(self, node: Node, order: int) -> dict:
        """A node as the frontend serialises it."""
        if node.info is None:  # MarkdownNote
            return {"id": node.id, "type": node.type, "pos": node.pos, "size": node.size, "flags": {}, "order": order,
                    "mode": 0, "inputs": [], "outputs": [], "title": node.title, "properties": {},
                    "widgets_values": [node.text], "color": "#432", "bgcolor": "#653"}
        sockets, linked_widgets, widgets_values = [], [], []
        widget_count = 0
        for name, io_type, options in ordered_inputs(node.info):
            widget = is_widget(io_type, options)
            if widget:
                widget_count += 1
                value = node.widgets.get(name, options.get("default", self.combo_first(io_type, options)))
                widgets_values.append(value)
                if has_control_widget(name, io_type, options):
                    widgets_values.append(CONTROL_AFTER_GENERATE)
                if options.get("image_upload"):  # the frontend's upload button serialises as "image" after the file name
                    widgets_values.append("image")
            if not widget:
                sockets.append({"name": name, "type": io_type, "link": node.links_in.get(name)})
            elif name in node.links_in:
                linked_widgets.append({"name": name, "type": io_type, "link": node.links_in[name], "widget": {"name": name}})
        # Sockets first, then widgets turned into inputs, as the frontend creates a node's slots: a link's target slot
        # is an index into this list (frontend 1.32.9 reads it by index; CLIPTextEncode defines text before clip).
        inputs = sockets + linked_widgets
        link_slots = {entry["name"]: i for i, entry in enumerate(inputs)}
        outputs = [{"name": out_name, "type": out_type, "links": node.links_out.get(i, []), "slot_index": i}
                   for i, (out_name, out_type) in enumerate(zip(node.info["output_name"], node.info["output"]))]
        for name, slot in link_slots.items():
            if name in node.links_in:
                self.links[node.links_in[name] - 1][4] = slot
        own = node.info.get("python_module", "").endswith(self.pack_module)
        properties = {"cnr_id": self.pack_id if own else "comfy-core", "ver": self.pack_version if own else self.core_version,
                      "Node name for S&R": node.type, **node.properties}
        height = 30 + 22 * max(len(inputs) - sum(1 for e in inputs if "widget" in e), len(outputs)) + 26 * widget_count
        out = {"id": node.id, "type": node.type, "pos": node.pos, "size": node.size or [320, height], "flags": {},
               "order": order, "mode": 0, "inputs": inputs, "outputs": outputs, "properties": properties,
               "widgets_values": widgets_values}
        if node.title:
            out["title"] = node.title
        if node.color:
            out["color"], out["bgcolor"] = node.color
        return out

    @staticmethod
    def combo_first(io_type: str, options: dict):
        """A combo's first option when it declares no default."""
        values = options.get("options") or []
        return values[0] if io_type == "COMBO" and values else None

    def execution_order(self) -> dict:
        """Node id -> position in a topological order (the frontend's `order` field)."""
        incoming = {n.id: {self.links[l - 1][1] for l in n.links_in.values()} for n in self.nodes}
        order, done = {}, set()
        while len(done) < len(self.nodes):
            ready = [n.id for n in self.nodes if n.id not in done and incoming[n.id] <= done]
            if not ready:
                raise ValueError("the workflow has a cycle")
            for node_id in ready:
                order[node_id] = len(order)
                done.add(node_id)
        return order

    def build(self, name: str, models: list = None, frontend_version: str = "1.32.9") -> dict:
        """The workflow dict, ready for json.dump; name gives it a stable id."""
        order = self.execution_order()
        nodes = [self.node_dict(n, order[n.id]) for n in self.nodes]
        workflow = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.pack_id}/workflows/{name}")),
            "revision": 0,
            "last_node_id": len(self.nodes),
            "last_link_id": len(self.links),
            "nodes": nodes,
            "links": [link[:6] for link in self.links],
            "groups": self.groups,
            "config": {},
            "extra": {"ds": {"scale": 0.75, "offset": [40, 120]}, "frontendVersion": frontend_version},
            "version": 0.4,
        }
        if models:
            workflow["models"] = models
        return workflow
