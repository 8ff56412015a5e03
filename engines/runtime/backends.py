"""What an agent or the aggregator loads: one small interface over two backends.

    part = load_part_engine(engines_dir, part_index)          # -> .infer(x) -> features, .feature_dim
    head = load_fusion_engine(engines_dir)                     # -> .fuse(features, mask) -> logits

Backends: "onnxruntime" (CPU; what a Raspberry Pi runs; imports without torch) and "tensorrt" (a plan built
on the Jetson; tensorrt/pycuda imported only here, lazily). The PyTorch reference of a bundle, behind the same
interface, is engines/build/torch_reference.py (workstation only). Every file is checked against the manifest's size and sha256 before
it is loaded: a truncated, altered or foreign file raises EngineError and is never run.

Batches: the exported graphs have a static batch of 1 (what a board runs, frame by frame, and the simplest
TensorRT plan), so a batch of N is run as N calls; a graph exported with a dynamic batch axis gets one call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from vitfleet.choices import Backend, choice_values
from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import EngineEntry, Manifest, TensorSpec, read_manifest, verified_path

BACKENDS = choice_values(Backend)


class Model(Protocol):
    """A loaded graph: named float32 inputs -> its outputs in manifest order."""

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


def _static_batch_one(specs: list[TensorSpec]) -> bool:
    return bool(specs) and specs[0].shape[:1] == [1]


class OnnxRuntimeModel:
    def __init__(self, path: Path, entry: EngineEntry, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise EngineError(f"{entry.label}: ONNX Runtime cannot load {path} ({exc}); rebuild the engines") from exc
        self.output_names = [o.name for o in entry.outputs]
        self.loop = _static_batch_one(entry.inputs)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        n = len(next(iter(feeds.values())))
        if not self.loop or n == 1:
            return self.session.run(self.output_names, feeds)
        rows = [self.session.run(self.output_names, {k: v[i : i + 1] for k, v in feeds.items()}) for i in range(n)]
        return [np.concatenate([r[j] for r in rows]) for j in range(len(self.output_names))]


def _input_check(x: np.ndarray, spec: TensorSpec, what: str) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    want = spec.shape[1:]
    if x.ndim != len(spec.shape) or any(isinstance(w, int) and w != s for w, s in zip(want, x.shape[1:])):
        raise EngineError(
            f"{what} expects {spec.name} of shape (N, {', '.join(map(str, want))}), got {x.shape}; "
            "prepare frames with the manifest's preprocessing"
        )
    return x


class PartEngine:
    """image batch (N, C, H, W) float32, normalised -> CLS features (N, D) float32."""

    def __init__(self, model: Model, inputs: list[TensorSpec], feature_dim: int, label: str) -> None:
        self.model = model
        self.input = inputs[0]
        self.feature_dim = feature_dim
        self.label = label

    def infer(self, x: np.ndarray) -> np.ndarray:
        x = _input_check(x, self.input, self.label)
        return np.asarray(self.model.run({self.input.name: x})[0], dtype=np.float32)


class FusionEngine:
    """features (N, sum D) + presence mask (N, K) -> logits (N, C). Missing parts' slices are zeroed by the head."""

    def __init__(self, model: Model, inputs: list[TensorSpec], num_classes: int, label: str) -> None:
        self.model = model
        self.inputs = inputs
        self.num_classes = num_classes
        self.label = label

    def fuse(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        f = _input_check(features, self.inputs[0], self.label)
        m = _input_check(mask, self.inputs[1], self.label)
        if len(f) != len(m):
            raise EngineError(f"{self.label}: {len(f)} feature rows but {len(m)} mask rows")
        return np.asarray(self.model.run({self.inputs[0].name: f, self.inputs[1].name: m})[0], dtype=np.float32)


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise EngineError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")


def load_model(engines_dir: Path, entry: EngineEntry, threads: int = 1) -> Model:
    """Verify the file against the manifest, then open it with its backend."""
    path = verified_path(engines_dir, entry)
    if entry.backend == "tensorrt":
        from vitfleet.engines.runtime.tensorrt_runtime import TensorRTModel

        return TensorRTModel(path, entry)
    return OnnxRuntimeModel(path, entry, threads)


def _manifest(engines_dir: Path) -> Manifest:
    return read_manifest(Path(engines_dir))


def load_part_engine(
    engines_dir: Path, part: int, backend: str = "onnxruntime", threads: int = 1, precision: str | None = None
) -> PartEngine:
    """Part `part`'s engine; precision defaults to the one the folder was built for."""
    _check_backend(backend)
    manifest = _manifest(engines_dir)
    if not 0 <= part < manifest.num_parts:
        raise EngineError(f"{engines_dir} holds parts 0..{manifest.num_parts - 1}, not {part}")
    entry = manifest.lookup("part", part, backend, precision)
    dim = entry.outputs[0].shape[-1]
    return PartEngine(
        load_model(Path(engines_dir), entry, threads),
        entry.inputs,
        int(dim) if isinstance(dim, int) else manifest.feature_dims[part],
        entry.label,
    )


def load_fusion_engine(
    engines_dir: Path, backend: str = "onnxruntime", threads: int = 1, precision: str | None = None
) -> FusionEngine:
    _check_backend(backend)
    manifest = _manifest(engines_dir)
    entry = manifest.lookup("fusion", None, backend, precision)
    return FusionEngine(
        load_model(Path(engines_dir), entry, threads), entry.inputs, len(manifest.class_names), entry.label
    )
