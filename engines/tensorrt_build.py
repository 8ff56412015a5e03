"""Build TensorRT plans on the Jetson from the ONNX files in an engines folder.

fp16 plans are built from the fp32 export with FP16 enabled; int8 plans from the symmetric QDQ ONNX
(explicit quantization: the Q/DQ scales come from the file, no TensorRT calibrator), with INT8 and FP16
enabled so the layers left float run in fp16. In both, LayerNorm and Softmax layers are pinned to fp32
(layer precision + output type, enforced by OBEY_PRECISION_CONSTRAINTS): in fp16 they are where ViTs lose
accuracy. A timing cache per TensorRT version and GPU makes rebuilds fast. Plans are named by a cache key
(source ONNX sha256, precision, TensorRT version, compute capability) and described in manifest.json; no
bytes are ever prepended to a plan. A plan whose key or sha256 does not match is rebuilt, never loaded.

UNVERIFIED ON HARDWARE (see engines/runtime/tensorrt_env.py): written against the TensorRT 8.5 and 10.3 Python
APIs; tests/test_engines_tensorrt_wiring.py checks the calls against a fake module. `make check-jetson`
is the real test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import (
    PRECISIONS,
    EngineEntry,
    Manifest,
    read_manifest,
    verified_path,
    write_manifest,
)
from vitfleet.engines.runtime.tensorrt_env import (
    compute_capability,
    import_cuda,
    import_tensorrt,
    major_version,
    plan_name,
    timing_cache_name,
    version_tag,
)
from vitfleet.file_digest import sha256_file

FP32_ONNX_OPS = ("LayerNormalization", "Softmax")
WORKSPACE_BYTES = 1 << 30


@dataclass(frozen=True)
class PlanResult:
    entry: EngineEntry
    rebuilt: bool
    reason: str


def pinned_onnx_nodes(onnx_path: Path) -> list[str]:
    """Names of the ONNX nodes whose TensorRT layers must stay fp32."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in FP32_ONNX_OPS and n.name]


def pin_fp32_layers(trt: ModuleType, network, node_names: list[str]) -> list[str]:
    """Pin LayerNorm/Softmax layers to fp32. TensorRT 8.6+ has a NORMALIZATION layer type; 8.5's parser
    expands LayerNormalization into reduce/elementwise layers named after the ONNX node, so layers are also
    matched by that name prefix."""
    kinds = {getattr(trt.LayerType, k) for k in ("SOFTMAX", "NORMALIZATION") if hasattr(trt.LayerType, k)}
    pinned = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type in kinds or any(
            layer.name == n or layer.name.startswith(n + "_") or layer.name.startswith(n + ".") for n in node_names
        ):
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            pinned.append(layer.name)
    return pinned


def _parse(trt: ModuleType, builder, logger, onnx_path: Path):
    # TensorRT 10 networks are always explicit-batch (the flag is deprecated); 8.5 needs it set.
    flags = 0 if major_version(trt) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {onnx_path.name}: {errors}; re-export the ONNX with this vitfleet")
    return network


def _add_batch_profile(trt: ModuleType, builder, config, network, max_batch: int) -> None:
    """A dynamic-batch export needs an optimisation profile (batch 1..max_batch, tuned for 1)."""
    dynamic = [network.get_input(i) for i in range(network.num_inputs) if network.get_input(i).shape[0] == -1]
    if not dynamic:
        return
    profile = builder.create_optimization_profile()
    for tensor in dynamic:
        rest = tuple(tensor.shape)[1:]
        profile.set_shape(tensor.name, (1, *rest), (1, *rest), (max_batch, *rest))
    config.add_optimization_profile(profile)


