"""WIRING TESTS of the TensorRT path against a fake `tensorrt`/`pycuda` (tests/fake_tensorrt.py).

There is no GPU here. These tests check that the builder and runner make the documented TensorRT 8.5 and
10.x calls (network flags, builder flags, fp32 pinning of LayerNorm/Softmax, timing cache, cache-keyed plan
names, binding-list vs named-tensor execution) and that mismatched or truncated plans are rebuilt or refused.
They do NOT show that real TensorRT builds or runs these plans correctly: `make check-jetson` on a Jetson
is the only test of that.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import fake_tensorrt
import numpy as np
import pytest
from engines_fixtures import tiny_bundle, tiny_engines  # noqa: F401

from vitfleet.engines.check import check_engines
from vitfleet.engines.runtime.backends import OnnxRuntimeModel, load_part_engine
from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import read_manifest
from vitfleet.engines.tensorrt_build import build_tensorrt_engines


@pytest.fixture
def engines_copy(tiny_engines: Path, tmp_path: Path) -> Path:  # noqa: F811
    return Path(shutil.copytree(tiny_engines, tmp_path / "engines"))


def _builds(trt) -> list[tuple]:
    return [c for c in trt.calls if c[0] == "build"]


def test_trt10_int8_build_flags_pinning_and_cache_names(engines_copy: Path, monkeypatch) -> None:
    trt = fake_tensorrt.install(monkeypatch, "10.3.0.26", (8, 7))
    results = build_tensorrt_engines(engines_copy, "int8", log=lambda m: None)
    manifest = read_manifest(engines_copy)
    src = {(e.role, e.part): e for e in manifest.entries if e.backend == "onnxruntime" and e.precision == "int8"}
    fp32 = {(e.role, e.part): e for e in manifest.entries if e.backend == "onnxruntime" and e.precision == "fp32"}
    names = [r.entry.file for r in results]
    assert names == [
        f"part0.{src['part', 0].sha256[:8]}.int8.trt10.3.sm87.engine",
        f"part1.{src['part', 1].sha256[:8]}.int8.trt10.3.sm87.engine",
        f"fusion.{fp32['fusion', None].sha256[:8]}.fp16.trt10.3.sm87.engine",
    ]
    assert ("create_network", 0) in trt.calls  # 10.x: explicit batch is implicit, no flag
    builds = _builds(trt)
    assert [b[1] for b in builds] == [["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"]] * 2 + [
        ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
    ]
    layers = builds[0][3]
    for layer in layers:
        pinned = layer.type in (trt.LayerType.NORMALIZATION, trt.LayerType.SOFTMAX)
        assert (layer.precision == trt.float32) == pinned, layer.name
        assert (layer.output_types == {0: trt.float32}) == pinned
    assert sum(layer.type == trt.LayerType.NORMALIZATION for layer in layers) == 5
    for r in results:
        e = r.entry
        assert (e.backend, e.tensorrt_version, e.compute_capability) == ("tensorrt", "10.3", "sm87")
        assert (engines_copy / e.file).read_bytes().startswith(fake_tensorrt.PLAN_MAGIC)  # no header prepended
    assert (engines_copy / "timing.trt10.3.sm87.cache").exists()
    assert [c[1] for c in trt.calls if c[0] == "create_timing_cache"][0] == b""
    assert [c[1] for c in trt.calls if c[0] == "create_timing_cache"][1].startswith(b"timing-cache/")


def test_trt85_explicit_batch_flag_and_pinning_by_onnx_node_name(engines_copy: Path, monkeypatch) -> None:
    trt = fake_tensorrt.install(monkeypatch, "8.5.2.2", (7, 2))
    results = build_tensorrt_engines(engines_copy, "fp16", log=lambda m: None)
    assert results[0].entry.file.endswith(".fp16.trt8.5.sm72.engine")
    assert ("create_network", 1 << 0) in trt.calls  # 8.5: EXPLICIT_BATCH must be requested
    builds = _builds(trt)
    assert all(b[1] == ["FP16", "OBEY_PRECISION_CONSTRAINTS"] for b in builds)
    layers = builds[0][3]
    import onnx

    # The plans are built from the fp32 export; its LayerNormalization nodes are what 8.5 expands (names compacted).
    ln_nodes = [
        n.name for n in onnx.load(str(engines_copy / "part0.onnx")).graph.node if n.op_type == "LayerNormalization"
    ]
    assert len(ln_nodes) == 5
    expanded = [layer for layer in layers if any(layer.name.startswith(n + "_") for n in ln_nodes)]
    assert len(expanded) >= 5 * 4 and all(layer.precision == trt.float32 for layer in expanded)
    assert all(layer.precision == trt.float32 for layer in layers if layer.type == trt.LayerType.SOFTMAX)
    assert not any(layer.precision for layer in layers if layer.type == trt.LayerType.MATRIX_MULTIPLY)


def test_plans_are_reused_by_key_and_truncated_plans_rebuilt(engines_copy: Path, monkeypatch) -> None:
    trt = fake_tensorrt.install(monkeypatch)
    first = build_tensorrt_engines(engines_copy, "int8", log=lambda m: None)
    again = build_tensorrt_engines(engines_copy, "int8", log=lambda m: None)
    assert [r.rebuilt for r in again] == [False, False, False] and len(_builds(trt)) == 3
    plan = engines_copy / first[0].entry.file
    plan.write_bytes(plan.read_bytes()[:100])
    third = build_tensorrt_engines(engines_copy, "int8", log=lambda m: None)
    assert third[0].rebuilt and "truncated" in third[0].reason and not third[1].rebuilt
    assert len(_builds(trt)) == 4


def test_truncated_plan_is_refused_at_load(engines_copy: Path, monkeypatch) -> None:
    fake_tensorrt.install(monkeypatch)
    plan = engines_copy / build_tensorrt_engines(engines_copy, "int8", log=lambda m: None)[0].entry.file
    plan.write_bytes(plan.read_bytes()[:-10])
    with pytest.raises(EngineError, match="truncated"):
        load_part_engine(engines_copy, 0, backend="tensorrt", precision="int8")


@pytest.mark.parametrize("version,call", [("10.3.0.26", "execute_async_v3"), ("8.5.2.2", "execute_async_v2")])
def test_runtime_runs_plans_through_the_version_api(engines_copy: Path, monkeypatch, version: str, call: str) -> None:
    trt = fake_tensorrt.install(monkeypatch, version)
    build_tensorrt_engines(engines_copy, "int8", log=lambda m: None)
    engine = load_part_engine(engines_copy, 0, backend="tensorrt", precision="int8")
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    got = engine.infer(x)
    entry = read_manifest(engines_copy).lookup("part", 0, "onnxruntime", "int8")
    want = OnnxRuntimeModel(engines_copy / entry.file, entry).run({"image": x})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # the fake runs the source ONNX: buffers wired right
    assert sum(c[0] == call for c in trt.calls) == 3
    assert any(c[0] == "set_tensor_address" for c in trt.calls) == (call == "execute_async_v3")


def test_plan_of_another_tensorrt_version_is_refused(engines_copy: Path, monkeypatch) -> None:
    fake_tensorrt.install(monkeypatch, "8.5.2.2", (8, 7))
    build_tensorrt_engines(engines_copy, "int8", log=lambda m: None)
    fake_tensorrt.install(monkeypatch, "10.3.0.26", (8, 7))
    with pytest.raises(EngineError, match=r"built with TensorRT 8\.5 for sm87, but this board has TensorRT 10\.3"):
        load_part_engine(engines_copy, 0, backend="tensorrt", precision="int8")
    rebuilt = build_tensorrt_engines(engines_copy, "int8", log=lambda m: None)
    assert all(r.rebuilt and "cache key changed" in r.reason for r in rebuilt)


def test_check_runs_the_tensorrt_backend(engines_copy: Path, tiny_bundle: Path, monkeypatch) -> None:  # noqa: F811
    fake_tensorrt.install(monkeypatch)
    build_tensorrt_engines(engines_copy, "int8", log=lambda m: None)
    report = check_engines(engines_copy, tiny_bundle, n_images=50, backend="tensorrt", precision="int8")
    assert report["backend"] == "tensorrt" and "trt10.3.sm87.engine" in report["parts"][0]["engine"]
    assert "fusion" in report["fusion_engine"] and "fp16" in report["fusion_engine"]


def test_parse_failure_and_missing_tensorrt_are_clear(engines_copy: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(EngineError, match="tensorrt Python module is not importable.*--backend onnxruntime"):
        build_tensorrt_engines(engines_copy, "int8", capability="sm87")
    broken = fake_tensorrt.make_fake_tensorrt(fail_parse=True)
    with pytest.raises(EngineError, match="TensorRT cannot parse part0.int8.onnx: .*UNSUPPORTED_NODE"):
        build_tensorrt_engines(engines_copy, "int8", trt=broken, capability="sm87", log=lambda m: None)
