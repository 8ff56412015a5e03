"""The PyTorch reference behind the engines' interface: a bundle's parts and fusion head run by torch
(workstation only). `vitfleet engines check` compares every engine with these."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitfleet.engines.runtime.backends import FusionEngine, PartEngine
from vitfleet.engines.runtime.manifest import TensorSpec


class TorchModel:
    """The PyTorch reference behind the same interface (workstation only: imports torch)."""

    def __init__(self, module) -> None:  # torch.nn.Module
        import torch

        self.torch = torch
        self.module = module.eval()

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self.torch.no_grad():
            out = self.module(*[self.torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()])
        return [out.float().numpy()]


def torch_part_engine(bundle_dir: Path, part: int) -> PartEngine:
    from vitfleet.decompose.bundle import load_part, read_bundle

    card = read_bundle(bundle_dir)
    module = load_part(bundle_dir, part, card)
    pre = card.preprocessing
    spec = TensorSpec(name="image", shape=["batch", pre.channels, pre.size, pre.size], dtype="float32")
    return PartEngine(TorchModel(module), [spec], card.parts[part].feature_dim, f"part {part} pytorch ({bundle_dir})")


def torch_fusion_engine(bundle_dir: Path) -> FusionEngine:
    from vitfleet.decompose.bundle import load_fusion, read_bundle

    card = read_bundle(bundle_dir)
    f = card.fusion
    specs = [
        TensorSpec(name="features", shape=["batch", sum(f.feature_dims)], dtype="float32"),
        TensorSpec(name="mask", shape=["batch", len(f.feature_dims)], dtype="float32"),
    ]
    return FusionEngine(
        TorchModel(load_fusion(bundle_dir, card)), specs, f.num_classes, f"fusion pytorch ({bundle_dir})"
    )
