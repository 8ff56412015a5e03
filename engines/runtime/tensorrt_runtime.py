"""Run a TensorRT plan: pycuda page-locked host buffers + device buffers, one CUDA stream.

TensorRT 10.x: name-based I/O (set_tensor_address + execute_async_v3). TensorRT 8.5: binding-index list
(execute_async_v2). Both enumerate I/O with num_io_tensors / get_tensor_name (present since 8.5).
A plan built by another TensorRT version or for another GPU is refused before deserialisation: such a
plan either fails to load or, worse, loads and misbehaves.

UNVERIFIED ON HARDWARE (see engines/runtime/tensorrt_env.py); wiring-tested against a fake module only.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import EngineEntry
from vitfleet.engines.runtime.tensorrt_env import (
    compute_capability,
    import_cuda,
    import_tensorrt,
    major_version,
    version_tag,
)


def check_plan_matches(entry: EngineEntry, trt_version: str, capability: str) -> None:
    if entry.tensorrt_version != trt_version or entry.compute_capability != capability:
        raise EngineError(
            f"{entry.label} was built with TensorRT {entry.tensorrt_version} for "
            f"{entry.compute_capability}, but this board has TensorRT {trt_version} on {capability}; "
            "rebuild it here: vitfleet engines build --backend tensorrt --engines DIR "
            f"--precision {entry.precision}"
        )


class TensorRTModel:
    def __init__(
        self, path: Path, entry: EngineEntry, trt: ModuleType | None = None, cuda: ModuleType | None = None
    ) -> None:
        self.trt = trt or import_tensorrt()
        self.cuda = cuda or import_cuda()
        check_plan_matches(entry, version_tag(self.trt), compute_capability(self.cuda))
        self.v3 = major_version(self.trt) >= 10
        logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise EngineError(f"{entry.label}: TensorRT could not deserialise {path}; rebuild it on this board")
        self.context = self.engine.create_execution_context()
        self.stream = self.cuda.Stream()
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.host: dict[str, np.ndarray] = {}
        self.device: dict[str, object] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise EngineError(
                    f"{entry.label}: dynamic shapes are not supported by the TensorRT runner; "
                    "export with a static batch of 1 (the default)"
                )
            dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))
            self.host[name] = self.cuda.pagelocked_empty(int(np.prod(shape)), dtype)
            self.device[name] = self.cuda.mem_alloc(self.host[name].nbytes)
            self.shapes[name] = shape
            is_input = self.engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append(name)
            if self.v3:
                self.context.set_tensor_address(name, int(self.device[name]))
        if not self.v3:  # 8.5: bindings ordered by binding index
            names = sorted(self.host, key=self.engine.get_binding_index)
            self.bindings = [int(self.device[n]) for n in names]

    def _run_one(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        for name in self.inputs:
            np.copyto(self.host[name], np.asarray(feeds[name], dtype=self.host[name].dtype).ravel())
            self.cuda.memcpy_htod_async(self.device[name], self.host[name], self.stream)
        if self.v3:
            ok = self.context.execute_async_v3(stream_handle=self.stream.handle)
        else:
            ok = self.context.execute_async_v2(bindings=self.bindings, stream_handle=self.stream.handle)
        if not ok:
            raise EngineError("TensorRT execution failed (see the TensorRT log)")
        for name in self.outputs:
            self.cuda.memcpy_dtoh_async(self.host[name], self.device[name], self.stream)
        self.stream.synchronize()
        return [self.host[n].reshape(self.shapes[n]).astype(np.float32) for n in self.outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Plans have a static batch of 1: a batch of N runs as N executions."""
        n = len(next(iter(feeds.values())))
        rows = [self._run_one({k: v[i : i + 1] for k, v in feeds.items()}) for i in range(n)]
        return [np.concatenate([r[j] for r in rows]) for j in range(len(self.outputs))]
