"""Short tensor and node names for the engine files a board downloads.

The torch exporter names every tensor after its module path (`/blocks/blocks.3/attn/qkv/MatMul_output_0`) and
the int8 quantizer appends `_QuantizeLinear_Output`, `_scale`, `_zero_point` to each: in a ~170 k-parameter
part those strings were about a third of the int8 file (docs/benchmarks.md). Graph inputs and outputs keep
their names (they are the interface the manifest records); everything inside becomes a base-36 index.
Node names stay unique, which is all TensorRT's per-layer precision pinning needs (engines/tensorrt_build.py).
"""

from __future__ import annotations

import string

_DIGITS = string.digits + string.ascii_lowercase


def _base36(i: int) -> str:
    out = ""
    while True:
        i, r = divmod(i, 36)
        out = _DIGITS[r] + out
        if i == 0:
            return out


def compact_names(model) -> dict[str, str]:  # onnx.ModelProto
    """Rename in place; returns the old -> new tensor-name map (for debugging a graph against its source)."""
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep:
            return name
        if name not in names:
            names[name] = "t" + _base36(len(names))
        return names[name]

    for init in graph.initializer:
        init.name = short(init.name)
        init.doc_string = ""
    for i, node in enumerate(graph.node):
        node.name = "n" + _base36(i)
        node.doc_string = ""
        node.input[:] = [short(x) for x in node.input]
        node.output[:] = [short(x) for x in node.output]
        if any(a.type == a.GRAPH or a.type == a.GRAPHS for a in node.attribute):
            raise ValueError(f"{node.op_type} has a subgraph; compact_names handles flat graphs only")
    for vi in graph.value_info:
        vi.name = short(vi.name)
    graph.doc_string = ""
    model.doc_string = ""
    return names
