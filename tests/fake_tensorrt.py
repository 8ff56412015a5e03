"""A stand-in for the `tensorrt` and `pycuda` modules, for WIRING TESTS ONLY.

It records every builder call (network flags, builder flags, per-layer precisions, timing cache traffic) and
mimics the documented API surface of TensorRT 8.5 (binding-index execution, LayerNormalization expanded
into plain layers by the ONNX parser) or 10.x (name-based I/O, execute_async_v3, NORMALIZATION layers).
Its "plans" wrap the source ONNX and its "engines" run that ONNX with onnxruntime, so the runtime's buffer
handling is exercised end to end. It proves the calls are wired as the docs describe; it proves nothing
about real TensorRT numerics or performance — only `make check-jetson` on a Jetson does.
"""

from __future__ import annotations

import enum
import itertools
import json
import sys
import types

import numpy as np
import onnx
import onnxruntime as ort

PLAN_MAGIC = b"FAKEPLAN"


def make_fake_tensorrt(version: str = "10.3.0.26", fail_parse: bool = False) -> types.ModuleType:
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = []
    calls = trt.calls
    trt.float32, trt.float16, trt.int8 = "float32", "float16", "int8"

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            self.level = level

    kinds = ["SOFTMAX", "ELEMENTWISE", "REDUCE", "UNARY", "MATRIX_MULTIPLY", "SHUFFLE", "CONVOLUTION"]
    if major >= 10:
        kinds.append("NORMALIZATION")  # INormalizationLayer exists from 8.6 on
    trt.LayerType = enum.Enum("LayerType", kinds)
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", ["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"])
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0})
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0})
    trt.TensorIOMode = enum.IntEnum("TensorIOMode", ["INPUT", "OUTPUT"])
    trt.DataType = enum.IntEnum("DataType", ["FLOAT"])
    trt.nptype = lambda dt: np.float32
    trt.Logger = Logger

    class Layer:
        def __init__(self, name: str, kind) -> None:
            self.name, self.type, self.num_outputs = name, kind, 1
            self.precision = None
            self.output_types: dict[int, str] = {}

        def set_output_type(self, index: int, dtype: str) -> None:
            self.output_types[index] = dtype

    class Tensor:
        def __init__(self, name: str, shape: tuple[int, ...]) -> None:
            self.name, self.shape = name, shape

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags, self.layers, self.inputs, self.onnx_bytes = flags, [], [], b""

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, i: int) -> Layer:
            return self.layers[i]

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, i: int) -> Tensor:
            return self.inputs[i]

    class OnnxParser:
        def __init__(self, network: Network, logger: Logger) -> None:
            self.network = network
            self.num_errors = 0

        def parse(self, data: bytes) -> bool:
            if fail_parse:
                self.num_errors = 1
                return False
            model = onnx.load_from_string(data)
            self.network.onnx_bytes = data
            for node in model.graph.node:
                if node.op_type == "LayerNormalization" and major < 10:
                    # TensorRT 8.5's parser expands LayerNormalization into reduce/elementwise layers.
                    for suffix, kind in (
                        ("_reduce_mean", "REDUCE"),
                        ("_sub", "ELEMENTWISE"),
                        ("_sqrt", "UNARY"),
                        ("_scale", "ELEMENTWISE"),
                    ):
                        self.network.layers.append(Layer(node.name + suffix, trt.LayerType[kind]))
                    continue
                kind = {
                    "LayerNormalization": "NORMALIZATION",
                    "Softmax": "SOFTMAX",
                    "MatMul": "MATRIX_MULTIPLY",
                    "Gemm": "MATRIX_MULTIPLY",
                    "Conv": "CONVOLUTION",
                    "Reshape": "SHUFFLE",
                }.get(node.op_type, "ELEMENTWISE")
                self.network.layers.append(Layer(node.name, trt.LayerType[kind]))
            for value in model.graph.input:
                dims = tuple(d.dim_value if not d.dim_param else -1 for d in value.type.tensor_type.shape.dim)
                self.network.inputs.append(Tensor(value.name, dims))
            return True

        def get_error(self, i: int) -> str:
            return "In node 3 (importModel): UNSUPPORTED_NODE: fake parse failure"

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return b"timing-cache/" + version.encode() + b"/" + str(len(calls)).encode()

    class Config:
        def __init__(self) -> None:
            self.flags: set = set()
            self.cache = None
            self.profiles: list = []

        def set_flag(self, flag) -> None:
            self.flags.add(flag)

        def set_memory_pool_limit(self, pool, size: int) -> None:
            calls.append(("set_memory_pool_limit", pool, size))

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls.append(("create_timing_cache", data))
            return TimingCache(data)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.cache = cache
            return True

        def get_timing_cache(self) -> TimingCache:
            return self.cache

        def add_optimization_profile(self, profile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

    class Builder:
        def __init__(self, logger: Logger) -> None:
            pass

        def create_network(self, flags: int) -> Network:
            calls.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def build_serialized_network(self, network: Network, config: Config) -> bytes:
            pinned = sorted(layer.name for layer in network.layers if layer.precision == trt.float32)
            calls.append(("build", sorted(f.name for f in config.flags), pinned, network.layers))
            header = json.dumps({"version": version}).encode()
            return PLAN_MAGIC + len(header).to_bytes(4, "little") + header + network.onnx_bytes

    class Engine:
        def __init__(self, onnx_bytes: bytes) -> None:
            self.session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
            self.io = [(i.name, tuple(i.shape), trt.TensorIOMode.INPUT) for i in self.session.get_inputs()] + [
                (o.name, tuple(o.shape), trt.TensorIOMode.OUTPUT) for o in self.session.get_outputs()
            ]
            if major < 10:
                self.get_binding_index = lambda name: [n for n, _, _ in self.io].index(name)

        @property
        def num_io_tensors(self) -> int:
            return len(self.io)

        def get_tensor_name(self, i: int) -> str:
            return self.io[i][0]

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return next(s for n, s, _ in self.io if n == name)

        def get_tensor_dtype(self, name: str):
            return trt.DataType.FLOAT

        def get_tensor_mode(self, name: str):
            return next(m for n, _, m in self.io if n == name)

        def create_execution_context(self):
            return Context(self)

    class Context:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.addresses: dict[str, int] = {}
            if major >= 10:
                self.set_tensor_address = self._set_tensor_address
                self.execute_async_v3 = self._execute_async_v3
            else:
                self.execute_async_v2 = self._execute_async_v2

        def _set_tensor_address(self, name: str, address: int) -> bool:
            calls.append(("set_tensor_address", name))
            self.addresses[name] = address
            return True

        def _execute(self, addresses: dict[str, int]) -> bool:
            feeds = {
                n: np.frombuffer(DEVICE[addresses[n]].buf, np.float32).reshape(s)
                for n, s, m in self.engine.io
                if m == trt.TensorIOMode.INPUT
            }
            outs = self.engine.session.run(None, feeds)
            for (n, _, _), out in zip([x for x in self.engine.io if x[2] == trt.TensorIOMode.OUTPUT], outs):
                DEVICE[addresses[n]].buf[:] = np.ascontiguousarray(out, np.float32).tobytes()
            return True

        def _execute_async_v3(self, stream_handle: int) -> bool:
            calls.append(("execute_async_v3", stream_handle))
            return self._execute(self.addresses)

        def _execute_async_v2(self, bindings: list[int], stream_handle: int) -> bool:
            calls.append(("execute_async_v2", len(bindings), stream_handle))
            return self._execute({n: bindings[i] for i, (n, _, _) in enumerate(self.engine.io)})

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes):
            calls.append(("deserialize_cuda_engine", len(data)))
            if not data.startswith(PLAN_MAGIC):
                return None
            size = int.from_bytes(data[8:12], "little")
            if json.loads(data[12 : 12 + size])["version"] != version:
                return None  # real TensorRT refuses plans of another version
            try:
                return Engine(data[12 + size :])
            except Exception:  # a damaged plan
                return None

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


