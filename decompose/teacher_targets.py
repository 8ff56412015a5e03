"""What the students learn from, computed once per data set: the teacher's logits, its
final CLS token (DeViT's fusion target) and its q/k/v relations at the middle layer.

Computed without augmentation, so the students train on the same un-augmented images
the targets were made from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vitfleet.decompose.dekd import QKVTap, middle_layer


@dataclass
class TeacherTargets:
    logits: torch.Tensor  # (N, C)
    cls: torch.Tensor  # (N, D_teacher) final normed CLS token
    relations: torch.Tensor  # (N, 3, T, T) float16 to halve memory

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"logits": self.logits, "cls": self.cls, "relations": self.relations}, str(path))

    @classmethod
    def load(cls, path: Path) -> TeacherTargets:
        from safetensors.torch import load_file

        t = load_file(str(path))
        return cls(t["logits"], t["cls"], t["relations"])


@torch.no_grad()
def compute_targets(
    teacher: nn.Module, x: torch.Tensor, batch_size: int = 512, progress=None, task=None
) -> TeacherTargets:
    teacher.eval()
    tap = QKVTap(teacher, middle_layer(len(teacher.blocks)))
    logits, cls, rels = [], [], []
    try:
        for start in range(0, len(x), batch_size):
            feats = teacher.forward_features(x[start : start + batch_size])
            token = teacher.forward_head(feats, pre_logits=True)
            logits.append(teacher.head(token))
            cls.append(token)
            rels.append(tap.relations().half())
            if progress is not None:
                progress.update(task, advance=min(batch_size, len(x) - start))
    finally:
        tap.remove()
    return TeacherTargets(torch.cat(logits), torch.cat(cls), torch.cat(rels))
