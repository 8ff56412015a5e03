"""One 1-D initializer per consumer: the int8 quantizer needs each bias to itself.

The exporter's constant folding merges identical tensors into one initializer; a freshly initialised timm
ViT has all-zero biases, so one zero vector ends up feeding many layers of different widths. ONNX Runtime's
static quantizer then rewrites that shared bias for the first layer it meets and writes an invalid model
("Invalid bias shape" at load) — a user's untrained or zero-bias checkpoint could not get int8 engines.
Giving each consumer its own copy costs a few kilobytes (biases only).
"""

from __future__ import annotations

from collections import defaultdict

import onnx
from onnx import numpy_helper


def unshare_vector_initializers(model: onnx.ModelProto) -> int:
    """Copy every 1-D initializer that feeds more than one node input; returns how many copies were made."""
    graph = model.graph
    vectors = {init.name: init for init in graph.initializer if len(init.dims) == 1}
    uses: dict[str, list[tuple[onnx.NodeProto, int]]] = defaultdict(list)
    for node in graph.node:
        for slot, name in enumerate(node.input):
            if name in vectors:
                uses[name].append((node, slot))
    copies = 0
    taken = {init.name for init in graph.initializer}
    for name, consumers in uses.items():
        array = numpy_helper.to_array(vectors[name])
        for n, (node, slot) in enumerate(consumers[1:], start=1):
            new_name = f"{name}__{n}"
            while new_name in taken:
                new_name += "_"
            taken.add(new_name)
            graph.initializer.append(numpy_helper.from_array(array.copy(), new_name))
            node.input[slot] = new_name
            copies += 1
    return copies