DEVICE: dict[int, DeviceAllocation] = {}
_addresses = itertools.count(0x7F0000000000, 0x1000)


class DeviceAllocation:
    def __init__(self, nbytes: int) -> None:
        self.buf = bytearray(nbytes)
        self.address = next(_addresses)
        DEVICE[self.address] = self

    def __int__(self) -> int:
        return self.address


def make_fake_pycuda(capability: tuple[int, int] = (8, 7)) -> dict[str, types.ModuleType]:
    """sys.modules entries for `import pycuda.autoinit` and `import pycuda.driver`."""
    driver = types.ModuleType("pycuda.driver")
    driver.mem_alloc = DeviceAllocation
    driver.pagelocked_empty = lambda n, dtype: np.empty(n, dtype)

    def htod(dev: DeviceAllocation, host: np.ndarray, stream=None) -> None:
        dev.buf[:] = host.tobytes()

    def dtoh(host: np.ndarray, dev: DeviceAllocation, stream=None) -> None:
        host[:] = np.frombuffer(dev.buf, host.dtype)

    driver.memcpy_htod_async, driver.memcpy_dtoh_async = htod, dtoh

    class Stream:
        handle = 0xC0DE

        def synchronize(self) -> None:
            pass

    class Device:
        def __init__(self, index: int) -> None:
            self.index = index

        def compute_capability(self) -> tuple[int, int]:
            return capability

    driver.Stream, driver.Device = Stream, Device
    package = types.ModuleType("pycuda")
    autoinit = types.ModuleType("pycuda.autoinit")
    package.driver, package.autoinit = driver, autoinit
    return {"pycuda": package, "pycuda.driver": driver, "pycuda.autoinit": autoinit}


def install(monkeypatch, version: str = "10.3.0.26", capability: tuple[int, int] = (8, 7)) -> types.ModuleType:
    trt = make_fake_tensorrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    for name, module in make_fake_pycuda(capability).items():
        monkeypatch.setitem(sys.modules, name, module)
    return trt
