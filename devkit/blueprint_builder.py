"""Build a subgraph blueprint (what ComfyUI lists from a pack's subgraphs/*.json) from node definitions.

A blueprint file is a workflow whose root graph holds one node, an instance of the one subgraph in
`definitions.subgraphs`; the frontend's subgraph store reads that node's inputs and outputs as the
blueprint's node definition and pastes node and subgraph onto the canvas when the blueprint is placed
(comfyui-frontend-package 1.49.6, stores/subgraphStore.ts `registerNodeDef`, services/litegraphService.ts
`addNodeOnGraph`). Inside, the subgraph's input node is id -10 and its output node id -20; links are
objects, not the root graph's arrays. The inner nodes are laid out by WorkflowBuilder, so their sockets
and widget values come from the nodes' own definitions as in the example workflows.
"""
import uuid
from dataclasses import dataclass, field

from devkit.workflow_builder import Node, WorkflowBuilder, is_widget, ordered_inputs

INPUT_NODE, OUTPUT_NODE = -10, -20


@dataclass
class SubgraphSlot:
    """One input or output of the subgraph."""

    name: str
    type: str
    label: str
    link_ids: list = field(default_factory=list)
    widget_value: object = None  # an input that feeds widgets: the value the placed node starts with


class BlueprintBuilder(WorkflowBuilder):
    """A WorkflowBuilder whose nodes live inside one subgraph with named inputs and outputs."""

    def __init__(self, object_info: dict, pack_module: str, pack_id: str, pack_version: str, core_version: str):
        super().__init__(object_info, pack_module, pack_id, pack_version, core_version)
        self.inputs: list = []
        self.outputs: list = []

    def subgraph_input(self, name: str, io_type: str, label: str, targets: list) -> SubgraphSlot:
        """An input of the subgraph, linked to each (node, input name) in targets."""
        slot = SubgraphSlot(name, io_type, label)
        for dst, input_name in targets:
            spec = dict((n, (t, o)) for n, t, o in ordered_inputs(dst.info)).get(input_name)
            if spec is None:
                raise KeyError(f"{dst.type} has no input {input_name!r}")
            if spec[0] != io_type:
                raise TypeError(f"subgraph input {name!r} is {io_type}; {dst.type}.{input_name} takes {spec[0]}")
            if is_widget(*spec):
                # The placed node shows the widget with the inner node's value (the frontend promotes it).
                slot.widget_value = dst.widgets.get(input_name, spec[1].get("default"))
            link_id = len(self.links) + 1
            self.links.append([link_id, INPUT_NODE, len(self.inputs), dst.id, None, io_type, input_name])
            dst.links_in[input_name] = link_id
            slot.link_ids.append(link_id)
        self.inputs.append(slot)
        return slot

    def subgraph_output(self, name: str, io_type: str, label: str, src: Node, output) -> SubgraphSlot:
        """An output of the subgraph, fed by one output (index or name) of an inner node."""
        slot_index = output if isinstance(output, int) else src.info["output_name"].index(output)
        if src.info["output"][slot_index] != io_type:
            raise TypeError(f"subgraph output {name!r} is {io_type}; {src.type} gives {src.info['output'][slot_index]}")
        link_id = len(self.links) + 1
        self.links.append([link_id, src.id, slot_index, OUTPUT_NODE, len(self.outputs), io_type, None])
        src.links_out.setdefault(slot_index, []).append(link_id)
        slot = SubgraphSlot(name, io_type, label, [link_id])
        self.outputs.append(slot)
        return slot

    def execution_order(self) -> dict:
        """As WorkflowBuilder's, with the subgraph's input node counted as done from the start."""
        incoming = {n.id: {self.links[l - 1][1] for l in n.links_in.values()} - {INPUT_NODE} for n in self.nodes}
        order, done = {}, set()
        while len(done) < len(self.nodes):
            ready = [n.id for n in self.nodes if n.id not in done and incoming[n.id] <= done]
            if not ready:
                raise ValueError("the subgraph has a cycle")
            for node_id in ready:
                order[node_id] = len(order)
                done.add(node_id)
        return order

    def _slot_dicts(self, slots: list, subgraph_id: str, kind: str, x: float) -> list:
        return [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{subgraph_id}/{kind}/{s.name}")), "name": s.name, "type": s.type,
                 "linkIds": list(s.link_ids), "label": s.label, "pos": [x, 20 * i]} for i, s in enumerate(slots)]

    def build_blueprint(self, name: str, category: str, description: str, pos=(0, 0)) -> dict:
        """The blueprint file's dict: the instance node in the root graph and the subgraph it instantiates."""
        subgraph_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.pack_id}/subgraphs/{name}"))
        order = self.execution_order()
        nodes = [self.node_dict(n, order[n.id]) for n in self.nodes]
        xs = [n.pos[0] for n in self.nodes] or [0]
        left, right = min(xs) - 240, max(xs) + 420
        links = [{"id": l[0], "origin_id": l[1], "origin_slot": l[2], "target_id": l[3], "target_slot": l[4], "type": l[5]}
                 for l in self.links]
        instance_id = len(self.nodes) + 1
        instance = {
            "id": instance_id, "type": subgraph_id, "pos": list(pos), "size": [400, 40 + 26 * len(self.inputs)], "flags": {},
            "order": 0, "mode": 0,
            "inputs": [{"label": s.label, "name": s.name, "type": s.type, "link": None,
                        **({"widget": {"name": s.name}} if s.widget_value is not None else {})} for s in self.inputs],
            "outputs": [{"label": s.label, "name": s.name, "type": s.type, "links": []} for s in self.outputs],
            "title": name,
            "properties": {"cnr_id": self.pack_id, "ver": self.pack_version},
            "widgets_values": [s.widget_value for s in self.inputs if s.widget_value is not None],
        }
        subgraph = {
            "id": subgraph_id, "version": 1,
            "state": {"lastGroupId": len(self.groups), "lastNodeId": len(self.nodes), "lastLinkId": len(self.links),
                      "lastRerouteId": 0},
            "revision": 0, "config": {}, "name": name,
            "inputNode": {"id": INPUT_NODE, "bounding": [left, 0, 160, 40 + 20 * len(self.inputs)]},
            "outputNode": {"id": OUTPUT_NODE, "bounding": [right, 0, 160, 40 + 20 * len(self.outputs)]},
            "inputs": self._slot_dicts(self.inputs, subgraph_id, "input", left + 140),
            "outputs": self._slot_dicts(self.outputs, subgraph_id, "output", right + 20),
            "widgets": [], "nodes": nodes, "groups": self.groups, "links": links, "extra": {},
            "category": category, "description": description,
        }
        return {"revision": 0, "last_node_id": instance_id, "last_link_id": 0, "nodes": [instance], "links": [],
                "version": 0.4, "definitions": {"subgraphs": [subgraph]},
                "extra": {"BlueprintDescription": description}}
