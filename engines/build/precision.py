"""fp32 ONNX -> fp16 ONNX and int8 symmetric-QDQ ONNX, with onnxruntime's own tools.

int8: static QDQ with zero point 0 everywhere (symmetric activations and weights, the form TensorRT's
explicit quantization accepts), per-channel weights, full 8-bit weights for Pi and Jetson (7-bit for the x86
`cpu` target, see Int8Settings.reduce_range). Only MatMul/Gemm/Conv get Q/DQ pairs:
LayerNormalization, Softmax and the residual Adds stay float, where int8 costs accuracy for no speed.
The same QDQ file is what a Jetson's TensorRT builds its int8 plan from.

fp16: onnxruntime.transformers.float16 with float I/O kept (agents feed float32) and LayerNormalization /
Softmax blocked in fp32, mirroring the TensorRT build's precision constraints. (onnxconverter-common's
output failed to load in ORT here.)
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitfleet.engines.build.calibration import ArrayCalibrationReader
from vitfleet.engines.build.onnx_names import compact_names
from vitfleet.engines.runtime.errors import EngineError

FP32_OPS_UNDER_FP16 = ["LayerNormalization", "Softmax"]
QUANTIZED_OP_TYPES = ["MatMul", "Gemm", "Conv"]


@dataclass(frozen=True)
class Int8Settings:
    """Calibration choices (measured on the fixture and the Fashion-MNIST bundle; see engines/README.md)."""

    calibrate_method: str = "percentile"  # minmax | entropy | percentile
    percentile: float = 99.999
    per_channel: bool = True
    # q@k^T and attn@v (activation x activation): quantizing them puts Q/DQ on both sides of the Softmax
    # (its input scores and its output probabilities). Kept float: Softmax stays float end to end, and the
    # tiny fixture's fused agreement rose 98.3 -> 98.6 %.
    quantize_activation_matmuls: bool = False
    # The patch-embedding Conv reads the raw normalised image: int8 there took the tiny fixture's mean feature
    # cosine from 0.999 to 0.985 (min 0.96 -> 0.40), more than every other layer together, for one small layer.
    quantize_patch_embed: bool = False
    # 7-bit weights. ORT's x86 int8 kernels without VNNI (AVX2 u8s8) saturate int16 partial sums with full
    # 8-bit weights: on this machine that cost 10x the feature error (cosine 0.99935 vs 0.99995 with 7-bit
    # weights, or with the same file run unfused). ARM (Pi) and TensorRT do not saturate: full range there.
    # None = decided by the build target (cpu: 7-bit; pi, jetson: 8-bit).
    reduce_range: bool | None = None
    exclude_nodes: list[str] = field(default_factory=list)


def to_fp16(src: Path, dst: Path) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    half = convert_float_to_float16(
        model, keep_io_types=True, op_block_list=list(DEFAULT_OP_BLOCK_LIST) + FP32_OPS_UNDER_FP16
    )
    onnx.helper.set_model_props(half, {**props, "precision": "fp16"})
    _topological_sort(half.graph)
    compact_names(half)
    onnx.checker.check_model(half)
    onnx.save(half, str(dst))
    return dst


def _topological_sort(graph) -> None:  # onnx.GraphProto
    """The fp16 converter appends its input Casts after their consumers; ORT tolerates that, the ONNX spec
    (and onnx.checker, and TensorRT's parser) want nodes in dependency order."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise EngineError("the fp16 graph has a cycle or a dangling input; re-export the fp32 ONNX")
        for n in ready:
            available.update(n.output)
        ordered += ready
        pending = [n for n in pending if not all(i in available for i in n.input) or n not in ready]
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)


def _activation_matmuls(model) -> list[str]:  # onnx.ModelProto
    """MatMul nodes whose both inputs are activations (attention scores and weighted values)."""
    weights = {i.name for i in model.graph.initializer}
    consts = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and not any(i in weights or i in consts for i in n.input)
    ]


def to_int8(
    src: Path, dst: Path, calibration: np.ndarray, settings: Int8Settings = Int8Settings(), target: str = "cpu"
) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise EngineError("int8 needs calibration images and none were given; pass --calib-images N (N > 0)")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if settings.calibrate_method not in methods:
        raise EngineError(f"unknown calibration method {settings.calibrate_method!r}; use {', '.join(methods)}")
    prepped = dst.with_suffix(".prep.onnx")
    # Shape inference + graph cleanup, as onnxruntime recommends before static quantization.
    quant_pre_process(str(src), str(prepped), skip_symbolic_shape=True)
    model = onnx.load(str(prepped))
    props = {p.key: p.value for p in model.metadata_props}
    exclude = list(settings.exclude_nodes)
    if not settings.quantize_activation_matmuls:
        exclude += _activation_matmuls(model)
    input_name = model.graph.input[0].name
    reduce_range = settings.reduce_range if settings.reduce_range is not None else target == "cpu"
    if not settings.quantize_patch_embed:
        exclude += [n.name for n in model.graph.node if n.op_type == "Conv" and input_name in n.input]
    # Biases stay float: a DequantizeLinear of an int32 bias is ORT-only, TensorRT's Q/DQ are int8.
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}
    if settings.calibrate_method == "percentile":
        extra["CalibPercentile"] = settings.percentile
    try:
        # The calibrators print progress to stdout, which must stay clean for `--json`.
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(prepped),
                str(dst),
                ArrayCalibrationReader(input_name, calibration),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=QUANTIZED_OP_TYPES,
                per_channel=settings.per_channel,
                reduce_range=reduce_range,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude or None,
                calibrate_method=methods[settings.calibrate_method],
                extra_options=extra,
            )
    finally:
        prepped.unlink(missing_ok=True)
    quantized = onnx.load(str(dst))
    compact_names(quantized)  # the quantizer's "<name>_QuantizeLinear_Output"-style names
    onnx.helper.set_model_props(quantized, {**props, "precision": "int8"})
    onnx.checker.check_model(quantized)
    onnx.save(quantized, str(dst))
    return dst
