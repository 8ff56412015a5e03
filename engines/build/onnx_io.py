"""Reading an ONNX file's interface and metadata (onnx only, no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import TensorSpec


def _dtype_name(elem_type: int) -> str:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name


def tensor_specs(values) -> list[TensorSpec]:  # values: graph.input / graph.output
    specs = []
    for v in values:
        t = v.type.tensor_type
        shape: list[int | str] = [d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim]
        specs.append(TensorSpec(name=v.name, shape=shape, dtype=_dtype_name(t.elem_type)))
    return specs


def io_specs(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    init = {i.name for i in model.graph.initializer}
    return tensor_specs([i for i in model.graph.input if i.name not in init]), tensor_specs(model.graph.output)


def metadata(path: Path) -> dict[str, str]:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends for a damaged file
        raise EngineError(f"{path} is not a readable ONNX file ({exc}); rebuild it") from exc
    return {p.key: p.value for p in model.metadata_props}