def build_plan(
    trt: ModuleType, onnx_path: Path, plan_path: Path, precision: str, cache_path: Path, max_batch: int = 8
) -> list[str]:
    """Serialise one plan; returns the names of the layers pinned to fp32."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = _parse(trt, builder, logger, onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.exists() else b"")
    config.set_timing_cache(cache, False)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # explicit quantization: scales come from the QDQ nodes
    pinned: list[str] = []
    if precision != "fp32":
        pinned = pin_fp32_layers(trt, network, pinned_onnx_nodes(onnx_path))
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    _add_batch_profile(trt, builder, config, network, max_batch)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(
            f"TensorRT failed to build {plan_path.name} from {onnx_path.name} (see the log above); "
            "check the JetPack version is one of those engines/README.md lists"
        )
    tmp = plan_path.with_suffix(".engine.tmp")
    tmp.write_bytes(bytes(serialized))
    tmp.replace(plan_path)
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    return pinned


def _source_for(manifest: Manifest, role: str, part: int | None, precision: str) -> EngineEntry:
    """fp16/fp32 plans come from the fp32 export, int8 plans from the QDQ ONNX."""
    source_precision = "int8" if precision == "int8" else "fp32"
    try:
        return manifest.lookup(role, part, "onnxruntime", source_precision)
    except EngineError as exc:
        raise EngineError(
            f"no {source_precision} ONNX for {role} {'' if part is None else part} to build a "
            f"{precision} plan from; on the workstation run: vitfleet engines build --bundle B "
            f"--out DIR --target jetson --precision {precision}, then copy DIR here"
        ) from exc


def build_tensorrt_engines(
    engines_dir: Path,
    precision: str,
    trt: ModuleType | None = None,
    capability: str | None = None,
    max_batch: int = 8,
    log=print,
) -> list[PlanResult]:
    """Build (or reuse) a plan per part and for the fusion head; record them in manifest.json."""
    if precision not in PRECISIONS:
        raise EngineError(f"unknown precision {precision!r}; use fp16 or int8 (or fp32)")
    engines_dir = Path(engines_dir)
    manifest = read_manifest(engines_dir)
    trt = trt or import_tensorrt()
    capability = capability or compute_capability(import_cuda())
    version = version_tag(trt)
    cache_path = engines_dir / timing_cache_name(version, capability)
    jobs = [("part", i, f"part{i}") for i in range(manifest.num_parts)] + [("fusion", None, "fusion")]
    results = []
    for role, part, stem in jobs:
        # The fusion head stays fp32 in ONNX; its plan is fp16 at most (int8 has no QDQ source for it).
        want = precision if role == "part" else ("fp16" if precision == "int8" else precision)
        source = _source_for(manifest, role, part, want)
        source_path = verified_path(engines_dir, source)
        name = plan_name(stem, source.sha256, want, version, capability)
        plan_path = engines_dir / name
        reason = _reuse_reason(engines_dir, manifest, role, part, want, name, source.sha256)
        if reason is None:
            results.append(PlanResult(manifest.lookup(role, part, "tensorrt", want), False, "cache hit"))
            log(f"{name}: cache hit")
            continue
        log(f"{name}: building ({reason})")
        pinned = build_plan(trt, source_path, plan_path, want, cache_path, max_batch)
        entry = EngineEntry(
            role=role,
            part=part,
            precision=want,
            backend="tensorrt",
            file=name,
            size=plan_path.stat().st_size,
            sha256=sha256_file(plan_path),
            source_onnx_sha256=source.sha256,
            source_weights_sha256=source.source_weights_sha256,
            inputs=source.inputs,
            outputs=source.outputs,
            tensorrt_version=version,
            compute_capability=capability,
        )
        manifest.replace_entry(entry)
        write_manifest(engines_dir, manifest)
        results.append(PlanResult(entry, True, f"{reason}; {len(pinned)} layers pinned to fp32"))
    return results


def _reuse_reason(
    folder: Path, manifest: Manifest, role: str, part: int | None, precision: str, name: str, source_sha: str
) -> str | None:
    """None when the recorded plan can be reused; else why it must be (re)built."""
    try:
        entry = manifest.lookup(role, part, "tensorrt", precision)
    except EngineError:
        return "no plan yet"
    if entry.file != name:
        return f"cache key changed ({entry.file} -> {name})"
    if entry.source_onnx_sha256 != source_sha:
        return "source ONNX changed"
    try:
        verified_path(folder, entry)
    except EngineError as exc:
        return f"existing plan unusable: {exc}"
    return None
