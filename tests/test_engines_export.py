"""ONNX export of parts and fusion head: checker, opset, metadata, I/O, and ORT == PyTorch.

Tolerance: ORT fp32 vs PyTorch max |difference| <= 1e-4 on features of magnitude ~1 (measured ~4e-6);
the fusion head's logits likewise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from bundle_fixture import tiny_bundle  # noqa: F401

from vitfleet.decompose.bundle import load_fusion, load_part, read_bundle
from vitfleet.engines.build.calibration import bundle_images
from vitfleet.engines.build.export import export_fusion, export_part
from vitfleet.engines.build.from_bundle import onnx_entry
from vitfleet.engines.runtime.backends import OnnxRuntimeModel

TOLERANCE = 1e-4


def _run_ort(folder: Path, file: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
    entry = onnx_entry(folder, file, "part", 0, "fp32", None, None)
    return OnnxRuntimeModel(folder / file, entry).run(feeds)[0]


def test_part_export_is_valid_onnx_with_metadata(tiny_bundle: Path, tmp_path: Path) -> None:  # noqa: F811
    card = read_bundle(tiny_bundle)
    exported = export_part(load_part(tiny_bundle, 1, card), (1, 28, 28), tmp_path / "part1.onnx", card.bundle_id, 1)
    model = onnx.load(str(exported.path))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 17
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("LayerNormalization") == 2 * card.parts[1].arch.depth + 1  # one node per LayerNorm
    props = {p.key: p.value for p in model.metadata_props}
    assert props["bundle_id"] == card.bundle_id and props["part"] == "1" and props["role"] == "part"
    assert [(s.name, s.shape, s.dtype) for s in exported.inputs] == [("image", [1, 1, 28, 28], "float32")]
    assert [(s.name, s.shape, s.dtype) for s in exported.outputs] == [("features", [1, 32], "float32")]
    assert not list(tmp_path.glob("*.data")), "weights must stay inside the ONNX file"


def test_part_onnx_matches_pytorch_on_real_images(tiny_bundle: Path, tmp_path: Path) -> None:  # noqa: F811
    card = read_bundle(tiny_bundle)
    x, _ = bundle_images(card, "test", 64)
    part = load_part(tiny_bundle, 0, card)
    export_part(part, (1, 28, 28), tmp_path / "part0.onnx", card.bundle_id, 0)
    with torch.no_grad():
        ref = part(torch.from_numpy(x)).numpy()
    got = _run_ort(tmp_path, "part0.onnx", {"image": x})  # static batch 1: the runner loops
    assert got.shape == ref.shape == (64, 32)
    assert np.abs(got - ref).max() <= TOLERANCE
    assert np.abs(ref).max() > 0.1  # features are not trivially zero


def test_dynamic_batch_export_runs_a_batch_in_one_call(tiny_bundle: Path, tmp_path: Path) -> None:  # noqa: F811
    card = read_bundle(tiny_bundle)
    x, _ = bundle_images(card, "test", 16)
    part = load_part(tiny_bundle, 0, card)
    exported = export_part(part, (1, 28, 28), tmp_path / "part0.onnx", card.bundle_id, 0, dynamic_batch=True)
    assert exported.inputs[0].shape == ["batch", 1, 28, 28]
    model = OnnxRuntimeModel(exported.path, onnx_entry(tmp_path, "part0.onnx", "part", 0, "fp32", None, None))
    assert not model.loop
    with torch.no_grad():
        ref = part(torch.from_numpy(x)).numpy()
    assert np.abs(model.run({"image": x})[0] - ref).max() <= TOLERANCE


def test_fusion_onnx_matches_pytorch_with_missing_parts(tiny_bundle: Path, tmp_path: Path) -> None:  # noqa: F811
    card = read_bundle(tiny_bundle)
    head = load_fusion(tiny_bundle, card)
    exported = export_fusion(head, card.fusion.feature_dims, tmp_path / "fusion.onnx", card.bundle_id)
    assert [s.name for s in exported.inputs] == ["features", "mask"]
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((32, 64)).astype(np.float32)
    mask = (rng.random((32, 2)) > 0.3).astype(np.float32)
    mask[0] = 0  # every part missing
    with torch.no_grad():
        ref = head(torch.from_numpy(feats), torch.from_numpy(mask)).numpy()
    got = _run_ort(tmp_path, "fusion.onnx", {"features": feats, "mask": mask})
    assert np.abs(got - ref).max() <= TOLERANCE
