"""A freshly initialised timm ViT (all-zero biases) gets a valid int8 engine.

The exporter's constant folding merged the identical zero biases of layers of different widths into one
initializer, and ONNX Runtime's static quantizer then wrote a model that fails to load ("Invalid bias
shape"): a user's untrained or zero-bias checkpoint could not be quantised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from vitfleet.decompose.vit_arch import ViTArch, build_vit
from vitfleet.engines.build.export import export_part
from vitfleet.engines.build.precision import to_int8


def test_zero_bias_vit_exports_unshared_biases_and_quantises_to_a_loadable_int8_model(tmp_path: Path):
    torch.manual_seed(0)
    arch = ViTArch(img_size=32, patch_size=8, in_chans=3, num_classes=5, embed_dim=64, depth=2, num_heads=2)
    model = build_vit(arch).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)  # as timm initialises them
    fp32 = export_part(model, (3, 32, 32), tmp_path / "part0.onnx", "zero-bias", 0).path
    graph = onnx.load(str(fp32)).graph
    vectors = {i.name for i in graph.initializer if len(i.dims) == 1}
    consumers = [name for node in graph.node for name in node.input if name in vectors]
    assert len(consumers) == len(set(consumers))  # every bias feeds exactly one node
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    int8 = to_int8(fp32, tmp_path / "part0.int8.onnx", calib)
    ref = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    sess = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])  # loaded: no bias-shape error
    a = np.concatenate([ref.run(None, {"image": calib[i : i + 1]})[0] for i in range(4)])
    b = np.concatenate([sess.run(None, {"image": calib[i : i + 1]})[0] for i in range(4)])
    assert a.shape == b.shape and np.isfinite(b).all()
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.9
