"""The TensorRT side's facts: lazy imports, the installed version, the GPU's compute capability, and the
cache key every plan file is named by.

UNVERIFIED ON HARDWARE: there is no GPU where this was written. The code follows the documented TensorRT
8.5 (JetPack 5) and 10.3 (JetPack 6) Python APIs and pycuda's driver API, and its calls are tested only
against a fake `tensorrt` module (tests/test_engines_tensorrt_wiring.py). Run `make check-jetson` on a
Jetson to verify it.
"""

from __future__ import annotations

import re
from types import ModuleType

from vitfleet.engines.runtime.errors import EngineError

TESTED_AGAINST = ("8.5 (JetPack 5.1)", "10.3 (JetPack 6.x)")


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt  # noqa: PLC0415 - platform module, imported only where a plan is built or run
    except ImportError as exc:
        raise EngineError(
            "the tensorrt Python module is not importable; TensorRT plans are built and run on a "
            "Jetson (JetPack ships it: create the venv with --system-site-packages). On other "
            "machines use --backend onnxruntime"
        ) from exc
    return tensorrt


def import_cuda() -> ModuleType:
    """pycuda.driver with a context on device 0 (pycuda.autoinit)."""
    try:
        import pycuda.autoinit  # noqa: F401, PLC0415 - creates the CUDA context
        import pycuda.driver as cuda  # noqa: PLC0415
    except ImportError as exc:
        raise EngineError(
            "pycuda is not importable; on the Jetson run: pip install pycuda "
            "(needs the CUDA toolkit from JetPack on PATH)"
        ) from exc
    return cuda


def version_tag(trt: ModuleType) -> str:
    """'10.3.0.26' -> '10.3' (plans are portable within a major.minor, not across)."""
    match = re.match(r"(\d+)\.(\d+)", getattr(trt, "__version__", ""))
    if not match:
        raise EngineError(f"cannot read the TensorRT version from {getattr(trt, '__version__', None)!r}")
    return f"{match.group(1)}.{match.group(2)}"


def major_version(trt: ModuleType) -> int:
    return int(version_tag(trt).split(".")[0])


def compute_capability(cuda: ModuleType) -> str:
    major, minor = cuda.Device(0).compute_capability()
    return f"sm{major}{minor}"


def plan_name(stem: str, onnx_sha256: str, precision: str, trt_version: str, capability: str) -> str:
    """e.g. part0.1a2b3c4d.int8.trt10.3.sm87.engine: a plan is reused only when every part of the key matches."""
    return f"{stem}.{onnx_sha256[:8]}.{precision}.trt{trt_version}.{capability}.engine"


def timing_cache_name(trt_version: str, capability: str) -> str:
    return f"timing.trt{trt_version}.{capability}.cache"
