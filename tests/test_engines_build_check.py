"""Build int8 and fp16 engines from the tiny bundle and check them against PyTorch (real ORT, real data).

The thresholds (engines/README.md): fp16 mean feature cosine >= 0.999 and fused agreement >= 99.5 %; int8
>= 0.98 and >= 98 %. A bundle whose weights changed after the build must fail the check (exit 1).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from engines_fixtures import tiny_bundle, tiny_engines  # noqa: F401
from onnx import numpy_helper
from typer.testing import CliRunner

from vitfleet.decompose.bundle import load_part, read_bundle, write_card
from vitfleet.decompose.checkpoints import save_weights
from vitfleet.engines.build.from_bundle import build_engines
from vitfleet.engines.check import check_engines
from vitfleet.engines.cli import app
from vitfleet.engines.runtime.backends import load_part_engine
from vitfleet.engines.runtime.manifest import read_manifest
from vitfleet.file_digest import sha256_file

runner = CliRunner()


def test_manifest_describes_every_file(tiny_engines: Path) -> None:  # noqa: F811
    m = read_manifest(tiny_engines)
    assert (m.bundle_id, m.num_parts, m.feature_dims, m.precision, m.target) == (
        "tiny-test-bundle",
        2,
        [32, 32],
        "int8",
        "cpu",
    )
    kinds = sorted((e.role, e.part, e.precision) for e in m.entries)
    assert kinds == [
        ("fusion", None, "fp32"),
        ("part", 0, "fp32"),
        ("part", 0, "int8"),
        ("part", 1, "fp32"),
        ("part", 1, "int8"),
        ("teacher", None, "fp32"),
    ]
    by_file = {e.file: e for e in m.entries}
    for e in m.entries:
        assert sha256_file(tiny_engines / e.file) == e.sha256
        assert (tiny_engines / e.file).stat().st_size == e.size
        props = {p.key: p.value for p in onnx.load(str(tiny_engines / e.file), load_external_data=False).metadata_props}
        assert props["bundle_id"] == "tiny-test-bundle" and props["role"] == e.role
    assert by_file["part0.int8.onnx"].source_onnx_sha256 == by_file["part0.onnx"].sha256
    assert by_file["teacher.onnx"].outputs[0].shape == [1, 10]


def test_int8_is_symmetric_qdq_with_float_layernorm_and_softmax(tiny_engines: Path) -> None:  # noqa: F811
    model = onnx.load(str(tiny_engines / "part0.int8.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    # Names are compacted (engines/build/onnx_names.py), so scales and zero points are found by their role:
    # inputs 1 and 2 of every QuantizeLinear / DequantizeLinear.
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    zero_points = [inits[n.input[2]] for n in qdq if len(n.input) > 2 and n.input[2] in inits]
    assert len(zero_points) == len(qdq) and all(np.all(z == 0) for z in zero_points)
    assert any(v.dtype == np.int8 and v.ndim == 2 for v in inits.values())  # int8 weight matrices
    scales = [inits[n.input[1]] for n in qdq if n.input[1] in inits]
    per_channel = [v for v in scales if v.ndim == 1 and v.size > 1]
    assert per_channel, "weights should carry per-channel scales"
    names = [v for n in model.graph.node for v in (*n.input, *n.output)] + list(inits)
    assert max(len(x) for x in names if x not in ("image", "features")) <= 6, "tensor names were not compacted"
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    float_ops = [n for n in model.graph.node if n.op_type in ("LayerNormalization", "Softmax")]
    assert len(float_ops) == 5 + 2
    quantized_ops = {
        n.op_type for n in model.graph.node if any(producers.get(i) == "DequantizeLinear" for i in n.input)
    }
    assert "LayerNormalization" not in quantized_ops and "Softmax" not in quantized_ops and "Add" not in quantized_ops
    assert {"MatMul", "Gemm"} & quantized_ops


def test_int8_check_passes_and_reports(tiny_engines: Path, tiny_bundle: Path) -> None:  # noqa: F811
    report = check_engines(tiny_engines, tiny_bundle, n_images=1000)
    assert report["pass"], report["failures"]
    assert report["images"] == 1000 and report["precision"] == "int8"
    assert all(p["cosine_mean"] >= 0.98 for p in report["parts"])
    assert report["fused_agreement"] >= 0.98
    assert report["fusion_max_abs_logit_diff"] < 1e-4
    assert abs(report["accuracy_delta_pt"]) < 3.0
    assert report["fused_accuracy_torch"] > 0.5  # the fixture learned something: agreement is meaningful


def test_batch_inference_equals_frame_by_frame(tiny_engines: Path) -> None:  # noqa: F811
    engine = load_part_engine(tiny_engines, 1)
    x = np.random.default_rng(1).standard_normal((5, 1, 28, 28)).astype(np.float32)
    batch = engine.infer(x)
    single = np.concatenate([engine.infer(x[i : i + 1]) for i in range(5)])
    assert batch.shape == (5, engine.feature_dim) and np.array_equal(batch, single)


def test_fp16_build_check_and_int8_entries_survive_rebuild(
    tiny_bundle: Path,  # noqa: F811
    tiny_engines: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    folder = Path(shutil.copytree(tiny_engines, tmp_path / "engines"))
    manifest = build_engines(tiny_bundle, folder, precision="fp16", target="cpu", export_teacher=False)
    precisions = sorted((e.part, e.precision) for e in manifest.entries if e.role == "part")
    assert precisions == [(0, "fp16"), (0, "fp32"), (0, "int8"), (1, "fp16"), (1, "fp32"), (1, "int8")]
    report = check_engines(folder, tiny_bundle, n_images=300)
    assert report["precision"] == "fp16" and report["pass"], report["failures"]
    assert min(p["cosine_mean"] for p in report["parts"]) >= 0.999
    assert check_engines(folder, tiny_bundle, n_images=1000, precision="int8")["pass"]


def test_cli_check_json_and_failure_exit(tiny_engines: Path, tiny_bundle: Path, tmp_path: Path) -> None:  # noqa: F811
    ok = runner.invoke(app, ["check", str(tiny_engines), "--bundle", str(tiny_bundle), "--images", "1000", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["pass"] is True

    # A bundle whose part 0 was changed after the build: the engines no longer match it.
    changed = Path(shutil.copytree(tiny_bundle, tmp_path / "changed"))
    card = read_bundle(changed)
    part = load_part(changed, 0, card)
    with torch.no_grad():
        for p in part.vit.blocks.parameters():
            p.add_(torch.randn_like(p) * p.std())
    card.parts[0].weights_sha256 = save_weights(part.vit, changed / card.parts[0].weights)
    write_card(changed, card)
    bad = runner.invoke(app, ["check", str(tiny_engines), "--bundle", str(changed), "--images", "1000", "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    assert not report["pass"] and any(f.startswith("part 0: mean cosine") for f in report["failures"])


def test_cli_latency_json(tiny_engines: Path) -> None:  # noqa: F811
    result = runner.invoke(app, ["latency", str(tiny_engines), "--runs", "5", "--warmup", "1", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {(r["role"], r["part"], r["precision"]) for r in rows} >= {("part", 0, "int8"), ("teacher", None, "fp32")}
    assert all(r["median_ms"] > 0 and r["runs"] == 5 and r["threads"] == 1 for r in rows)


def test_cli_build_refuses_bad_input(tmp_path: Path, tiny_bundle: Path) -> None:  # noqa: F811
    result = runner.invoke(app, ["build", "--bundle", str(tiny_bundle), "--out", str(tmp_path), "--precision", "int4"])
    assert result.exit_code == 2 and "Invalid value for '--precision'" in result.output  # typer's choice check
    result = runner.invoke(app, ["build", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "give --bundle DIR" in result.output
    result = runner.invoke(app, ["check", str(tmp_path), "--bundle", str(tiny_bundle)])
    assert result.exit_code == 2 and "manifest.json not found" in result.output


def test_jetson_build_saves_reference_for_a_torchless_check(tiny_bundle: Path, tmp_path: Path) -> None:  # noqa: F811
    import os
    import subprocess
    import sys

    folder = tmp_path / "jetson"
    manifest = build_engines(
        tiny_bundle, folder, precision="all", target="jetson", export_teacher=False, reference_images=300
    )
    assert manifest.precision == "int8" and (folder / "reference.npz").exists()
    assert sorted(e.precision for e in manifest.entries if e.part == 0) == ["fp16", "fp32", "int8"]
    with_bundle = check_engines(folder, tiny_bundle, n_images=300)
    script = (
        "import sys, json; sys.modules['torch'] = None\n"
        "from vitfleet.engines.check import check_engines\n"
        f"print(json.dumps(check_engines({str(folder)!r}, None, 300)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    without = json.loads(done.stdout)
    assert without["reference"].endswith("(PyTorch outputs saved at build time)")
    assert without["fused_agreement"] == with_bundle["fused_agreement"]
    assert without["parts"][0]["cosine_mean"] == pytest.approx(with_bundle["parts"][0]["cosine_mean"], abs=1e-6)
