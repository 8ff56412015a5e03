"""PyTorch -> ONNX for every piece of a bundle: the parts, the fusion head, and the teacher (for benchmarks).

Legacy exporter (dynamo=False) at opset 17: LayerNormalization stays one node (TensorRT pins it to fp32 by
name/type, ORT's quantizer leaves it float), weights stay inside the file (no .onnx.data side file), and
timm's attention exports as plain MatMul/Softmax. Static batch 1 by default, the shape a board runs one
frame at a time with and the simplest TensorRT build (no optimisation profile); `dynamic_batch=True` marks
axis 0 as 'batch'. Every file passes onnx.checker and carries the bundle id, role and part index in
metadata_props, so a file that strays from its folder still says what it is. Tensor and node names are
shortened (engines/build/onnx_names.py): they were a third of an int8 part's bytes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vitfleet.engines.build.onnx_initializers import unshare_vector_initializers
from vitfleet.engines.build.onnx_io import io_specs
from vitfleet.engines.build.onnx_names import compact_names
from vitfleet.engines.runtime.manifest import TensorSpec

OPSET = 17


@dataclass(frozen=True)
class ExportedOnnx:
    path: Path
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


def export_module(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    path: Path,
    metadata: dict[str, str],
    dynamic_batch: bool = False,
) -> ExportedOnnx:
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".export.onnx")
    axes = {name: {0: "batch"} for name in input_names + output_names} if dynamic_batch else None
    module = module.eval().cpu()
    # timm's shape asserts trip TracerWarnings; shapes are static here by design (batch axis aside).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is chosen on purpose (see above)
        torch.onnx.export(
            module,
            example,
            str(tmp),
            dynamo=False,
            opset_version=OPSET,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    model = onnx.load(str(tmp))
    compact_names(model)
    unshare_vector_initializers(model)
    onnx.helper.set_model_props(model, {"vitfleet": "engines", **metadata})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    tmp.unlink()
    inputs, outputs = io_specs(path)
    return ExportedOnnx(path, inputs, outputs)


def export_part(
    part: nn.Module,
    image_shape: tuple[int, int, int],
    path: Path,
    bundle_id: str,
    index: int,
    dynamic_batch: bool = False,
) -> ExportedOnnx:
    example = (torch.zeros(1, *image_shape),)
    return export_module(
        part,
        example,
        ["image"],
        ["features"],
        path,
        {"bundle_id": bundle_id, "role": "part", "part": str(index)},
        dynamic_batch,
    )


def export_fusion(
    head: nn.Module, feature_dims: list[int], path: Path, bundle_id: str, dynamic_batch: bool = False
) -> ExportedOnnx:
    example = (torch.zeros(1, sum(feature_dims)), torch.ones(1, len(feature_dims)))
    return export_module(
        head,
        example,
        ["features", "mask"],
        ["logits"],
        path,
        {"bundle_id": bundle_id, "role": "fusion", "part": ""},
        dynamic_batch,
    )


def export_teacher(
    teacher: nn.Module, image_shape: tuple[int, int, int], path: Path, bundle_id: str, dynamic_batch: bool = False
) -> ExportedOnnx:
    example = (torch.zeros(1, *image_shape),)
    return export_module(
        teacher,
        example,
        ["image"],
        ["logits"],
        path,
        {"bundle_id": bundle_id, "role": "teacher", "part": ""},
        dynamic_batch,
    )
