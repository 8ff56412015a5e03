"""`tiny_bundle`: a real, small decomposed bundle for the engines tests.

Two sub-ViTs (28x28x1, patch 7, width 32, depth 2), each trained for a few dozen steps on a real
Fashion-MNIST slice with its class subset plus an 'other' logit (ED-ViT style), a fusion MLP trained on
their frozen CLS features with part dropout, and a small teacher, written with the bundle's own writers
(safetensors + bundle.json). Trained for real so features and fused predictions mean something: the
int8/fp16 checks compare against a model whose decisions are not noise.

Import the fixture into a test module with `from bundle_fixture import tiny_bundle`. The bundle is built
once per session into the session's base temp folder and reused by every module that imports it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from vitfleet.datasets import load_fashion_mnist
from vitfleet.decompose.bundle import BundleCard, FusionSpec, PartSpec, TeacherRef, write_card
from vitfleet.decompose.checkpoints import save_weights
from vitfleet.decompose.fusion_heads import get_fusion_head
from vitfleet.decompose.part_features import PartFeatures
from vitfleet.decompose.teacher import preprocessing_for, write_teacher
from vitfleet.decompose.vit_arch import ViTArch, build_vit, count_params, vit_flops

PARTITION = [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
WIDTH = 32


def _train(model: nn.Module, forward, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=gen)
        loss = loss_fn(forward(x[idx], gen), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def build_tiny_bundle(
    out: Path,
    steps: int = 150,
    seed: int = 0,
    width: int = WIDTH,
    depth: int = 2,
    heads: int = 2,
    train_images: int = 4000,
) -> Path:
    threads = torch.get_num_threads()
    # One thread: these models are tiny, and on a shared 2-core machine two threads run ~20x slower.
    torch.set_num_threads(1)
    try:
        return _build(out, steps, seed, width, depth, heads, train_images)
    finally:
        torch.set_num_threads(threads)


def _build(out: Path, steps: int, seed: int, width: int, depth: int, heads: int, train_images: int) -> Path:
    torch.manual_seed(seed)
    train = load_fashion_mnist("train").stratified_head(train_images, seed=seed)
    base = ViTArch(img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=width, depth=depth, num_heads=heads)
    pre = preprocessing_for("fashion-mnist", base)
    x = torch.from_numpy(pre.normalize(train.images))
    y = torch.from_numpy(train.labels)

    teacher_arch = base.model_copy(update={"embed_dim": 2 * width})
    teacher = build_vit(teacher_arch)
    _train(teacher, lambda xb, g: teacher(xb), x, y, steps, 2e-3, seed)
    teacher_dir = out / "teacher"
    tcard = write_teacher(
        teacher, teacher_arch, teacher_dir, "fashion-mnist", train.class_names, pre, "trained:test-tiny", None, {}
    )

    parts, features = [], []
    for index, classes in enumerate(PARTITION):
        arch = base.model_copy(update={"num_classes": len(classes) + 1})
        vit = build_vit(arch)
        local = torch.full_like(y, len(classes))  # the 'other' logit
        for j, c in enumerate(classes):
            local[y == c] = j
        _train(vit, lambda xb, g, vit=vit: vit(xb), x, local, steps, 2e-3, seed + 1 + index)
        name = f"part{index}.safetensors"
        sha = save_weights(vit, out / name)
        parts.append(
            PartSpec(
                index=index,
                classes=classes,
                other_class=True,
                arch=arch,
                feature_dim=width,
                params=count_params(vit),
                flops=vit_flops(arch),
                weights=name,
                weights_sha256=sha,
            )
        )
        with torch.no_grad():
            features.append(PartFeatures(vit).eval()(x))

    feats = torch.cat(features, dim=1)
    head = get_fusion_head("mlp").build([width] * len(PARTITION), 64, 10)

    gen = torch.Generator().manual_seed(seed + 10)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    for _ in range(steps * 2):
        idx = torch.randint(0, len(x), (128,), generator=gen)
        mask = (torch.rand(len(idx), len(PARTITION), generator=gen) > 0.1).float()
        loss = nn.functional.cross_entropy(head(feats[idx], mask), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    fsha = save_weights(head, out / "fusion.safetensors")
    card = BundleCard(
        bundle_id="tiny-test-bundle",
        method="edvit",
        dataset="fashion-mnist",
        class_names=train.class_names,
        partition=PARTITION,
        teacher=TeacherRef(
            path=str(teacher_dir),
            weights_sha256=tcard.weights_sha256,
            params=count_params(teacher),
            flops=vit_flops(teacher_arch),
        ),
        parts=parts,
        fusion=FusionSpec(
            kind="mlp",
            feature_dims=[width] * len(PARTITION),
            hidden_dim=64,
            num_classes=10,
            part_dropout=0.1,
            weights_sha256=fsha,
        ),
        preprocessing=pre,
    )
    write_card(out, card)
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "tiny_bundle"
    if not (folder / "bundle.json").exists():  # another module's import of this fixture may have built it
        build_tiny_bundle(folder)
    return folder
